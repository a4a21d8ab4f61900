"""
The status API and the signal dumps for real:

  - L{StatusService} on a loopback port, fetched with twisted.web's Agent;
  - our daemon (C{twistd keepalived}) in a lab namespace with
    C{status_listen} in its configuration and C{$TMPDIR} pointing at the
    test's directory: SIGUSR1 / SIGUSR2 / SIGRTMIN+2 / SIGRTMAX-1 write
    keepalived's files, and C{/status} and C{/metrics} answer inside the
    namespace (fetched by a tiny urllib client run there).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody

from keepalive_tx.status.web import StatusService
from tests.integration.support import URL_CLIENT
from tests.integration.vrrpnode import ROOT, checkoutEnv, ourTwistd, waitFor

SNAPSHOT = {
    "router_id": "lb1",
    "time": 1.0,
    "started": 0.5,
    "vrrp": {
        "instances": [{
            "name": "VI_1", "state": "MASTER", "wantstate": "MASTER", "vrid": 51,
            "interface": "eth0", "base_priority": 100, "effective_priority": 100,
            "vips": [{"address": "192.0.2.100/24", "dev": "eth0"}], "evips": [],
            "faults": [], "last_transition": 0.75, "transitions": 2,
            "stats": {"advert_rcvd": 3, "advert_sent": 9},
        }],
        "sync_groups": [],
    },
    "lvs": None,
    "smtp": None,
}


class StatusSiteTests(TestCase):
    """
    L{StatusService} over a real loopback socket.
    """

    @inlineCallbacks
    def setUp(self):
        self.service = StatusService("tcp:0:interface=127.0.0.1", lambda: SNAPSHOT, reactor)
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.assertIsNotNone(self.service.port)
        port = self.service.port.getHost().port
        self.base = f"http://127.0.0.1:{port}".encode()
        self.agent = Agent(reactor)
        yield None

    @inlineCallbacks
    def fetch(self, path: str, method: bytes = b"GET"):
        response = yield self.agent.request(method, self.base + path.encode())
        body = yield readBody(response)
        return response, body

    @inlineCallbacks
    def test_statusAndInstance(self):
        response, body = yield self.fetch("/status")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(json.loads(body), SNAPSHOT)
        response, body = yield self.fetch("/status/vrrp/VI_1")
        self.assertEqual(json.loads(body)["state"], "MASTER")
        response, body = yield self.fetch("/status/vrrp/VI_2")
        self.assertEqual(response.code, 404)

    @inlineCallbacks
    def test_metrics(self):
        from prometheus_client.parser import text_string_to_metric_families

        response, body = yield self.fetch("/metrics")
        self.assertEqual(response.code, 200)
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        [sample] = families["keepalived_vrrp_state"].samples
        self.assertEqual(sample.labels, {"iname": "VI_1", "intf": "eth0", "vrid": "51",
                                         "ip_address": "192.0.2.100/24"})
        self.assertEqual(sample.value, 2)
        [sent] = families["keepalived_advertisements_sent"].samples
        self.assertEqual(sent.value, 9)

    @inlineCallbacks
    def test_onlyGet(self):
        response, _ = yield self.fetch("/status", b"POST")
        self.assertEqual(response.code, 405)


CONFIG = """\
global_defs {
    router_id h1
    vrrp_version 3
    status_listen tcp:8123:interface=127.0.0.1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
    }
}
"""


class DaemonStatusTests(TestCase):
    """
    Our daemon in a lab host: signal dumps and the HTTP API.
    """

    def setUp(self) -> None:
        from tests.integration.netns import makeLab

        self.lab = makeLab(self, 1)
        self.host = self.lab.hosts[0]
        self.directory = os.path.abspath(self.mktemp())
        self.tmp = os.path.join(self.directory, "tmp")
        os.makedirs(self.tmp)
        conf = os.path.join(self.directory, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(CONFIG)
        self.logPath = os.path.join(self.directory, "daemon.log")
        twistd, _ = ourTwistd()
        with open(self.logPath, "w") as log:
            self.process = self.host.spawn(
                *twistd, "-n", "--pidfile", os.path.join(self.directory, "twistd.pid"),
                "keepalived", "-c", conf, cwd=ROOT, env=checkoutEnv({"TMPDIR": self.tmp}),
                stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        with open(self.logPath, errors="replace") as f:
            return f.read()

    def wait(self, predicate, what: str, timeout: float = 15.0) -> None:
        try:
            waitFor(predicate, timeout, what)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {what}\n{self.log()[-3000:]}") from None

    def get(self, path: str) -> str | None:
        result = self.host.run(sys.executable, "-c", URL_CLIENT, f"http://127.0.0.1:8123{path}",
                               check=False)
        return result.stdout if result.returncode == 0 else None

    def fileText(self, name: str) -> str | None:
        try:
            with open(os.path.join(self.tmp, name)) as f:
                return f.read()
        except OSError:
            return None

    def signal(self, signum: int, name: str) -> str:
        """
        Send C{signum}; wait until C{name} in C{$TMPDIR} is (re)written.
        """
        path = os.path.join(self.tmp, name)

        def stamp() -> int | None:
            try:
                return os.stat(path).st_ino
            except OSError:
                return None

        before = stamp()  # each write renames a new file over the old one
        self.process.send_signal(signum)
        self.wait(lambda: stamp() not in (None, before), f"{name} after signal {signum}")
        return self.fileText(name) or ""

    def test_dumpsAndHttp(self) -> None:
        self.wait(lambda: "(VI_1) Entering MASTER STATE" in self.log(), "VI_1 MASTER")

        data = self.signal(signal.SIGUSR1, "keepalived.data")
        self.assertIn("------< VRRP Topology >------\n VRRP Instance = VI_1\n", data)
        self.assertIn("   State = MASTER\n", data)
        self.assertIn("   Using src_ip = 192.0.2.11\n", data)

        stats = self.signal(signal.SIGUSR2, "keepalived.stats")
        self.assertTrue(stats.startswith("VRRP Instance: VI_1\n  Advertisements:\n"))
        self.assertIn("  Became master: 1\n", stats)

        document = json.loads(self.signal(signal.SIGRTMIN + 2, "keepalived.json"))
        self.assertEqual(document[0]["data"]["iname"], "VI_1")
        self.assertEqual(document[0]["data"]["state"], 2)
        self.assertGreater(document[0]["stats"]["advert_sent"], 0)

        self.wait(lambda: self.get("/status") is not None, "the status API")
        status = json.loads(self.get("/status"))
        [vi1] = status["vrrp"]["instances"]
        self.assertEqual((vi1["name"], vi1["state"], vi1["master_address"]),
                         ("VI_1", "MASTER", "192.0.2.11"))
        self.assertEqual(vi1["vips"], [{"address": "192.0.2.100/24", "dev": "eth0"}])
        self.assertEqual(vi1["stats"]["become_master"], 1)
        self.assertEqual(json.loads(self.get("/status/vrrp/VI_1"))["vrid"], 51)

        from prometheus_client.parser import text_string_to_metric_families

        metrics = {f.name: f for f in text_string_to_metric_families(self.get("/metrics"))}
        [state] = metrics["keepalived_vrrp_state"].samples
        self.assertEqual((state.labels["ip_address"], state.value), ("192.0.2.100/24", 2))
        [sent] = metrics["keepalived_advertisements_sent"].samples
        self.assertGreater(sent.value, 0)

        # STATS_CLEAR: the file shows the counters, then they start again from 0
        cleared = self.signal(signal.SIGRTMAX - 1, "keepalived.stats")
        self.assertIn("  Became master: 1\n", cleared)
        self.wait(lambda: json.loads(self.get("/status"))["vrrp"]["instances"][0]["stats"]
                  ["become_master"] == 0, "cleared counters")
        self.assertIn("Printing and clearing VRRP stats for process(", self.log())
        self.assertEqual(sorted(os.listdir(self.tmp)),
                         ["keepalived.data", "keepalived.json", "keepalived.stats"])

        self.assertIn("Status API listening on tcp:8123:interface=127.0.0.1", self.log())
        self.process.send_signal(signal.SIGTERM)
        # twistd re-raises the signal it stopped on, after a clean shutdown
        self.assertIn(self.process.wait(15), (0, -signal.SIGTERM))
        self.assertIn("Server Shut Down.", self.log())


class SignumTests(TestCase):
    def test_sameAsKeepalived(self) -> None:
        """
        C{--signum} answers what Debian's keepalived answers.
        """
        from keepalive_tx.status.dumps import SIGNAL_FUNCTIONS
        from tests.integration.netns import requireCommand

        keepalived = requireCommand("keepalived")
        for name, number in SIGNAL_FUNCTIONS.items():
            out = subprocess.run([keepalived, f"--signum={name}"], capture_output=True,
                                 text=True, timeout=10)
            self.assertEqual((out.returncode, out.stdout), (0, f"{number}\n"), name)
        out = subprocess.run([keepalived, "--signum=TDUMP"], capture_output=True, text=True,
                             timeout=10)
        self.assertEqual(out.returncode, 1)
