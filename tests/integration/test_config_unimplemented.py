"""
A real daemon with keywords keepalive_tx does not act on: each is logged
once at start, as a warning with its C{FILE:LINE}, to the syslog socket the
test binds; the daemon runs the rest of the configuration (it becomes
MASTER and holds the VIP); a SIGHUP reads the file again and reports them
again, once.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab, waitUntil
from tests.integration.support import Syslog
from tests.integration.vrrpnode import _TWISTD, ROOT, V2_PASS, checkoutEnv, configText, holders

VIP = "192.0.2.100"
LOG_DAEMON_WARNING = 3 * 8 + 4


class NotImplementedAtStartTests(TestCase):
    timeout = 120

    def test_loggedOnceAtStartAndReload(self) -> None:
        lab = makeLab(self, 1)
        host = lab.hosts[0]
        directory = Path(self.mktemp()).absolute()
        directory.mkdir()
        sockets = Path(tempfile.mkdtemp(prefix="ktx-ni-"))  # short: unix socket paths
        self.addCleanup(shutil.rmtree, sockets, True)
        syslog = Syslog(sockets / "log.sock")
        self.addCleanup(syslog.close)
        conf = directory / "keepalived.conf"
        text = configText(V2_PASS, host, 200).replace(
            "    router_id h", "    enable_snmp_vrrp\n    router_id h").replace(
            "    advert_int", "    promote_secondaries\n    promote_secondaries\n    advert_int")
        conf.write_text(text)
        lines = text.splitlines()
        snmpLine = lines.index("    enable_snmp_vrrp") + 1
        promoteLine = lines.index("    promote_secondaries") + 1
        output = directory / "out"
        with open(output, "w") as out:
            process = host.spawn(
                sys.executable, "-c", _TWISTD, "-n", "--pidfile", str(directory / "k.pid"),
                "keepalived", "--syslog-socket", syslog.path, "-c", str(conf),
                cwd=ROOT, env=checkoutEnv(), stdout=out, stderr=subprocess.STDOUT)

        def report() -> str:
            syslog.drain()
            return ("\n".join(d.decode("utf-8", "replace") for d in syslog.raw)
                    + "\n---- output ----\n" + output.read_text(errors="replace"))

        def warnings() -> list[tuple[int, str, str]]:
            return [(line.priority, line.ident, line.text) for line in syslog.drain()
                    if "not implemented by keepalive_tx" in line.text]

        expected = [
            (LOG_DAEMON_WARNING, "Keepalived",
             f"{conf}:{snmpLine}: 'enable_snmp_vrrp' is not implemented by keepalive_tx (ignored)"),
            (LOG_DAEMON_WARNING, "Keepalived",
             f"{conf}:{promoteLine}: 'promote_secondaries' is not implemented by keepalive_tx "
             "(ignored; also on 1 more line)"),
        ]
        waitUntil(lambda: (syslog.drain(), holders([host], VIP) == [host.index])[1], 30,
                  lambda: "MASTER with the VIP\n" + report())
        self.assertEqual(warnings(), expected, report())
        process.send_signal(signal.SIGHUP)
        waitUntil(lambda: len(warnings()) == 4, 30, lambda: "the reload's warnings\n" + report())
        self.assertEqual(warnings(), expected * 2, report())
        self.assertEqual(holders([host], VIP), [host.index], report())
        process.terminate()
        process.wait(20)
