"""
C{checker_share_identical} end to end: two daemons (C{twistd -n keepalived
-C}) in two lab hosts each check the same real server behind two virtual
servers (ports 80 and 443 of one address); a third lab host counts the TCP
connections each daemon makes.  The daemon with the switch makes half the
connections of the one without.

The daemons run in network namespaces, so whatever IPVS the host kernel
has (usually none: they then use the dry-run backend) stays there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab
from tests.integration.netns import waitUntil as waitFor
from tests.integration.vrrpnode import ourTwistd

SHARED_PORT = 8081
SEPARATE_PORT = 8082

#: counts accepted connections per port into a JSON file
COUNTER = r"""
import json, os, selectors, socket, sys
out, addr, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
counts = {str(p): 0 for p in ports}
sel = selectors.DefaultSelector()
for p in ports:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, p))
    s.listen(64)
    sel.register(s, selectors.EVENT_READ, str(p))
def dump():
    with open(out + ".tmp", "w") as f:
        json.dump(counts, f)
    os.replace(out + ".tmp", out)
dump()
while True:
    for key, _ in sel.select():
        c, _ = key.fileobj.accept()
        c.close()
        counts[key.data] += 1
        dump()
"""


def config(rs: str, port: int, share: bool) -> str:
    vs = "\n".join(f"""\
virtual_server 203.0.113.10 {vport} {{
    delay_loop 0.5
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server {rs} {port} {{
        TCP_CHECK {{
            connect_timeout 2
            warmup 0
        }}
    }}
}}""" for vport in (80, 443))
    return f"""\
global_defs {{
    router_id lb1
    {"checker_share_identical" if share else ""}
}}
{vs}
"""


class SharedCheckTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        # this checkout's code, whichever copy of keepalive_tx is installed
        self.twistd, self.env = ourTwistd()
        self.lab = makeLab(self, 3)
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.counts = os.path.join(self.dir, "counts.json")

    def logFile(self, name: str):
        f = open(os.path.join(self.dir, name), "ab")
        self.addCleanup(f.close)
        return f

    def read(self, name: str) -> str:
        with open(os.path.join(self.dir, name), errors="replace") as f:
            return f.read()

    def connections(self) -> dict[str, int]:
        try:
            with open(self.counts) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def daemon(self, host, name: str, port: int, share: bool) -> subprocess.Popen:
        conf = os.path.join(self.dir, f"{name}.conf")
        with open(conf, "w") as f:
            f.write(config(self.server.ipv4, port, share))
        proc = host.spawn(
            *self.twistd, "-n", "--pidfile", os.path.join(self.dir, f"{name}.pid"), "keepalived",
            "-c", conf, "-C", stdout=self.logFile(f"{name}.log"), stderr=subprocess.STDOUT,
            env=self.env,
            stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop, proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def test_halfTheConnections(self) -> None:
        """
        Over the same time, the daemon sharing the check of the real server
        behind two virtual servers connects to it half as often as the
        daemon checking it once per virtual server; it logs the sharing,
        and the real server is up in both virtual servers of both daemons.
        """
        sharing, separate, self.server = self.lab.hosts
        counter = self.server.spawn(
            sys.executable, "-c", COUNTER, self.counts, self.server.ipv4, str(SHARED_PORT),
            str(SEPARATE_PORT), stdout=self.logFile("counter.log"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: (counter.kill(), counter.wait()))
        waitFor(lambda: self.connections(), 20, "the connection counter")
        self.daemon(sharing, "shared", SHARED_PORT, True)
        self.daemon(separate, "separate", SEPARATE_PORT, False)
        key, other = str(SHARED_PORT), str(SEPARATE_PORT)
        waitFor(lambda: self.connections().get(key, 0) >= 2 and self.connections().get(other, 0) >= 4,
                40, lambda: f"first checks; counts {self.connections()}")
        before = self.connections()
        waitFor(lambda: self.connections()[key] - before[key] >= 6, 40,
                lambda: f"6 shared checks; counts {self.connections()}")
        after = self.connections()
        shared, separated = after[key] - before[key], after[other] - before[other]
        # one connection per delay_loop against two: about half
        self.assertGreaterEqual(separated, 2 * shared - 3, (shared, separated))
        self.assertLessEqual(separated, 2 * shared + 3, (shared, separated))
        log = self.read("shared.log")
        self.assertIn("checker_share_identical: 1 checkers shared by 2 real servers", log)
        self.assertNotIn("checker_share_identical", self.read("separate.log"))
        for name, port in (("shared", SHARED_PORT), ("separate", SEPARATE_PORT)):
            log = self.read(f"{name}.log")
            self.assertIn(f"TCP connection to [{self.server.ipv4}]:tcp:{port} success.", log)
            for vport in (80, 443):
                self.assertIn(f"Activating healthchecker for service [{self.server.ipv4}]:tcp:{port} "
                              f"for VS [203.0.113.10]:tcp:{vport}", log)
