"""
C{docs/examples/healthy_proxy.py} for real: keepalive_tx embedded in a
twisted.web proxy, real HTTP servers on loopback checked by HTTP_GET
(IPVS dry run), requests through the proxy on a real socket.

The host only calls C{startService} (as a plain application does).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody
from twisted.web.resource import Resource
from twisted.web.server import Site

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "healthy_proxy.py"

CONFIG = """
global_defs {
    router_id embedded
}
virtual_server 192.0.2.1 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    alpha
%s
}
"""

REAL_SERVER = """
    real_server 127.0.0.1 %d {
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
            retry 0
        }
    }
"""


def loadExample() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthy_proxy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Backend(Resource):
    """
    A real server: C{/health} answers 200, everything else its name.
    """

    isLeaf = True

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def render_GET(self, request) -> bytes:
        if request.path == b"/health":
            return b"ok"
        return self.name.encode() + b" " + request.path


class Waiter:
    """
    An observer whose L{until} fires when a real server reaches a state.
    """

    def __init__(self) -> None:
        self.waiting: list[tuple[int, bool, Deferred[None]]] = []

    def realServerChanged(self, virtualServer: str, host: str, port: int, up: bool) -> None:
        for entry in list(self.waiting):
            if entry[:2] == (port, up):
                self.waiting.remove(entry)
                entry[2].callback(None)

    def until(self, port: int, up: bool, timeout: float = 10.0) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.waiting.append((port, up, d))
        return d.addTimeout(timeout, reactor)


class HealthyProxyTests(TestCase):
    timeout = 60

    def listenBackend(self, name: str, port: int = 0):
        listening = reactor.listenTCP(port, Site(Backend(name)), interface="127.0.0.1")
        return listening

    @inlineCallbacks
    def test_avoidsStoppedServer(self):
        example = loadExample()
        ports = {}
        servers = {}
        for name in ("a", "b"):
            servers[name] = self.listenBackend(name)
            ports[name] = servers[name].getHost().port
        self.addCleanup(lambda: [s.stopListening() for s in servers.values()])
        config = Path(self.mktemp())
        config.write_text(CONFIG % "".join(REAL_SERVER % ports[n] for n in ("a", "b")))
        keepalived, site = example.makeProxy(str(config), reactor)
        waiter = Waiter()
        keepalived.addObserver(waiter)
        upA, upB = waiter.until(ports["a"], True), waiter.until(ports["b"], True)
        # the host only calls startService (through its parent)
        root = MultiService()
        keepalived.setServiceParent(root)
        root.startService()
        self.addCleanup(root.stopService)
        yield keepalived.whenRunning()
        proxy = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(proxy.stopListening)
        proxyPort = proxy.getHost().port
        agent = Agent(reactor)

        @inlineCallbacks
        def get(path: str):
            response = yield agent.request(b"GET", f"http://127.0.0.1:{proxyPort}{path}".encode())
            body = yield readBody(response)
            return response.code, body.decode()

        @inlineCallbacks
        def names(count: int):
            seen = []
            for i in range(count):
                code, body = yield get(f"/page{i}")
                self.assertEqual(code, 200, body)
                name, path = body.split()
                self.assertEqual(path, f"/page{i}")
                seen.append(name)
            return seen

        yield upA
        yield upB
        self.assertEqual((yield names(4)), ["a", "b", "a", "b"])
        # b stops: its check fails, requests avoid it
        downB = waiter.until(ports["b"], False)
        yield servers["b"].stopListening()
        yield downB
        self.assertEqual((yield names(3)), ["a", "a", "a"])
        # nothing healthy: 503
        downA = waiter.until(ports["a"], False)
        yield servers["a"].stopListening()
        yield downA
        code, body = yield get("/")
        self.assertEqual(code, 503, body)
        # b comes back on its port: used again
        upB = waiter.until(ports["b"], True)
        servers["b"] = self.listenBackend("b", ports["b"])
        yield upB
        self.assertEqual((yield names(2)), ["b", "b"])
        servers["a"] = self.listenBackend("a", ports["a"])
        yield waiter.until(ports["a"], True)
        self.assertEqual(sorted((yield names(4))), ["a", "a", "b", "b"])
        yield root.stopService()
        # let the checkers' connections close before the reactor is inspected
        yield deferLater(reactor, 0.1, lambda: None)

