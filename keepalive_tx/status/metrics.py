# -*- test-case-name: tests.unit.test_status_metrics -*-
"""
Prometheus metrics of a running keepalive_tx, collected by
C{prometheus_client} from one snapshot (L{keepalive_tx.status.snapshot})
and, where the kernel has IPVS, the traffic counters of the owned
virtual services (L{keepalive_tx.lvs.traffic}).

Names follow the two keepalived exporters operators run, so that their
dashboards and alerts keep working:

  - mehdy/keepalived-exporter (formerly cafebazaar): C{keepalived_up},
    C{keepalived_vrrp_state} / C{keepalived_vrrp_excluded_state}
    C{{iname, intf, vrid, ip_address}} (one sample per virtual address,
    written as keepalived writes it: with its prefix unless it is a host
    address; C{intf} is the address's device), the 14 VRRP counters and
    C{keepalived_gratuitous_arp_delay_total} C{{iname, intf, vrid}},
    C{keepalived_script_status} / C{keepalived_script_state} C{{name}};
  - gen2brain/keepalived_exporter: the IPVS counters
    C{keepalived_lvs_vip_*} C{{addr, proto}} and C{keepalived_lvs_rs_*}
    C{{vip, addr, proto}} (C{addr} is C{address:port}, C{proto} the IP
    protocol number).  That exporter types them counters without the
    C{_total} suffix; C{prometheus_client} follows OpenMetrics, where a
    counter's samples always end in C{_total}, so they are exposed as
    C{untyped} under the exporter's exact names (PromQL treats both
    alike; only the metadata differs).

Everything else is keepalive_tx's own, under the same C{keepalived_}
prefix (sync groups, priorities, faults, transitions, pools, checkers,
BFD sessions, mail), plus C{keepalive_tx_build_info} in the place of the exporter's
C{keepalived_exporter_build_info}.

Adding metrics: write a function C{snapshot -> iterable of metric
families} and add it to L{SECTIONS}.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from ipaddress import ip_interface
from typing import Any

import twisted
from keepalive_tx._version import __version__

__all__ = [
    "SECTIONS",
    "bfdFamilies",
    "SnapshotCollector",
    "collectFamilies",
    "contentType",
    "formatFamilies",
    "metricsText",
    "sectionFamilies",
    "trafficFamilies",
    "vipLabel",
]

Snapshot = dict[str, Any]

# -- VRRP ------------------------------------------------------------------------

#: (metric name without C{keepalived_} and C{_total}, stats key, help)
_VRRP_COUNTERS = (
    ("advertisements_received", "advert_rcvd", "Advertisements received"),
    ("advertisements_sent", "advert_sent", "Advertisements sent"),
    ("become_master", "become_master", "Times the instance became MASTER"),
    ("release_master", "release_master", "Times the instance released MASTER"),
    ("packet_length_errors", "packet_len_err", "Packets with a bad length"),
    ("advertisements_interval_errors", "advert_interval_err",
     "Advertisement interval mismatches (keepalived never counts these)"),
    ("ip_ttl_errors", "ip_ttl_err", "Packets with a bad TTL / hop limit"),
    ("invalid_type_received", "invalid_type_rcvd", "Packets with an invalid VRRP type"),
    ("address_list_errors", "addr_list_err", "Packets whose address list does not match"),
    ("authentication_invalid", "invalid_authtype", "Packets with an invalid auth type"),
    ("authentication_mismatch", "authtype_mismatch", "Packets with a different auth type"),
    ("authentication_failure", "auth_failure", "Packets failing authentication"),
    ("priority_zero_received", "pri_zero_rcvd", "Priority 0 advertisements received"),
    ("priority_zero_sent", "pri_zero_sent", "Priority 0 advertisements sent"),
    ("version_errors", "vers_err", "Packets with the wrong VRRP version"),
    ("checksum_errors", "chk_err", "Packets with a bad checksum"),
)

_STATE_NUMBERS = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3, "STOP": 98}

#: keepalived's script states, numbered as the exporter numbers them
_SCRIPT_PHASES = {"idle": 0, "running": 1, "requested termination": 2, "forcing termination": 3}

_INSTANCE = ["iname", "intf", "vrid"]


def _state(name: str) -> int:
    return _STATE_NUMBERS.get(name, -1)


def vipLabel(address: str) -> str:
    """
    A virtual address as keepalived writes it (and the exporter copies
    into C{ip_address}): C{192.0.2.100/24}, but C{192.0.2.101} for a host
    address (C{/32}, C{/128}).
    """
    try:
        iface = ip_interface(address)
    except ValueError:
        return address
    if iface.network.prefixlen == iface.max_prefixlen:
        return str(iface.ip)
    return str(iface)


def _gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: Sequence[str] = ()) -> Any:
    """
    A counter family; C{name} without C{_total} (the exposition adds it).
    """
    from prometheus_client.core import CounterMetricFamily

    return CounterMetricFamily(name, doc, labels=list(labels))


def processFamilies(snapshot: Snapshot) -> Iterator[Any]:
    """
    C{keepalived_up}, the start time and C{keepalive_tx_build_info}.
    """
    up = _gauge("keepalived_up", "Whether keepalive_tx is running")
    up.add_metric([], 1)
    yield up
    if snapshot.get("started") is not None:
        started = _gauge("keepalived_start_time_seconds", "When the daemon started (unix time)")
        started.add_metric([], snapshot["started"])
        yield started
    info = _gauge("keepalive_tx_build_info",
                  "keepalive_tx's version and the Python and Twisted running it (always 1)",
                  ["version", "python", "twisted"])
    info.add_metric([__version__, platform.python_version(), twisted.__version__], 1)
    yield info


def vrrpFamilies(snapshot: Snapshot) -> Iterator[Any]:
    """
    The exporter's VRRP metrics and ours, per instance and sync group.
    """
    vrrp = snapshot.get("vrrp")
    if vrrp is None:
        return
    perVip = _INSTANCE + ["ip_address"]
    state = _gauge("keepalived_vrrp_state",
                   "VRRP state per virtual address (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT)", perVip)
    excluded = _gauge("keepalived_vrrp_excluded_state",
                      "VRRP state per excluded virtual address", perVip)
    gauges = {
        "instance": _gauge("keepalived_vrrp_instance_state",
                           "VRRP state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP)", _INSTANCE),
        "effective_priority": _gauge("keepalived_vrrp_effective_priority",
                                     "Effective priority (base adjusted by trackers)", _INSTANCE),
        "base_priority": _gauge("keepalived_vrrp_base_priority", "Configured priority",
                                _INSTANCE),
        "faults": _gauge("keepalived_vrrp_faults", "Active fault flags", _INSTANCE),
        "last": _gauge("keepalived_vrrp_last_transition_timestamp_seconds",
                       "When the instance last changed state (unix time)", _INSTANCE),
    }
    transitions = _counter("keepalived_vrrp_transitions", "State changes", _INSTANCE)
    garpDelay = _counter("keepalived_gratuitous_arp_delay",
                         "garp_master_delay in seconds (a setting, typed counter as the "
                         "exporter types it)", _INSTANCE)
    counters = [(_counter(f"keepalived_{name}", doc, _INSTANCE), key)
                for name, key, doc in _VRRP_COUNTERS]
    for i in vrrp.get("instances", ()):
        intf = i.get("interface") or ""
        values = [i["name"], intf, str(i["vrid"])]
        number = _state(i["state"])
        for vip in i.get("vips") or ():
            state.add_metric([i["name"], vip.get("dev") or intf, str(i["vrid"]),
                              vipLabel(vip["address"])], number)
        if not i.get("vips"):
            state.add_metric(values + [""], number)
        for vip in i.get("evips") or ():
            excluded.add_metric([i["name"], vip.get("dev") or intf, str(i["vrid"]),
                                 vipLabel(vip["address"])], number)
        gauges["instance"].add_metric(values, number)
        gauges["effective_priority"].add_metric(values, i["effective_priority"])
        gauges["base_priority"].add_metric(values, i["base_priority"])
        gauges["faults"].add_metric(values, len(i.get("faults") or ()))
        if i.get("last_transition") is not None:
            gauges["last"].add_metric(values, i["last_transition"])
        if i.get("transitions") is not None:
            transitions.add_metric(values, i["transitions"])
        if i.get("garp_delay") is not None:
            garpDelay.add_metric(values, i["garp_delay"])
        stats = i.get("stats") or {}
        for family, key in counters:
            family.add_metric(values, stats.get(key, 0))
    yield state
    yield excluded
    yield from gauges.values()
    yield transitions
    yield garpDelay
    for family, _ in counters:
        yield family
    groups = _gauge("keepalived_vrrp_sync_group_state",
                    "Sync group state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT)", ["group"])
    for g in vrrp.get("sync_groups", ()):
        groups.add_metric([g["name"]], _state(g["state"]))
    yield groups


def scriptFamilies(snapshot: Snapshot) -> Iterator[Any]:
    """
    C{keepalived_script_status} (1 GOOD, 0 BAD: keepalived says GOOD only
    once the script has succeeded C{rise} times, so an unknown script is
    BAD) and C{keepalived_script_state} (0 idle, 1 running, 2 requested
    termination, 3 forcing termination) of every running C{vrrp_script};
    disabled scripts are left out, as keepalived drops them.
    """
    vrrp = snapshot.get("vrrp")
    if vrrp is None:
        return
    status = _gauge("keepalived_script_status", "Tracked script status (1 GOOD, 0 BAD)",
                    ["name"])
    phase = _gauge("keepalived_script_state",
                   "Tracked script state (0 idle, 1 running, 2 requested termination, "
                   "3 forcing termination)", ["name"])
    for script in (vrrp.get("trackers") or {}).get("scripts", ()):
        if script["state"] == "disabled":
            continue
        status.add_metric([script["name"]], int(script["state"] == "OK"))
        phase.add_metric([script["name"]], _SCRIPT_PHASES.get(script.get("phase", "idle"), 0))
    yield status
    yield phase


# -- LVS -------------------------------------------------------------------------


def lvsFamilies(snapshot: Snapshot) -> Iterator[Any]:
    """
    Pools, real servers and checkers, as the checkers see them.
    """
    lvs = snapshot.get("lvs")
    if lvs is None:
        return
    vsLabels = ["vs"]
    rsLabels = ["vs", "rs"]
    quorum = _gauge("keepalived_lvs_virtual_server_quorum_up",
                    "Whether the virtual server has quorum", vsLabels)
    live = _gauge("keepalived_lvs_virtual_server_live_weight",
                  "Sum of the weights of the alive real servers", vsLabels)
    suspended = _gauge("keepalived_lvs_virtual_server_suspended",
                       "Whether ha_suspend holds the virtual server", vsLabels)
    sorry = _gauge("keepalived_lvs_sorry_server_active", "Whether the sorry server is in use",
                   vsLabels)
    rsUp = _gauge("keepalived_lvs_real_server_up", "Whether the real server is alive", rsLabels)
    rsWeight = _gauge("keepalived_lvs_real_server_weight", "Real server's current weight",
                      rsLabels)
    checkerUp = _gauge("keepalived_lvs_checker_up", "Whether the checker says up",
                       rsLabels + ["checker", "index"])
    for vs in lvs.get("virtual_servers", ()):
        name = [vs["name"]]
        if vs.get("quorum_up") is not None:
            quorum.add_metric(name, int(vs["quorum_up"]))
        live.add_metric(name, vs["live_weight"])
        suspended.add_metric(name, int(vs["suspended"]))
        if vs.get("sorry_server") is not None:
            sorry.add_metric(name, int(vs["sorry_server"]["active"]))
        for rs in vs.get("real_servers", ()):
            values = name + [rs["name"]]
            rsUp.add_metric(values, int(rs["alive"]))
            rsWeight.add_metric(values, rs["weight"])
            for n, chk in enumerate(rs.get("checkers", ())):
                checkerUp.add_metric(values + [chk["kind"], str(n)], int(chk["up"]))
    yield from (quorum, live, suspended, sorry, rsUp, rsWeight, checkerUp)


#: (suffix, L{keepalive_tx.lvs.traffic.Traffic} field, help)
_TRAFFIC = (
    ("in_packets", "inPackets", "in packets"),
    ("out_packets", "outPackets", "out packets"),
    ("in_bytes", "inBytes", "in bytes"),
    ("out_bytes", "outBytes", "out bytes"),
    ("conn", "connections", "connections"),
)

_PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "SCTP": 132}


def _endpoint(address: Any, port: int) -> str:
    """
    C{address:port} as the exporter writes it (Go's C{IP.String()}, no
    brackets around IPv6).
    """
    return f"{address}:{port}"


def _service(key: Any) -> tuple[str, str]:
    """
    The exporter's C{addr}/C{vip} and C{proto} labels of a service; a
    firewall-mark service (no address, no port) is C{FWM n} with protocol
    0.
    """
    if key.fwmark:
        return str(key), "0"
    return _endpoint(key.address, key.port), str(_PROTOCOL_NUMBERS.get(key.protocol or "", 0))


def trafficFamilies(traffic: Iterable[Any]) -> Iterator[Any]:
    """
    gen2brain's IPVS counters from L{keepalive_tx.lvs.traffic.ServiceTraffic}s.
    """
    from prometheus_client.core import UnknownMetricFamily

    vip = [(UnknownMetricFamily(f"keepalived_lvs_vip_{suffix}", f"VIP {doc}",
                                labels=["addr", "proto"]), field)
           for suffix, field, doc in _TRAFFIC]
    rs = [(UnknownMetricFamily(f"keepalived_lvs_rs_{suffix}", f"RS {doc}",
                               labels=["vip", "addr", "proto"]), field)
          for suffix, field, doc in _TRAFFIC]
    for service in traffic:
        addr, proto = _service(service.key)
        for family, field in vip:
            family.add_metric([addr, proto], getattr(service.traffic, field))
        for dest, counters in service.destinations:
            labels = [addr, _endpoint(dest.address, dest.port), proto]
            for family, field in rs:
                family.add_metric(labels, getattr(counters, field))
    for family, _ in vip + rs:
        yield family


def smtpFamilies(snapshot: Snapshot) -> Iterator[Any]:
    """
    The mailer's counters.
    """
    smtp = snapshot.get("smtp")
    if smtp is None:
        return
    for key, doc in (("sent", "Alert mails delivered"),
                     ("failed_attempts", "Failed delivery attempts"),
                     ("dropped", "Alert mails given up")):
        c = _counter(f"keepalived_smtp_{key}", doc)
        c.add_metric([], smtp.get(key, 0))
        yield c
    q = _gauge("keepalived_smtp_queued", "Alert mails waiting")
    q.add_metric([], smtp.get("queued", 0))
    yield q


def bfdFamilies(snapshot: Snapshot) -> Iterator[Any]:
    """
    The BFD sessions (keepalive_tx's own names): state, what the clients
    see, detection time, transmission interval, counters; datagrams
    dropped by reason.
    """
    bfd = snapshot.get("bfd")
    if bfd is None:
        return
    from keepalive_tx.status.bfd import BFD_STATE_NUMBERS

    labels = ("name", "neighbor")
    state = _gauge("keepalived_bfd_session_state",
                   "BFD session state (0 AdminDown, 1 Down, 2 Init, 3 Up)", labels)
    up = _gauge("keepalived_bfd_session_up", "Whether the clients see the session up", labels)
    detection = _gauge("keepalived_bfd_detection_time_seconds",
                       "Detection time (remote multiplier x agreed remote interval)", labels)
    tx = _gauge("keepalived_bfd_transmit_interval_seconds",
                "Transmission interval in force (before jitter)", labels)
    last = _gauge("keepalived_bfd_last_detection_seconds",
                  "Silence before the last detection-time expiry", labels)
    counters = {
        key: _counter(f"keepalived_bfd_{name}", doc, labels)
        for key, name, doc in (
            ("transitions", "session_transitions", "Session state changes"),
            ("expiries", "detection_expiries", "Detection-time expiries"),
            ("packets_received", "packets_received", "Control packets accepted"),
            ("packets_sent", "packets_sent", "Control packets sent"),
            ("send_errors", "send_errors", "Control packets the kernel refused"),
        )
    }
    for s in bfd.get("sessions", ()):
        values = [s["name"], s["neighbor"]]
        state.add_metric(values, BFD_STATE_NUMBERS.get(s["state"], -1))
        up.add_metric(values, int(s["up"]))
        detection.add_metric(values, s["detection_time"])
        tx.add_metric(values, s["tx_interval"])
        if s.get("last_detection") is not None:
            last.add_metric(values, s["last_detection"])
        for key, family in counters.items():
            family.add_metric(values, s[key])
    dropped = _counter("keepalived_bfd_packets_dropped", "Received datagrams dropped, by reason",
                       ("reason",))
    for reason, n in (bfd.get("dropped") or {}).items():
        dropped.add_metric([reason], n)
    received = _counter("keepalived_bfd_datagrams_received", "Datagrams received on port 3784")
    received.add_metric([], bfd.get("received", 0))
    yield from (state, up, detection, tx, last, *counters.values(), dropped, received)


#: Everything collected from a snapshot, in exposition order.
SECTIONS: tuple[Callable[[Snapshot], Iterable[Any]], ...] = (
    processFamilies,
    vrrpFamilies,
    scriptFamilies,
    lvsFamilies,
    bfdFamilies,
    smtpFamilies,
)


class SnapshotCollector:
    """
    A C{prometheus_client} collector reading a fresh snapshot at every
    scrape.

    @ivar traffic: the IPVS counters read for this scrape (L{None}: none).
    """

    def __init__(self, source: Callable[[], Snapshot], traffic: Iterable[Any] | None = None,
                 sections: Sequence[Callable[[Snapshot], Iterable[Any]]] = SECTIONS) -> None:
        self.source = source
        self.traffic = traffic
        self.sections = sections

    def collect(self) -> Iterator[Any]:
        for families in sectionFamilies(self.source(), self.traffic, self.sections):
            yield from families


def sectionFamilies(snapshot: Snapshot, traffic: Iterable[Any] | None = None,
                    sections: Sequence[Callable[[Snapshot], Iterable[Any]]] = SECTIONS,
                    ) -> Iterator[list[Any]]:
    """
    The families of each section in turn (then the IPVS counters'), each
    list built when asked for: callers that must not hold the reactor
    long take one at a time.
    """
    for section in sections:
        yield list(section(snapshot))
    if traffic is not None:
        yield list(trafficFamilies(traffic))


class _Collected:
    """
    Families already collected, as a collector.
    """

    def __init__(self, families: Iterable[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return self.families


def collectFamilies(source: Callable[[], Snapshot],
                    traffic: Iterable[Any] | None = None) -> list[Any]:
    """
    The metric families of one snapshot (and the IPVS counters, if given).

    @raise ImportError: C{prometheus_client} is missing (a broken
        install: it is a requirement).
    """
    return list(SnapshotCollector(source, traffic).collect())


def formatFamilies(families: Iterable[Any]) -> bytes:
    """
    The text exposition (format 0.0.4) of C{families}.

    Formatting costs about 6 us per sample line on an idle core (30 us on
    the 2 shared cores of CI): callers with large tables format a few
    families at a time (L{keepalive_tx.status.web.MetricsResource}).
    """
    from prometheus_client import exposition

    return exposition.generate_latest(_Collected(families))  # type: ignore[arg-type]


def contentType() -> str:
    """
    The content type of L{formatFamilies}'s text.
    """
    from prometheus_client import exposition

    return getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)


def metricsText(source: Callable[[], Snapshot],
                traffic: Iterable[Any] | None = None) -> tuple[bytes, str]:
    """
    The Prometheus text exposition of one snapshot (and the IPVS
    counters, if given), and its content type.

    @raise ImportError: C{prometheus_client} is missing.
    """
    return formatFamilies(collectFamilies(source, traffic)), contentType()
