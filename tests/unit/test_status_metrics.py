"""
L{keepalive_tx.status.metrics}: the exposition text checked against the
metric definitions of the two keepalived exporters (transcribed below as
data: name, type and label names, from mehdy/keepalived-exporter's
collector and gen2brain/keepalived_exporter's), the queries of the
Grafana dashboard mehdy/keepalived-exporter ships, and the values
rendered from snapshots.
"""

from __future__ import annotations

import platform
import re
from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

import keepalive_tx
import twisted
from keepalive_tx.status.metrics import SECTIONS, SnapshotCollector, metricsText, vipLabel
from tests.fakes.status import TRAFFIC

_VRRP = ["iname", "intf", "vrid"]
_VIP = _VRRP + ["ip_address"]

#: mehdy/keepalived-exporter: name -> (type, label names)
MEHDY = {
    "keepalived_up": ("gauge", []),
    "keepalived_vrrp_state": ("gauge", _VIP),
    "keepalived_vrrp_excluded_state": ("gauge", _VIP),
    "keepalived_gratuitous_arp_delay_total": ("counter", _VRRP),
    "keepalived_script_status": ("gauge", ["name"]),
    "keepalived_script_state": ("gauge", ["name"]),
    **{f"keepalived_{n}_total": ("counter", _VRRP) for n in (
        "advertisements_received", "advertisements_sent", "become_master", "release_master",
        "packet_length_errors", "advertisements_interval_errors", "ip_ttl_errors",
        "invalid_type_received", "address_list_errors", "authentication_invalid",
        "authentication_mismatch", "authentication_failure", "priority_zero_received",
        "priority_zero_sent")},
}
#: mehdy's metrics keepalive_tx does not produce (see README)
MEHDY_NOT_PROVIDED = {"keepalived_exporter_check_script_status", "keepalived_exporter_build_info"}

#: gen2brain/keepalived_exporter's IPVS counters: name -> label names (typed
#: counter there, untyped here: see the module docstring of metrics)
GEN2BRAIN_LVS = {
    **{f"keepalived_lvs_vip_{n}": ["addr", "proto"]
       for n in ("in_packets", "out_packets", "in_bytes", "out_bytes", "conn")},
    **{f"keepalived_lvs_rs_{n}": ["vip", "addr", "proto"]
       for n in ("in_packets", "out_packets", "in_bytes", "out_bytes", "conn")},
}

#: the metric names queried by grafana/dashboards/keepalived-exporter.json of
#: mehdy/keepalived-exporter (title "Keepalived Exporter")
DASHBOARD = {
    "keepalived_up", "keepalived_script_status", "keepalived_script_state",
    "keepalived_vrrp_state", "keepalived_become_master_total", "keepalived_release_master_total",
    "keepalived_advertisements_sent_total", "keepalived_advertisements_received_total",
    "keepalived_priority_zero_sent_total", "keepalived_priority_zero_received_total",
    "keepalived_gratuitous_arp_delay_total", "keepalived_advertisements_interval_errors_total",
    "keepalived_packet_length_errors_total", "keepalived_ip_ttl_errors_total",
    "keepalived_invalid_type_received_total", "keepalived_address_list_errors_total",
    "keepalived_authentication_invalid_total", "keepalived_authentication_failure_total",
    "keepalived_authentication_mismatch_total",
}
#: ... and the one panel (the exporter's own check script) we cannot feed
DASHBOARD_NOT_PROVIDED = {"keepalived_exporter_check_script_status"}


def instance(name="VI_1", state="MASTER", vrid=51, interface="eth0", vips=(), evips=(),
             **more) -> dict:
    return {"name": name, "state": state, "vrid": vrid, "interface": interface,
            "vips": [{"address": a, "dev": d} for a, d in vips],
            "evips": [{"address": a, "dev": d} for a, d in evips],
            "base_priority": 100, "effective_priority": 100, "faults": [],
            "last_transition": None, "transitions": None, "garp_delay": 5, "stats": {}, **more}


def snapshot(instances=(), scripts=(), lvs=None, smtp=None) -> dict:
    return {"started": 1.5,
            "vrrp": {"instances": list(instances), "sync_groups": [],
                     "trackers": {"scripts": list(scripts), "processes": []}},
            "lvs": lvs, "smtp": smtp}


FULL = snapshot(
    [instance(vips=[("192.0.2.100/24", "eth0"), ("192.0.2.101/32", "eth1"),
                    ("2001:db8::1/64", "eth0"), ("2001:db8::2/128", "eth0")],
              evips=[("198.51.100.5/32", "eth0")],
              stats={"advert_rcvd": 7, "pri_zero_sent": 1}, garp_delay=3),
     instance("VI_2", "BACKUP", 52, "eth2")],
    [{"name": "chk_ok", "state": "OK", "last_status": 0, "phase": "running"},
     {"name": "chk_bad", "state": "KO", "last_status": 1, "phase": "idle"},
     {"name": "chk_new", "state": "unknown", "last_status": None,
      "phase": "requested termination"},
     {"name": "chk_off", "state": "disabled", "reason": "insecure"}])

A = ip_address


