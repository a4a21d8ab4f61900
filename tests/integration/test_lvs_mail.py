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

import json
import mailbox
import os
import signal
import subprocess
import sys
from functools import partial

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab
from tests.integration.netns import waitUntil as waitFor
from tests.integration.shared import sharedFixture
from tests.integration.support import requireAiosmtpd
from tests.integration.uml import requireUML, runInGuest
from tests.integration.vrrpnode import ourTwistd

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
        At start the quorum is mailed, not the real server found healthy
        (keepalived sends no UP mail for it); killing the real server's web
        server mails RS DOWN with the TCP_CHECK wording and VS DOWN (quorum
        lost); restarting it mails RS UP and VS UP again.
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
        twistd, env = ourTwistd()
        daemon = self.director.spawn(
            *twistd, "-n", "--pidfile", os.path.join(self.dir, "ktx.pid"), "keepalived",
            "-c", conf, "-C", stdout=self.log("ktx.log"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, cwd=_CHECKOUT)
        rs = f"[{self.server.ipv4}]:tcp:{RS_PORT}"
        rsUp = (f"[lb1] Realserver {rs} of virtual server {VS} - UP", "=> TCP CHECK succeed on service <=")
        rsDown = (f"[lb1] Realserver {rs} of virtual server {VS} - DOWN", "=> TCP CHECK failed on service <=")
        self.waitMail(f"[lb1] Virtualserver {VS} - UP", "=> Starting with quorum up 1+0=1 <= 1 <=")
        ktxLog = os.path.join(self.dir, "ktx.log")
        waitFor(lambda: "success." in open(ktxLog).read(), 20, "the first check")
        web.kill()
        web.wait()
        self.waitMail(*rsDown)
        self.waitMail(f"[lb1] Virtualserver {VS} - DOWN", "=> Lost quorum 1+0=1 <= 0 <=")
        self.assertNotIn(rsUp, self.mails())
        self.startWeb()
        self.waitMail(*rsUp)
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


def _runStartGuest(variant: str) -> dict:
    result = runInGuest([sys.executable, "-m", "tests.integration.uml_guest_startmail", variant],
                        timeout=150, cwd=_CHECKOUT)
    if result.returncode != 0:
        raise AssertionError(f"guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    try:
        return json.loads(result.stdout)
    except ValueError as e:
        raise AssertionError(f"guest output is not JSON: {e}\n{result.stdout}\n{result.stderr}") from e


def _requirements() -> None:
    requireUML("keepalived", "ipvsadm")
    requireAiosmtpd()


#: L{tests.integration.uml_guest_startmail}'s report for each variant: one
#: guest boot per variant and test run, shared by trial's workers (the
#: variants are independent: three guests can boot side by side)
startReports = {
    variant: sharedFixture(f"uml-startmail-{variant}", partial(_runStartGuest, variant),
                           requires=_requirements, seconds=15)
    for variant in ("default", "rs_init_notifies", "alpha")
}


class StartMailsBesideKeepalivedTests(TestCase):
    """
    At start, with three real servers (healthy TCP_CHECK, healthy
    MISC_CHECK, failing TCP_CHECK), keepalived 2.2.7 and our daemon mail
    and run C{notify_up}/C{notify_down} alike, over real IPVS in a UML
    guest: no UP mail for the server found healthy by TCP_CHECK (ours sent
    one); MISC_CHECK mails its first success (keepalived does); with
    C{alpha} no DOWN mail for the server that was never up (ours sent
    one); C{rs_init_notifies} runs C{notify_up} for every server at start,
    before its first check (ours ran it after the first success only),
    and mails nothing more.
    """

    timeout = 300

    def setUp(self) -> None:
        _requirements()

    def compare(self, variant: str) -> dict:
        report = startReports[variant]()
        theirs, ours = report[variant]["keepalived"], report[variant]["ours"]
        self.assertEqual(ours, theirs, report["log"][-8000:])
        return theirs

    def test_default(self) -> None:
        seen = self.compare("default")
        subjects = [subject for subject, _ in seen["mails"]]
        self.assertEqual(len(subjects), 2, seen)
        self.assertFalse(any("127.0.0.1]:tcp:8080" in s for s in subjects), seen)
        self.assertEqual(seen["notify"], ["tcp-down DOWN"])

    def test_rsInitNotifies(self) -> None:
        seen = self.compare("rs_init_notifies")
        self.assertEqual(len(seen["mails"]), 2, seen)
        self.assertEqual(seen["notify"], ["misc-ok UP", "tcp-down DOWN", "tcp-down UP",
                                          "tcp-ok UP"])

    def test_alpha(self) -> None:
        seen = self.compare("alpha")
        self.assertEqual([s.endswith(" - UP") for s, _ in seen["mails"]], [True, True], seen)
