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
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Cooperator
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from keepalive_tx.status.metrics import (
    SnapshotCollector,
    contentType,
    formatFamilies,
    metricsText,
    sectionFamilies,
)

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


class MetricsResource(Resource):
    """
    C{GET /metrics}: the snapshot's metrics, and the IPVS traffic counters
    when C{traffic} starts a read (see L{keepalive_tx.lvs.traffic}).

    With a C{cooperator}, the answer is built a section or a family at a
    time, yielding to the reactor between them: C{prometheus_client} costs
    tens of microseconds per sample, so the 11,400 samples of 100
    instances and 100 virtual servers of 10 real servers would otherwise
    hold the reactor for the whole scrape (C{bench/metrics.py} on the
    loaded 2-core CI machine: 0.2 to 1 s in one go, 25 to 120 ms at most
    sliced).  Without one (and with nothing to read), it is answered at
    once.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, source: SnapshotSource, traffic: TrafficSource | None = None,
                 cooperator: Cooperator | None = None) -> None:
        super().__init__()
        self.source = source
        self.traffic = traffic
        self.cooperator = cooperator

    def render_GET(self, request: Any) -> Any:
        reading = self.traffic() if self.traffic is not None else None
        if reading is None and self.cooperator is None:
            try:
                body, _ = metricsText(self.source)
            except ImportError:
                return self._missing(request)
            return self._ok(request, body)
        gone: list[object] = []
        request.notifyFinish().addErrback(gone.append)

        def readFailed(failure: Failure) -> None:
            self.log.failure("IPVS traffic counters for /metrics", failure)
            return None

        d = reading if reading is not None else succeed(None)
        d.addErrback(readFailed)
        d.addCallback(self._render)

        def answer(body: bytes) -> None:
            if not gone:
                request.write(self._ok(request, body))
                request.finish()

        def failed(failure: Failure) -> None:
            if gone:
                return
            if failure.check(ImportError):
                request.write(self._missing(request))
            else:
                self.log.failure("/metrics", failure)
                request.setResponseCode(500)
                request.write(b"cannot render the metrics (see the daemon log)\n")
            request.finish()

        d.addCallbacks(answer, failed)
        return NOT_DONE_YET

    def _render(self, traffic: Any) -> Deferred[bytes] | bytes:
        """
        The exposition of a fresh snapshot and C{traffic}: in one go, or
        with a cooperator one section's collection or one family's
        formatting per step.
        """
        if self.cooperator is None:
            return metricsText(self.source, traffic)[0]
        chunks: list[bytes] = []

        def steps() -> Iterator[None]:
            for families in sectionFamilies(self.source(), traffic):
                yield None
                for family in families:
                    chunks.append(formatFamilies([family]))
                    yield None

        return self.cooperator.coiterate(steps()).addCallback(lambda _: b"".join(chunks))

    @staticmethod
    def _ok(request: Any, body: bytes) -> bytes:
        request.setResponseCode(200)
        request.setHeader(b"content-type", contentType().encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return body

    @staticmethod
    def _missing(request: Any) -> bytes:
        request.setResponseCode(501)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return MISSING_PROMETHEUS.encode("utf-8")


def statusRoot(source: SnapshotSource, traffic: TrafficSource | None = None,
               cooperator: Cooperator | None = None) -> Resource:
    """
    The resource tree (C{/status...}, C{/metrics}) over C{source}, a
    callable returning a fresh snapshot dict.

    @param traffic: starts a read of the IPVS traffic counters
        (L{keepalive_tx.lvs.traffic.TrafficReader.read}), or L{None}.
    @param cooperator: formats C{/metrics} in slices (see
        L{MetricsResource}); L{None}: in one go.
    """
    root = _Index()
    root.putChild(b"status", _Status(source))
    root.putChild(b"metrics", MetricsResource(source, traffic, cooperator))
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
        cooperator = Cooperator(scheduler=lambda step: reactor.callLater(0, step))
        d = endpoint.listen(_QuietSite(statusRoot(self.source, self.traffic, cooperator)))

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
