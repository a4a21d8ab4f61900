"""
The real L{LinkMonitor} on the real reactor, watching a lab host's namespace:
admin down/up of its veth and carrier loss (bridge port cut) arrive as
events, delivered by the reactor from the netlink fd.
"""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from keepalive_tx.net.links import LinkMonitor
from keepalive_tx.net.netlink import IFF_RUNNING, IFF_UP, AddressInfo, RouteChannel
from tests.integration.netns import makeLab
from tests.integration.support import nsRouteSocket


class Waiter:
    """
    Records observer calls and fires Deferreds when an awaited one arrives.
    """

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self._waiting: list[tuple[tuple, defer.Deferred]] = []

    def _record(self, event: tuple) -> None:
        self.events.append(event)
        for item in list(self._waiting):
            if item[0] == event:
                self._waiting.remove(item)
                item[1].callback(event)

    def linkChanged(self, ifname: str, ifindex: int, up: bool) -> None:
        self._record(("link", ifname, up))

    def addressAdded(self, ifname: str, ifindex: int, address: AddressInfo) -> None:
        self._record(("add", ifname, str(address.interface)))

    def addressRemoved(self, ifname: str, ifindex: int, address: AddressInfo) -> None:
        self._record(("del", ifname, str(address.interface)))

    def waitFor(self, event: tuple, timeout: float = 5.0) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self._waiting.append((event, d))
        return d.addTimeout(timeout, reactor)


class LinkMonitorLabTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.lab = makeLab(self, 1)
        self.h1 = self.lab.hosts[0]
        factory = lambda groups: nsRouteSocket(self.h1.ns, groups)  # noqa: E731
        self.monitor = LinkMonitor(reactor, factory, RouteChannel(factory))
        self.waiter = Waiter()
        self.monitor.addObserver(self.waiter)
        self.monitor.startMonitoring()
        self.addCleanup(self.monitor.stopMonitoring)

    @defer.inlineCallbacks
    def test_adminDownUp(self) -> None:
        """
        C{ip link set eth0 down} / C{up} in the host produce down / up events.
        """
        self.assertIs(self.monitor.linkState("eth0"), True)
        down = self.waiter.waitFor(("link", "eth0", False))
        self.h1.ifDown()
        yield down
        self.assertIs(self.monitor.linkState("eth0"), False)
        up = self.waiter.waitFor(("link", "eth0", True))
        self.h1.ifUp()
        yield up
        self.assertIs(self.monitor.linkState("eth0"), True)

    @defer.inlineCallbacks
    def test_carrierLoss(self) -> None:
        """
        Cutting the bridge port leaves eth0 administratively up but without
        carrier (IFF_RUNNING and IFF_LOWER_UP cleared, IFLA_CARRIER 0, operstate DOWN
        for a veth whose peer went down): reported down.
        """
        down = self.waiter.waitFor(("link", "eth0", False))
        self.h1.linkDown()
        yield down
        info = self.monitor.linkNamed("eth0")
        self.assertTrue(info.flags & IFF_UP)
        self.assertFalse(info.flags & IFF_RUNNING)
        self.assertIn(info.operstate, ("LOWERLAYERDOWN", "DOWN"))
        self.assertIs(self.monitor.linkState("eth0"), False)
        up = self.waiter.waitFor(("link", "eth0", True))
        self.h1.linkUp()
        yield up
        self.assertEqual(self.waiter.events, [("link", "eth0", False), ("link", "eth0", True)])

    @defer.inlineCallbacks
    def test_addressEvents(self) -> None:
        """
        Addresses added and deleted with C{ip addr} are reported.
        """
        added = self.waiter.waitFor(("add", "eth0", "198.51.100.7/24"))
        self.h1.run("ip", "addr", "add", "198.51.100.7/24", "dev", "eth0")
        yield added
        removed = self.waiter.waitFor(("del", "eth0", "198.51.100.7/24"))
        self.h1.run("ip", "addr", "del", "198.51.100.7/24", "dev", "eth0")
        yield removed
