# -*- test-case-name: tests.unit.test_status_web -*-
"""
The status API keepalived never had: a small HTTP server with

  - C{GET /status}: the whole snapshot (L{keepalive_tx.status.snapshot})
    as JSON;
  - C{GET /status/vrrp}: the VRRP part; C{GET /status/vrrp/NAME}: one
    instance (404 when unknown);
  - C{GET /status/lvs}: the virtual servers;
  - C{GET /metrics}: Prometheus text exposition, collected from the same
    snapshot by L{SnapshotCollector} in a registry of its own (nothing is
    registered in C{prometheus_client}'s global registry).
    C{prometheus_client} is optional: without it C{/metrics} answers 501.

Metric names follow the widely used keepalived exporters where they exist
(C{keepalived_vrrp_state}, C{keepalived_advertisements_received_total},
...), so existing dashboards keep working.

L{StatusService} serves the tree on an endpoint description (C{status_listen
tcp:8123:interface=127.0.0.1} in C{global_defs}, or C{twistd keepalived
--status ENDPOINT}).  There is no authentication: bind it to loopback or a
management address.  Nothing secret is served (no passwords).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site

__all__ = [
    "MetricsResource",
    "SnapshotCollector",
    "StatusService",
    "metricsText",
    "statusRoot",
]

SnapshotSource = Callable[[], dict[str, Any]]

JSON_TYPE = b"application/json"
MISSING_PROMETHEUS = (
    "prometheus_client is not installed: /metrics is unavailable "
    "(pip install prometheus-client)\n"
)


def _json(request: Any, value: Any, code: int = 200) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", JSON_TYPE)
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(value, indent=1, sort_keys=False).encode("utf-8") + b"\n"


def _notFound(request: Any, what: str) -> bytes:
    return _json(request, {"error": f"{what} not found"}, 404)


class _NotFound(Resource):
    isLeaf = True

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def render_GET(self, request: Any) -> bytes:
        return _notFound(request, self.what)


class _Part(Resource):
    """
    A JSON view of the snapshot: C{select(snapshot)}.
    """

    def __init__(self, source: SnapshotSource,
                 select: Callable[[dict[str, Any]], Any]) -> None:
        super().__init__()
        self.source = source
        self.select = select

    def render_GET(self, request: Any) -> bytes:
        return _json(request, self.select(self.source()))


class _Instance(Resource):
    isLeaf = True

    def __init__(self, source: SnapshotSource, name: str) -> None:
        super().__init__()
        self.source = source
        self.name = name

    def render_GET(self, request: Any) -> bytes:
        if request.postpath and request.postpath != [b""]:
            return _notFound(request, "resource")
        vrrp = self.source().get("vrrp") or {}
        for instance in vrrp.get("instances", ()):
            if instance["name"] == self.name:
                return _json(request, instance)
        return _notFound(request, f"VRRP instance {self.name!r}")


class _Vrrp(_Part):
    def __init__(self, source: SnapshotSource) -> None:
        super().__init__(source, lambda s: s.get("vrrp"))

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return _Instance(self.source, unquote(path.decode("utf-8", "replace")))


class _Status(_Part):
    def __init__(self, source: SnapshotSource) -> None:
        super().__init__(source, lambda s: s)
        self.putChild(b"vrrp", _Vrrp(source))
        self.putChild(b"lvs", _Part(source, lambda s: s.get("lvs")))
        self.putChild(b"bfd", _Part(source, lambda s: s.get("bfd")))

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return _NotFound("resource")


class _Index(Resource):
    def render_GET(self, request: Any) -> bytes:
        return _json(request, {"endpoints": ["/status", "/status/vrrp", "/status/vrrp/NAME",
                                             "/status/lvs", "/status/bfd", "/metrics"]})

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return _NotFound("resource")


# -- Prometheus ----------------------------------------------------------------

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


def _state(name: str) -> int:
    return _STATE_NUMBERS.get(name, -1)


class SnapshotCollector:
    """
    A C{prometheus_client} collector reading a fresh snapshot at every
    scrape.
    """

    def __init__(self, source: SnapshotSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snapshot = self.source()
        up = GaugeMetricFamily("keepalived_up", "Whether keepalive_tx is running")
        up.add_metric([], 1)
        yield up
        if snapshot.get("started") is not None:
            started = GaugeMetricFamily("keepalived_start_time_seconds",
                                        "When the daemon started (unix time)")
            started.add_metric([], snapshot["started"])
            yield started
        vrrp = snapshot.get("vrrp")
        if vrrp is not None:
            yield from self._vrrp(vrrp, CounterMetricFamily, GaugeMetricFamily)
        lvs = snapshot.get("lvs")
        if lvs is not None:
            yield from self._lvs(lvs, GaugeMetricFamily)
        bfd = snapshot.get("bfd")
        if bfd is not None:
            yield from _bfdMetrics(bfd, CounterMetricFamily, GaugeMetricFamily)
        smtp = snapshot.get("smtp")
        if smtp is not None:
            for key, doc in (("sent", "Alert mails delivered"),
                             ("failed_attempts", "Failed delivery attempts"),
                             ("dropped", "Alert mails given up")):
                c = CounterMetricFamily(f"keepalived_smtp_{key}", doc)
                c.add_metric([], smtp.get(key, 0))
                yield c
            q = GaugeMetricFamily("keepalived_smtp_queued", "Alert mails waiting")
            q.add_metric([], smtp.get("queued", 0))
            yield q

    def _vrrp(self, vrrp: dict[str, Any], Counter: Any, Gauge: Any) -> Iterator[Any]:
        labels = ["iname", "intf", "vrid"]
        state = Gauge("keepalived_vrrp_state",
                      "VRRP state per virtual address (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT)",
                      labels=labels + ["ip_address"])
        excluded = Gauge("keepalived_vrrp_excluded_state",
                         "VRRP state per excluded virtual address", labels=labels + ["ip_address"])
        gauges = {
            "instance": Gauge("keepalived_vrrp_instance_state",
                              "VRRP state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP)",
                              labels=labels),
            "effective_priority": Gauge("keepalived_vrrp_effective_priority",
                                        "Effective priority (base adjusted by trackers)",
                                        labels=labels),
            "base_priority": Gauge("keepalived_vrrp_base_priority", "Configured priority",
                                   labels=labels),
            "faults": Gauge("keepalived_vrrp_faults", "Active fault flags", labels=labels),
            "last": Gauge("keepalived_vrrp_last_transition_timestamp_seconds",
                          "When the instance last changed state (unix time)", labels=labels),
        }
        transitions = Counter("keepalived_vrrp_transitions", "State changes", labels=labels)
        counters = [(Counter(f"keepalived_{name}", doc, labels=labels), key)
                    for name, key, doc in _VRRP_COUNTERS]
        for i in vrrp.get("instances", ()):
            values = [i["name"], i.get("interface") or "", str(i["vrid"])]
            number = _state(i["state"])
            for vip in i.get("vips") or [{"address": ""}]:
                state.add_metric(values + [_host(vip["address"])], number)
            for vip in i.get("evips") or ():
                excluded.add_metric(values + [_host(vip["address"])], number)
            gauges["instance"].add_metric(values, number)
            gauges["effective_priority"].add_metric(values, i["effective_priority"])
            gauges["base_priority"].add_metric(values, i["base_priority"])
            gauges["faults"].add_metric(values, len(i.get("faults") or ()))
            if i.get("last_transition") is not None:
                gauges["last"].add_metric(values, i["last_transition"])
            if i.get("transitions") is not None:
                transitions.add_metric(values, i["transitions"])
            stats = i.get("stats") or {}
            for family, key in counters:
                family.add_metric(values, stats.get(key, 0))
        yield state
        yield excluded
        yield from gauges.values()
        yield transitions
        for family, _ in counters:
            yield family
        groups = Gauge("keepalived_vrrp_sync_group_state",
                       "Sync group state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT)", labels=["group"])
        for g in vrrp.get("sync_groups", ()):
            groups.add_metric([g["name"]], _state(g["state"]))
        yield groups

    def _lvs(self, lvs: dict[str, Any], Gauge: Any) -> Iterator[Any]:
        vsLabels = ["vs"]
        rsLabels = ["vs", "rs"]
        quorum = Gauge("keepalived_lvs_virtual_server_quorum_up",
                       "Whether the virtual server has quorum", labels=vsLabels)
        live = Gauge("keepalived_lvs_virtual_server_live_weight",
                     "Sum of the weights of the alive real servers", labels=vsLabels)
        suspended = Gauge("keepalived_lvs_virtual_server_suspended",
                          "Whether ha_suspend holds the virtual server", labels=vsLabels)
        sorry = Gauge("keepalived_lvs_sorry_server_active", "Whether the sorry server is in use",
                      labels=vsLabels)
        rsUp = Gauge("keepalived_lvs_real_server_up", "Whether the real server is alive",
                     labels=rsLabels)
        rsWeight = Gauge("keepalived_lvs_real_server_weight", "Real server's current weight",
                         labels=rsLabels)
        checkerUp = Gauge("keepalived_lvs_checker_up", "Whether the checker says up",
                          labels=rsLabels + ["checker", "index"])
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


def _bfdMetrics(bfd: dict[str, Any], Counter: Any, Gauge: Any) -> Iterator[Any]:
    from keepalive_tx.status.bfd import BFD_STATE_NUMBERS

    labels = ["name", "neighbor"]
    state = Gauge("keepalived_bfd_session_state",
                  "BFD session state (0 AdminDown, 1 Down, 2 Init, 3 Up)", labels=labels)
    up = Gauge("keepalived_bfd_session_up", "Whether the clients see the session up",
               labels=labels)
    detection = Gauge("keepalived_bfd_detection_time_seconds",
                      "Detection time (remote multiplier x agreed remote interval)",
                      labels=labels)
    tx = Gauge("keepalived_bfd_transmit_interval_seconds",
               "Transmission interval in force (before jitter)", labels=labels)
    last = Gauge("keepalived_bfd_last_detection_seconds",
                 "Silence before the last detection-time expiry", labels=labels)
    counters = {
        key: Counter(f"keepalived_bfd_{name}", doc, labels=labels)
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
    dropped = Counter("keepalived_bfd_packets_dropped", "Received datagrams dropped, by reason",
                      labels=["reason"])
    for reason, n in (bfd.get("dropped") or {}).items():
        dropped.add_metric([reason], n)
    received = Counter("keepalived_bfd_datagrams_received", "Datagrams received on port 3784")
    received.add_metric([], bfd.get("received", 0))
    yield from (state, up, detection, tx, last, *counters.values(), dropped, received)


def _host(address: str) -> str:
    return address.split("/")[0]


def metricsText(source: SnapshotSource) -> tuple[bytes, str]:
    """
    The Prometheus text exposition of one snapshot, and its content type.

    @raise ImportError: C{prometheus_client} is not installed.
    """
    from prometheus_client import CollectorRegistry, exposition

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(source))
    contentType = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)
    return exposition.generate_latest(registry), contentType


class MetricsResource(Resource):
    """
    C{GET /metrics}.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, source: SnapshotSource) -> None:
        super().__init__()
        self.source = source

    def render_GET(self, request: Any) -> bytes:
        try:
            body, contentType = metricsText(self.source)
        except ImportError:
            request.setResponseCode(501)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return MISSING_PROMETHEUS.encode("utf-8")
        request.setResponseCode(200)
        request.setHeader(b"content-type", contentType.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return body


def statusRoot(source: SnapshotSource) -> Resource:
    """
    The resource tree (C{/status...}, C{/metrics}) over C{source}, a
    callable returning a fresh snapshot dict.
    """
    root = _Index()
    root.putChild(b"status", _Status(source))
    root.putChild(b"metrics", MetricsResource(source))
    return root


class _QuietSite(Site):
    """
    No access log (scrapes every few seconds would flood the daemon log).
    """

    noisy = False

    def log(self, request: Any) -> None:
        pass


class StatusService(Service):
    """
    Serves L{statusRoot} on a server endpoint description.  A failure to
    listen is logged; it never stops the daemon.

    @ivar port: the listening port (an C{IListeningPort}) once listening.
    """

    log = Logger()
    name = "status"

    def __init__(self, description: str, source: SnapshotSource, reactor: Any = None) -> None:
        self.description = description
        self.source = source
        self.reactor = reactor
        self.port: Any = None
        self._attempted = False

    def _listen(self) -> None:
        if self._attempted:
            return
        self._attempted = True
        from twisted.internet.endpoints import serverFromString

        reactor = self.reactor
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        try:
            endpoint = serverFromString(reactor, self.description)
        except (ValueError, KeyError, TypeError) as e:
            self.log.error("status_listen: bad endpoint {desc!r}: {error}",
                           desc=self.description, error=e)
            return
        d = endpoint.listen(_QuietSite(statusRoot(self.source)))

        def listening(port: Any) -> Any:
            self.port = port
            self.log.info("Status API listening on {desc}", desc=self.description)
            return port

        def failed(failure: Any) -> None:
            self.log.error("Cannot listen for the status API on {desc}: {error}",
                           desc=self.description, error=failure.getErrorMessage())

        d.addCallbacks(listening, failed)

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        self._listen()

    def stopService(self) -> Any:
        super().stopService()
        port, self.port = self.port, None
        self._attempted = False
        if port is not None:
            return port.stopListening()
        return None
