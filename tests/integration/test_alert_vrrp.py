"""
Mail alerts of a real VRRP failover: two of our daemons in namespaces mail a
real SMTP server (aiosmtpd) running in a third lab host.
"""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
import time

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab
from tests.integration.netns import waitUntil as waitFor
from tests.integration.support import requireAiosmtpd
from tests.integration.vrrpnode import ROOT, ourTwistd

VIP = "192.0.2.100"
RELAY_PORT = 2525


def config(router: str, priority: int, relay: str) -> str:
    return f"""\
global_defs {{
    router_id {router}
    notification_email {{
        ops@example.org
    }}
    notification_email_from {router}@example.org
    smtp_server {relay} {RELAY_PORT}
    smtp_connect_timeout 3
    smtp_alert
    vrrp_version 3
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 0.5
    virtual_ipaddress {{
        {VIP}/24 dev eth0
    }}
}}
"""


class FailoverMailTests(TestCase):
    """
    Every transition of a failover reaches the relay, with keepalived's
    subjects; with the relay down VRRP is unaffected and the mails arrive
    once it is back.
    """

    timeout = 120

    def setUp(self) -> None:
        requireAiosmtpd()
        self.lab = makeLab(self, 3)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.maildir = os.path.join(self.dir, "Maildir")
        self.relayHost = self.lab.hosts[2]
        self.relay = None

    def startRelay(self) -> None:
        host = self.relayHost
        log = open(os.path.join(self.dir, "aiosmtpd.log"), "ab")
        self.addCleanup(log.close)
        self.relay = host.spawn(
            sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{host.ipv4}:{RELAY_PORT}",
            "-c", "aiosmtpd.handlers.Mailbox", self.maildir,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def listening() -> bool:
            out = host.run("ss", "-ltn", check=False).stdout
            return f":{RELAY_PORT}" in out

        waitFor(listening, 20, "aiosmtpd to listen")

    def stopRelay(self) -> None:
        self.relay.terminate()
        self.relay.wait(10)

    def startNode(self, index: int, priority: int) -> subprocess.Popen:
        host = self.lab.hosts[index]
        conf = os.path.join(self.dir, f"h{index + 1}.conf")
        with open(conf, "w") as f:
            f.write(config(f"lb{index + 1}", priority, self.relayHost.ipv4))
        log = open(os.path.join(self.dir, f"h{index + 1}.log"), "ab")
        self.addCleanup(log.close)
        twistd, env = ourTwistd()
        return host.spawn(
            *twistd, "-n", "--pidfile", os.path.join(self.dir, f"h{index + 1}.pid"),
            "keepalived", "-c", conf, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, cwd=ROOT)

    def subjects(self) -> list[str]:
        if not os.path.isdir(self.maildir):
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        return sorted(str(m["Subject"]) for _, m in box.items())

    def waitSubject(self, subject: str, timeout: float = 20) -> None:
        waitFor(lambda: subject in self.subjects(), timeout, f"mail {subject!r}; have {self.subjects()}")

    def test_failoverMails(self) -> None:
        self.startRelay()
        h1, h2 = self.lab.hosts[:2]
        master = self.startNode(0, 150)
        self.startNode(1, 100)
        waitFor(lambda: h1.hasAddress(VIP), 15, "h1 to become master")
        self.waitSubject("[lb1] VRRP Instance VI_1 - Entering MASTER state")
        self.waitSubject("[lb2] VRRP Instance VI_1 - Entering BACKUP state")
        master.send_signal(signal.SIGTERM)
        waitFor(lambda: h2.hasAddress(VIP), 10, "h2 to take over")
        self.waitSubject("[lb2] VRRP Instance VI_1 - Entering MASTER state")
        self.waitSubject("[lb1] VRRP Instance VI_1 - Stopping")
        # twistd re-raises the signal that stopped it after a clean shutdown
        self.assertIn(master.wait(10), (0, -signal.SIGTERM))
        self.assertFalse(h1.hasAddress(VIP))
        box = mailbox.Maildir(self.maildir, create=False)
        mail = next(m for _, m in box.items()
                    if m["Subject"] == "[lb2] VRRP Instance VI_1 - Entering MASTER state")
        self.assertEqual(mail["From"], "lb2@example.org")
        self.assertEqual(mail["X-Mailer"], "Keepalived")
        self.assertIn("=> VRRP Instance is now owning VRRP VIPs <=", mail.get_payload())

    def test_relayDownDoesNotDelayFailover(self) -> None:
        """
        With no relay the daemons elect and fail over as usual; the held
        mails are delivered when the relay starts.
        """
        h1, h2 = self.lab.hosts[:2]
        master = self.startNode(0, 150)
        self.startNode(1, 100)
        start = time.monotonic()
        waitFor(lambda: h1.hasAddress(VIP), 15, "h1 to become master")
        elected = time.monotonic() - start
        master.send_signal(signal.SIGKILL)
        waitFor(lambda: h2.hasAddress(VIP), 10, "h2 to take over after SIGKILL")
        self.assertEqual(self.subjects(), [])
        self.startRelay()
        self.waitSubject("[lb2] VRRP Instance VI_1 - Entering MASTER state", timeout=60)
        self.waitSubject("[lb2] VRRP Instance VI_1 - Entering BACKUP state", timeout=30)
        self.assertLess(elected, 15)