class Exposition:
    """
    The exposition text as Prometheus reads it: C{# TYPE} lines and
    samples (name, labels, value).
    """

    _SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    _LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                self.types[name] = kind
            elif line and not line.startswith("#"):
                m = self._SAMPLE.match(line)
                assert m is not None, line
                labels = dict(self._LABEL.findall(m.group(2) or ""))
                self.samples.append((m.group(1), labels, float(m.group(3))))

    def named(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for n, labels, value in self.samples if n == name]

    def value(self, name: str, **labels: str) -> float:
        found = [v for ls, v in self.named(name) if all(ls.get(k) == x for k, x in labels.items())]
        if len(found) != 1:
            raise AssertionError(f"{name} {labels}: {found} in {self.named(name)}")
        return found[0]


def render(snap: dict, traffic=None) -> Exposition:
    body, contentType = metricsText(lambda: snap, traffic)
    return Exposition(body.decode())


class ExporterCompatibilityTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.out = render(FULL, TRAFFIC)

    def test_mehdyNamesTypesLabels(self) -> None:
        """
        Every metric of keepalived-exporter that keepalive_tx provides
        is there with the exporter's name, type and label names.
        """
        for name, (kind, labels) in MEHDY.items():
            self.assertEqual(self.out.types.get(name), kind, name)
            samples = self.out.named(name)
            self.assertTrue(samples, name)
            for sampleLabels, _ in samples:
                self.assertEqual(sorted(sampleLabels), sorted(labels), name)
        for name in MEHDY_NOT_PROVIDED:
            self.assertEqual(self.out.named(name), [], name)

    def test_gen2brainLvsNamesLabels(self) -> None:
        """
        gen2brain's IPVS counters: exact sample names (no C{_total}), its
        label names, declared untyped.
        """
        for name, labels in GEN2BRAIN_LVS.items():
            self.assertEqual(self.out.types.get(name), "untyped", name)
            samples = self.out.named(name)
            self.assertTrue(samples, name)
            for sampleLabels, _ in samples:
                self.assertEqual(sorted(sampleLabels), sorted(labels), name)
            self.assertEqual(self.out.named(name + "_total"), [])

    def test_dashboard(self) -> None:
        """
        Every metric the exporter's Grafana dashboard queries is produced,
        but the exporter's own check script.
        """
        names = {n for n, _, _ in self.out.samples}
        self.assertEqual(DASHBOARD - names, set())
        self.assertEqual(DASHBOARD_NOT_PROVIDED & names, set())

    def test_everyCounterEndsInTotal(self) -> None:
        """
        Our own counters follow the convention too; only gen2brain's
        names lack the suffix (and are untyped).
        """
        for name, kind in self.out.types.items():
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), name)
            elif name not in GEN2BRAIN_LVS:
                self.assertIn(kind, ("gauge",), name)


class VrrpTests(SynchronousTestCase):
    def test_ipAddressAsKeepalivedWritesIt(self) -> None:
        """
        C{ip_address} is the address with its prefix, without it for a
        host address (as keepalived's data dump, which the exporter
        copies); C{intf} is the address's own device.
        """
        out = render(FULL)
        samples = sorted((ls["ip_address"], ls["intf"], v)
                         for ls, v in out.named("keepalived_vrrp_state") if ls["iname"] == "VI_1")
        self.assertEqual(samples, [("192.0.2.100/24", "eth0", 2), ("192.0.2.101", "eth1", 2),
                                   ("2001:db8::1/64", "eth0", 2), ("2001:db8::2", "eth0", 2)])
        self.assertEqual(out.named("keepalived_vrrp_excluded_state"),
                         [({"iname": "VI_1", "intf": "eth0", "vrid": "51",
                            "ip_address": "198.51.100.5"}, 2)])

    def test_instanceWithoutAddresses(self) -> None:
        """
        An instance without virtual addresses still has its state, with an
        empty C{ip_address} (as the exporter does) and its interface.
        """
        out = render(FULL)
        self.assertEqual(out.value("keepalived_vrrp_state", iname="VI_2"), 1)
        [(labels, _)] = [s for s in out.named("keepalived_vrrp_state") if s[0]["iname"] == "VI_2"]
        self.assertEqual(labels, {"iname": "VI_2", "intf": "eth2", "vrid": "52", "ip_address": ""})

    def test_vipLabel(self) -> None:
        self.assertEqual(vipLabel("192.0.2.1/24"), "192.0.2.1/24")
        self.assertEqual(vipLabel("192.0.2.1/32"), "192.0.2.1")
        self.assertEqual(vipLabel("192.0.2.1"), "192.0.2.1")
        self.assertEqual(vipLabel("2001:db8::1/128"), "2001:db8::1")
        self.assertEqual(vipLabel("2001:db8::1/64"), "2001:db8::1/64")
        self.assertEqual(vipLabel("bogus"), "bogus")

    def test_countersAndGarpDelay(self) -> None:
        out = render(FULL)
        self.assertEqual(out.value("keepalived_advertisements_received_total", iname="VI_1"), 7)
        self.assertEqual(out.value("keepalived_priority_zero_sent_total", iname="VI_1"), 1)
        self.assertEqual(out.value("keepalived_advertisements_sent_total", iname="VI_2"), 0)
        self.assertEqual(out.value("keepalived_gratuitous_arp_delay_total", iname="VI_1",
                                   intf="eth0", vrid="51"), 3)
        self.assertEqual(out.value("keepalived_gratuitous_arp_delay_total", iname="VI_2"), 5)

    def test_scripts(self) -> None:
        """
        Status 1 only for a script in the OK state (keepalived's GOOD:
        succeeded C{rise} times; an unknown one is BAD); state numbered
        idle 0, running 1, requested termination 2, forcing termination 3;
        a disabled script is absent (keepalived drops it).
        """
        out = render(FULL)
        self.assertEqual(sorted((ls["name"], v) for ls, v in out.named("keepalived_script_status")),
                         [("chk_bad", 0), ("chk_new", 0), ("chk_ok", 1)])
        self.assertEqual(sorted((ls["name"], v) for ls, v in out.named("keepalived_script_state")),
                         [("chk_bad", 0), ("chk_new", 2), ("chk_ok", 1)])

    def test_buildInfo(self) -> None:
        out = render(snapshot())
        self.assertEqual(out.types["keepalive_tx_build_info"], "gauge")
        self.assertEqual(out.named("keepalive_tx_build_info"),
                         [({"version": keepalive_tx.__version__,
                            "python": platform.python_version(),
                            "twisted": twisted.__version__}, 1)])
        self.assertEqual(out.value("keepalived_up"), 1)
        self.assertEqual(out.value("keepalived_start_time_seconds"), 1.5)

    def test_subsystemsAbsent(self) -> None:
        """
        Without VRRP, checkers or mail, only the process metrics remain.
        """
        out = render({"started": None, "vrrp": None, "lvs": None, "smtp": None})
        self.assertEqual({n for n, _, _ in out.samples}, {"keepalived_up", "keepalive_tx_build_info"})


