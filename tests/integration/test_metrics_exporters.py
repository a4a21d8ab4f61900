"""
Side by side with Debian's keepalived 2.2.7: the metrics keepalived-exporter
(mehdy/keepalived-exporter) would publish for keepalived, and ours.

The same configuration runs under keepalived (its data dump,
C{keepalived.data} on SIGUSR1, is what the exporter reads; L{exporterView}
turns it into samples by the exporter's rules) and then under our daemon
(scraped on C{/metrics}).  The samples of C{keepalived_vrrp_state},
C{keepalived_vrrp_excluded_state}, C{keepalived_gratuitous_arp_delay_total},
C{keepalived_script_status} and C{keepalived_script_state} must be equal
(names, labels and values), and the VRRP counters must carry the same
label sets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab, requireCommand
from tests.integration.support import URL_CLIENT
from tests.integration.vrrpnode import OURS, Node, twistdArgv, waitFor

STATUS = "tcp:8123:interface=127.0.0.1"

CONFIG = """\
global_defs {
    router_id h1
    vrrp_version 3
}
vrrp_script chk_ok {
    script "/bin/true"
    interval 30
}
vrrp_script chk_bad {
    script "/bin/false"
    interval 30
    weight -10
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    garp_master_delay 3
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
        192.0.2.101 dev eth0
    }
    virtual_ipaddress_excluded {
        198.51.100.5/24 dev eth0
        2001:db8::5 dev eth0
    }
    track_script {
        chk_ok
        chk_bad
    }
}
"""

#: the families compared sample for sample
COMPARED = ("keepalived_vrrp_state", "keepalived_vrrp_excluded_state",
            "keepalived_gratuitous_arp_delay_total", "keepalived_script_status",
            "keepalived_script_state")

_STATES = ["INIT", "BACKUP", "MASTER", "FAULT"]
_SCRIPT_STATUS = ["BAD", "GOOD"]
_SCRIPT_STATES = ["idle", "running", "requested termination", "forcing termination"]


def exporterView(data: str) -> set[tuple]:
    """
    The samples keepalived-exporter derives from C{keepalived.data} (its
    text mode), as C{(name, sorted label items, value)}: an instance
    starts at C{ VRRP Instance = NAME}, its C{   Key = value} lines give
    the state, interface, GARP delay and VRID, lines indented by five
    under C{Virtual IP (n):} / C{Virtual IP Excluded...:} are addresses
    whose first word is C{ip_address} and third C{intf}; a script starts
    at C{ VRRP Script = NAME} with C{Status} and C{State} lines.
    """
    instances: dict[str, dict] = {}
    scripts: dict[str, dict] = {}
    current: dict | None = None
    key = ""
    for line in data.splitlines():
        if line.startswith(" VRRP Instance = "):
            current = instances.setdefault(line.split("=", 1)[1].strip(),
                                           {"vips": [], "evips": []})
            continue
        if line.startswith(" VRRP Script = "):
            current = scripts.setdefault(line.split("=", 1)[1].strip(), {})
            continue
        if not line.startswith("   ") or current is None:
            current = None if not line.startswith("   ") else current
            continue
        if line.startswith("     "):
            value = line.strip()
        elif "=" in line:
            key, value = (p.strip() for p in line.split("=", 1))
        elif ":" in line:
            key, value = (p.strip() for p in line.split(":", 1))
        else:
            continue
        if not value:
            continue
        if key.startswith("Virtual IP Excluded"):
            current["evips"].append(value)
        elif key.startswith("Virtual IP ("):
            current["vips"].append(value)
        elif key in ("State", "Interface", "Gratuitous ARP delay", "Virtual Router ID",
                     "Status"):
            current.setdefault(key, value)
    samples = set()
    for name, i in instances.items():
        state = _STATES.index(i["State"])
        common = (("iname", name), ("intf", i["Interface"]), ("vrid", i["Virtual Router ID"]))
        samples.add(("keepalived_gratuitous_arp_delay_total", common,
                     float(i["Gratuitous ARP delay"])))
        for family, vips in (("keepalived_vrrp_state", i["vips"]),
                             ("keepalived_vrrp_excluded_state", i["evips"])):
            for vip in vips:
                words = vip.split(" ")
                labels = (("iname", name), ("intf", words[2]), ("ip_address", words[0]),
                          ("vrid", i["Virtual Router ID"]))
                samples.add((family, labels, float(state)))
    for name, s in scripts.items():
        samples.add(("keepalived_script_status", (("name", name),),
                     float(_SCRIPT_STATUS.index(s["Status"]))))
        samples.add(("keepalived_script_state", (("name", name),),
                     float(_SCRIPT_STATES.index(s["State"]))))
    return samples


def ourView(text: str) -> tuple[set[tuple], dict[str, list[dict]]]:
    """
    Our exposition: the compared samples, and the label sets of every
    family (by sample name).
    """
    from prometheus_client.parser import text_string_to_metric_families

    samples = set()
    labels: dict[str, list[dict]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels.setdefault(s.name, []).append(s.labels)
            if s.name in COMPARED:
                samples.add((s.name, tuple(sorted(s.labels.items())), float(s.value)))
    return samples, labels


class ExporterSideBySideTests(TestCase):
    def setUp(self) -> None:
        self.keepalived = requireCommand("keepalived")
        self.lab = makeLab(self, 1)
        self.host = self.lab.hosts[0]
        self.directory = os.path.abspath(self.mktemp())
        self.tmp = os.path.join(self.directory, "tmp")
        os.makedirs(self.tmp)

    def keepalivedData(self) -> str:
        """
        Run keepalived with L{CONFIG} until MASTER; its C{keepalived.data}.
        """
        conf = os.path.join(self.directory, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(CONFIG)
        logPath = os.path.join(self.directory, "keepalived.log")
        with open(logPath, "w") as log:
            process = self.host.spawn(
                self.keepalived, "-n", "-l", "-D", "-P", "-f", conf,
                "-p", os.path.join(self.directory, "k.pid"),
                "-r", os.path.join(self.directory, "k-vrrp.pid"),
                env=dict(os.environ, TMPDIR=self.tmp), stdout=log, stderr=subprocess.STDOUT)

        def text() -> str:
            with open(logPath, errors="replace") as f:
                return f.read()

        path = os.path.join(self.tmp, "keepalived.data")
        try:
            waitFor(lambda: "(VI_1) Entering MASTER STATE" in text(), 20, "keepalived MASTER")
            waitFor(lambda: "VRRP_Script(chk_ok) succeeded" in text(), 10, "chk_ok")
            process.send_signal(signal.SIGUSR1)
            waitFor(lambda: os.path.exists(path) and "VRRP Script" in open(path).read(), 10,
                    "keepalived.data")
            with open(path) as f:
                return f.read()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)

    def ourMetrics(self, expected: set[tuple]) -> tuple[set[tuple], dict]:
        node = Node(self.host, OURS, self.directory)
        node.start(CONFIG, argv=lambda conf, pid: twistdArgv(conf, pid) + ["--status", STATUS])
        self.addCleanup(node.stop)
        latest: list = [None]

        def scrape() -> bool:
            out = self.host.run(sys.executable, "-c", URL_CLIENT, "http://127.0.0.1:8123/metrics",
                                check=False)
            if out.returncode != 0:
                return False
            latest[0] = ourView(out.stdout)
            return latest[0][0] == expected

        try:
            waitFor(scrape, 20, "our metrics to settle on keepalived's", [node])
        except AssertionError:
            pass  # compared (with a diff) below
        self.assertIsNotNone(latest[0], node.logTail())
        return latest[0]

    def test_sameSamplesAsTheExporter(self) -> None:
        data = self.keepalivedData()
        expected = exporterView(data)
        # the view is not empty by accident: what keepalived 2.2.7 writes
        self.assertIn(("keepalived_vrrp_state", (("iname", "VI_1"), ("intf", "eth0"),
                       ("ip_address", "192.0.2.100/24"), ("vrid", "51")), 2.0), expected, data)
        self.assertIn(("keepalived_vrrp_state", (("iname", "VI_1"), ("intf", "eth0"),
                       ("ip_address", "192.0.2.101"), ("vrid", "51")), 2.0), expected, data)
        self.assertEqual(len(expected), 9, data)  # 4 addresses, GARP, 2 x 2 script
        ours, labels = self.ourMetrics(expected)
        self.assertEqual(sorted(ours - expected), [])
        self.assertEqual(sorted(expected - ours), [])
        counters = labels["keepalived_advertisements_sent_total"]
        self.assertEqual(counters, [{"iname": "VI_1", "intf": "eth0", "vrid": "51"}])
