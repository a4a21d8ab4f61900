"""
Checker mails end to end, without IPVS: our daemon (C{twistd -n keepalived
-C}) in one lab host checks a real server (an HTTP server in a second lab
host) and mails a real SMTP server (aiosmtpd, in the second host) when the
real server and the virtual server's quorum go down and come back.

The daemon runs in a network namespace, so whatever IPVS the host kernel
has (usually none: the daemon then runs its dry-run backend) is confined to
that namespace.
"""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab
from tests.integration.netns import waitUntil as waitFor
from tests.integration.test_alert_smtp import requireAiosmtpd
from tests.integration.vrrpnode import checkoutEnvironment, twistdCommand

RELAY_PORT = 2525
RS_PORT = 8080
VS = "[203.0.113.10]:tcp:80"


def config(relay: str, rs: str) -> str:
    return f"""\
global_defs {{
    router_id lb1
    notification_email {{
        ops@example.org
    }}
    notification_email_from lb1@example.org
    smtp_server {relay} {RELAY_PORT}
    smtp_connect_timeout 3
}}
virtual_server 203.0.113.10 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    smtp_alert
    real_server {rs} {RS_PORT} {{
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""


class CheckerMailTests(TestCase):
    """
    A real server going down and up, and the quorum it carries, are
    mailed with keepalived's subjects and bodies.
    """

    timeout = 120

    def setUp(self) -> None:
        requireAiosmtpd()
        # this checkout's code, whichever copy of keepalive_tx is installed
        self.twistd = twistdCommand()
        self.lab = makeLab(self, 2)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.maildir = os.path.join(self.dir, "Maildir")
        self.director, self.server = self.lab.hosts

    def log(self, name: str):
        f = open(os.path.join(self.dir, name), "ab")
        self.addCleanup(f.close)
        return f

    def listening(self, host, port: int) -> bool:
        return f":{port}" in host.run("ss", "-ltn", check=False).stdout

    def startWeb(self) -> subprocess.Popen:
        web = self.server.spawn(
            sys.executable, "-m", "http.server", str(RS_PORT), "--bind", self.server.ipv4,
            "--directory", self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL)
        waitFor(lambda: self.listening(self.server, RS_PORT), 20, "the web server")
        return web

    def mails(self) -> list[tuple[str, str]]:
        if not os.path.isdir(self.maildir):
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        found = []
        for _, m in sorted(box.items(), key=lambda item: item[1]["Date"] or ""):
            found.append((str(m["Subject"]), m.get_payload().strip()))
        return found

    def waitMail(self, subject: str, body: str, count: int = 1) -> None:
        waitFor(lambda: self.mails().count((subject, body)) >= count, 20,
                lambda: f"{count} x {subject!r} / {body!r}; have {self.mails()}")

    def test_realServerDownAndUp(self) -> None:
        """
        At start the quorum and the real server's first check are mailed;
        killing the real server's web server mails RS DOWN with the
        TCP_CHECK wording and VS DOWN (quorum lost); restarting it mails
        RS UP and VS UP again.
        """
        relay = self.server.spawn(
            sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{self.server.ipv4}:{RELAY_PORT}",
            "-c", "aiosmtpd.handlers.Mailbox", self.maildir,
            stdout=self.log("aiosmtpd.log"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        waitFor(lambda: self.listening(self.server, RELAY_PORT), 20, "aiosmtpd to listen")
        web = self.startWeb()
        conf = os.path.join(self.dir, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(config(self.server.ipv4, self.server.ipv4))
        daemon = self.director.spawn(
            *self.twistd, "-n", "--pidfile", os.path.join(self.dir, "ktx.pid"), "keepalived",
            "-c", conf, "-C", stdout=self.log("ktx.log"), stderr=subprocess.STDOUT,
            env=checkoutEnvironment(),
            stdin=subprocess.DEVNULL)
        rs = f"[{self.server.ipv4}]:tcp:{RS_PORT}"
        rsUp = (f"[lb1] Realserver {rs} of virtual server {VS} - UP", "=> TCP CHECK succeed on service <=")
        rsDown = (f"[lb1] Realserver {rs} of virtual server {VS} - DOWN", "=> TCP CHECK failed on service <=")
        self.waitMail(f"[lb1] Virtualserver {VS} - UP", "=> Starting with quorum up 1+0=1 <= 1 <=")
        self.waitMail(*rsUp)
        web.kill()
        web.wait()
        self.waitMail(*rsDown)
        self.waitMail(f"[lb1] Virtualserver {VS} - DOWN", "=> Lost quorum 1+0=1 <= 0 <=")
        self.startWeb()
        self.waitMail(*rsUp, count=2)
        self.waitMail(f"[lb1] Virtualserver {VS} - UP", "=> Gained quorum 1+0=1 <= 1 <=")
        daemon.send_signal(signal.SIGTERM)
        self.assertIn(daemon.wait(15), (0, -signal.SIGTERM))
        relay.terminate()
        relay.wait(10)
        box = mailbox.Maildir(self.maildir, create=False)
        mail = next(m for _, m in box.items() if m["Subject"] == rsDown[0])
        self.assertEqual(mail["From"], "lb1@example.org")
        self.assertEqual(mail["To"], "ops@example.org")
        self.assertEqual(mail["X-Mailer"], "Keepalived")