class TrafficTests(SynchronousTestCase):
    def test_labelsAndValues(self) -> None:
        """
        C{addr}/C{vip} are C{address:port} as the exporter writes them (Go's
        form: IPv6 without brackets), C{proto} the protocol number;
        firewall-mark services are C{FWM n} with protocol 0 (the exporter
        would collide them all on C{<nil>:0}).
        """
        out = render(snapshot(), TRAFFIC)
        web = {"addr": "203.0.113.10:80", "proto": "6"}
        self.assertEqual(out.value("keepalived_lvs_vip_conn", **web), 3)
        self.assertEqual(out.value("keepalived_lvs_vip_in_packets", **web), 30)
        self.assertEqual(out.value("keepalived_lvs_vip_out_packets", **web), 20)
        self.assertEqual(out.value("keepalived_lvs_vip_in_bytes", **web), 3000)
        self.assertEqual(out.value("keepalived_lvs_vip_out_bytes", **web), 2**40)
        rs1 = {"vip": "203.0.113.10:80", "addr": "192.0.2.11:8080", "proto": "6"}
        self.assertEqual(out.value("keepalived_lvs_rs_conn", **rs1), 2)
        self.assertEqual(out.value("keepalived_lvs_rs_out_bytes", **rs1), 6000)
        self.assertEqual(out.value("keepalived_lvs_vip_in_bytes", addr="2001:db8::10:53",
                                   proto="17"), 4)
        self.assertEqual(out.value("keepalived_lvs_rs_in_bytes", vip="2001:db8::10:53",
                                   addr="2001:db8::11:53"), 4)
        self.assertEqual(out.value("keepalived_lvs_vip_conn", addr="FWM 7", proto="0"), 9)
        self.assertEqual(out.value("keepalived_lvs_vip_conn", addr="FWM 7 (inet6)"), 8)
        self.assertEqual(out.value("keepalived_lvs_rs_conn", vip="FWM 7", addr="192.0.2.13:0"), 9)

    def test_noTraffic(self) -> None:
        """
        Without IPVS counters (dry run, no checkers) the families are
        absent, not empty.
        """
        out = render(snapshot())
        self.assertFalse([n for n in out.types if n.startswith("keepalived_lvs_vip_")])
        out = render(snapshot(), [])
        self.assertEqual(out.types.get("keepalived_lvs_vip_conn"), "untyped")
        self.assertEqual(out.named("keepalived_lvs_vip_conn"), [])


class CollectorTests(SynchronousTestCase):
    def test_sectionsExtend(self) -> None:
        """
        A collector built with an extra section yields its families after
        the standard ones (how another subsystem adds its metrics).
        """
        from prometheus_client.core import GaugeMetricFamily

        def extra(snap):
            g = GaugeMetricFamily("keepalived_extra", "x")
            g.add_metric([], snap["extra"])
            yield g

        collector = SnapshotCollector(lambda: {**snapshot(), "extra": 4}, None,
                                      SECTIONS + (extra,))
        names = [f.name for f in collector.collect()]
        self.assertEqual(names[-1], "keepalived_extra")
        self.assertIn("keepalived_vrrp_state", names)
