"""
A web proxy that sends each request to a real server keepalive_tx's health
checks currently find healthy (round-robin among them; 503 when none is).

keepalive_tx runs inside this process, health checks only: no VRRP, and
IPVS changes are only logged (C{ipvs=False}), so it needs no privileges.
Which real servers are healthy comes from the embedding API's observer
calls (see C{docs/embedding.md}).

Run it::

    python3 -m http.server 8081 &
    python3 -m http.server 8082 &
    python3 docs/examples/healthy_proxy.py docs/examples/healthy_proxy.conf tcp:8080

then C{curl http://127.0.0.1:8080/} a few times, and stop one server.
"""

from __future__ import annotations

import sys
from typing import cast

from twisted.application.service import MultiService
from twisted.application.strports import service as listenService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore, IReactorTCP, IReactorTime
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python.failure import Failure
from twisted.web.pages import errorPage
from twisted.web.proxy import ReverseProxyResource
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from keepalive_tx import KeepalivedService


class HealthyBackends:
    """
    The healthy real servers of one virtual server (an observer providing
    C{realServerChanged} and C{reloadApplied} of L{IKeepalivedObserver}).

    @ivar healthy: C{(host, port)} of the healthy real servers, in
        configuration order.
    """

    log = Logger()

    def __init__(self, keepalived: KeepalivedService, virtualServer: str | None = None) -> None:
        """
        @param virtualServer: keepalived's name of the virtual server
            (C{"[192.0.2.1]:tcp:80"}); default the first one configured.
        """
        self.keepalived = keepalived
        self.virtualServer = virtualServer
        self.healthy: list[tuple[str, int]] = []
        self._next = 0
        keepalived.addObserver(self)
        # real servers start alive unless their checkers have "alpha": read
        # them once everything runs (failures are the host's to report)
        keepalived.whenRunning().addBoth(lambda _: self.refresh())

    def refresh(self) -> None:
        """
        Read the real servers of the running configuration again.
        """
        servers = self.keepalived.realServers()
        if self.virtualServer is None and servers:
            self.virtualServer = servers[0].virtualServer
        self.healthy = [(s.host, s.port) for s in servers
                        if s.virtualServer == self.virtualServer and s.up]

    def realServerChanged(self, virtualServer: str, host: str, port: int, up: bool) -> None:
        self.refresh()  # keeps configuration order
        if virtualServer == self.virtualServer:
            self.log.info("Real server {host}:{port} is {state}", host=host, port=port,
                          state="healthy" if up else "down")

    def reloadApplied(self, changed: tuple[str, ...]) -> None:
        self.refresh()

    def pick(self) -> tuple[str, int] | None:
        """
        The next healthy real server, round-robin; L{None} when none is.
        """
        if not self.healthy:
            return None
        self._next %= len(self.healthy)
        backend = self.healthy[self._next]
        self._next += 1
        return backend


class HealthyProxy(Resource):
    """
    Relays every request to L{HealthyBackends.pick}'s choice.
    """

    isLeaf = True

    def __init__(self, backends: HealthyBackends, reactor: IReactorTCP) -> None:
        super().__init__()
        self.backends = backends
        self.reactor = reactor

    def render(self, request: Request) -> object:
        backend = self.backends.pick()
        if backend is None:
            return errorPage(503, "Service Unavailable", "No healthy real server.").render(request)
        host, port = backend
        return ReverseProxyResource(host, port, request.path, reactor=self.reactor).render(request)


def makeProxy(configPath: str, reactor: IReactorTime) -> tuple[KeepalivedService, Site]:
    """
    keepalive_tx running the health checks of C{configPath}, and the web
    site relaying to the real servers they find healthy.
    """
    keepalived = KeepalivedService.fromFile(configPath, reactor=reactor, vrrp=False, ipvs=False)
    backends = HealthyBackends(keepalived)
    return keepalived, Site(HealthyProxy(backends, cast(IReactorTCP, reactor)))


def main(reactor: IReactorCore, configPath: str, listen: str = "tcp:8080") -> Deferred[None]:
    """
    Run the proxy on C{listen} (a server endpoint description) until
    interrupted.
    """
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    keepalived, site = makeProxy(configPath, cast(IReactorTime, reactor))
    root = MultiService()
    keepalived.setServiceParent(root)
    listenService(listen, site, reactor=reactor).setServiceParent(root)
    # a plain application: startService only (no privileges needed)
    root.startService()
    reactor.addSystemEventTrigger("before", "shutdown", root.stopService)

    def failed(reason: Failure) -> None:
        Logger().error("Cannot run the health checks: {why}", why=reason.getErrorMessage())

    keepalived.whenRunning().addErrback(failed)
    return Deferred()  # never fires: runs until interrupted


if __name__ == "__main__":
    from twisted.internet.task import react

    react(main, sys.argv[1:])
