# -*- test-case-name: tests.unit.test_status_web -*-
"""
The status API keepalived never had: a small HTTP server with

  - C{GET /status}: the whole snapshot (L{keepalive_tx.status.snapshot})
    as JSON;
  - C{GET /status/vrrp}: the VRRP part; C{GET /status/vrrp/NAME}: one
    instance (404 when unknown);
  - C{GET /status/lvs}: the virtual servers;
  - C{GET /metrics}: Prometheus text exposition, collected from the same
    snapshot (and the IPVS traffic counters) by L{SnapshotCollector} in a
    registry of its own (nothing is registered in C{prometheus_client}'s
    global registry); names and labels as the keepalived exporters write
    them (L{keepalive_tx.status.metrics}).  C{prometheus_client} is a
    requirement; should it be missing all the same, C{/metrics} answers
    501 and says so.

L{StatusService} serves the tree on an endpoint description (C{status_listen
tcp:8123:interface=127.0.0.1} in C{global_defs}, or C{twistd keepalived
--status ENDPOINT}).  There is no authentication: bind it to loopback or a
management address.  Nothing secret is served (no passwords).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from keepalive_tx.status.metrics import SnapshotCollector, metricsText

__all__ = [
    "MetricsResource",
    "SnapshotCollector",
    "StatusService",
    "metricsText",
    "statusRoot",
]

SnapshotSource = Callable[[], dict[str, Any]]
#: starts a read of the IPVS counters: a Deferred, or None when there is nothing to read
TrafficSource = Callable[[], "Deferred[Any] | None"]

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

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return _NotFound("resource")


class _Index(Resource):
    def render_GET(self, request: Any) -> bytes:
        return _json(request, {"endpoints": ["/status", "/status/vrrp", "/status/vrrp/NAME",
                                             "/status/lvs", "/metrics"]})

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return _NotFound("resource")


class MetricsResource(Resource):
    """
    C{GET /metrics}: the snapshot's metrics, and the IPVS traffic counters
    when C{traffic} starts a read (the answer then waits for it: see
    L{keepalive_tx.lvs.traffic}).
    """

    isLeaf = True
    log = Logger()

    def __init__(self, source: SnapshotSource, traffic: TrafficSource | None = None) -> None:
        super().__init__()
        self.source = source
        self.traffic = traffic

    def render_GET(self, request: Any) -> Any:
        reading = self.traffic() if self.traffic is not None else None
        if reading is None:
            return self._render(request, None)
        gone: list[object] = []
        request.notifyFinish().addErrback(gone.append)

        def answer(traffic: Any) -> None:
            if not gone:
                request.write(self._render(request, traffic))
                request.finish()

        def failed(failure: Any) -> None:
            self.log.failure("IPVS traffic counters for /metrics", failure)
            answer(None)

        reading.addCallbacks(answer, failed)
        return NOT_DONE_YET

    def _render(self, request: Any, traffic: Any) -> bytes:
        try:
            body, contentType = metricsText(self.source, traffic)
        except ImportError:
            request.setResponseCode(501)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return MISSING_PROMETHEUS.encode("utf-8")
        request.setResponseCode(200)
        request.setHeader(b"content-type", contentType.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return body


def statusRoot(source: SnapshotSource, traffic: TrafficSource | None = None) -> Resource:
    """
    The resource tree (C{/status...}, C{/metrics}) over C{source}, a
    callable returning a fresh snapshot dict.

    @param traffic: starts a read of the IPVS traffic counters
        (L{keepalive_tx.lvs.traffic.TrafficReader.read}), or L{None}.
    """
    root = _Index()
    root.putChild(b"status", _Status(source))
    root.putChild(b"metrics", MetricsResource(source, traffic))
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

    def __init__(self, description: str, source: SnapshotSource, reactor: Any = None,
                 traffic: TrafficSource | None = None) -> None:
        """
        @param traffic: see L{statusRoot}.
        """
        self.description = description
        self.source = source
        self.reactor = reactor
        self.traffic = traffic
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
        d = endpoint.listen(_QuietSite(statusRoot(self.source, self.traffic)))

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
