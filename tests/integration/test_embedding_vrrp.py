"""
The embedding API on real sockets: a plain program (no twistd, no twist)
builds L{KeepalivedService.fromFile}, adds an observer, calls only
C{startService} on the reactor, and stops it at SIGTERM -- inside a
namespace of the lab, raw VRRP sockets and netlink included.  The observer
hears the instance become MASTER (the VIP is then on eth0) and stop
(the VIP gone).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab, requireLab
from tests.integration.vrrpnode import V2_PASS, VIP4, checkoutEnv, configText, waitFor

PROGRAM = """\
import json, sys
from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from keepalive_tx import KeepalivedService

globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])

config, out = sys.argv[1:3]
events = open(out, "a", buffering=1)

def record(*event):
    events.write(json.dumps(event) + "\\n")

class Observer:
    def vrrpInstanceChanged(self, name, old, new, reason):
        record("instance", name, old, new, reason)

service = KeepalivedService.fromFile(config, reactor=reactor)
service.addObserver(Observer())
service.whenRunning().addCallbacks(lambda _: record("running"),
                                   lambda f: record("failed", f.getErrorMessage()))
reactor.callWhenRunning(service.startService)
reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
reactor.run()
"""


class EmbeddedVrrpTests(TestCase):
    timeout = 60

    def test_startServiceOnly(self) -> None:
        requireLab()
        lab = makeLab(self, 1)
        host = lab.hosts[0]
        directory = Path(self.mktemp())
        directory.mkdir()
        config = directory / "keepalived.conf"
        config.write_text(configText(V2_PASS, host, 150))
        program = directory / "embed.py"
        program.write_text(PROGRAM)
        out = directory / "events.jsonl"
        out.touch()
        log = open(directory / "stderr", "w")
        self.addCleanup(log.close)
        proc = host.spawn(sys.executable, str(program), str(config), str(out),
                          env=checkoutEnv(), stdout=log, stderr=log)

        def events() -> list[list[str]]:
            return [json.loads(line) for line in out.read_text().splitlines()]

        def report() -> str:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
            return f"events {events()}, stderr {(directory / 'stderr').read_text()[-3000:]}"

        master = ["instance", "VI_51", "BACKUP", "MASTER", "master down timer expired"]
        try:
            waitFor(lambda: master in events(), 15, "VI_51 MASTER")
        except AssertionError as e:
            raise AssertionError(f"{e}: {report()}") from None
        self.assertEqual(events()[:2], [["instance", "VI_51", "INIT", "BACKUP", events()[0][4]],
                                        ["running"]])
        waitFor(lambda: VIP4 in host.addresses(4), 5, "the VIP on eth0")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0, report())
        self.assertEqual(events()[-1][:4], ["instance", "VI_51", "MASTER", "STOP"])
        self.assertNotIn(VIP4, host.addresses(4))
