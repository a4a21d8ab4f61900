"""
Tests for L{keepalive_tx.net.static.StaticService} with fake managers, and
its place among the children of L{KeepalivedService}.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.net.rtnames import IprouteNames
from keepalive_tx.net.static import StaticService, hasStaticEntries
from keepalive_tx.service import KeepalivedService
from tests.fakes.net import (
    FakeStaticPlatform,
)

CONFIG = """
global_defs {
    router_id lb1
    %s
}
static_ipaddress {
    198.51.100.5/24 dev eth1
    198.51.100.6/24
}
static_routes {
    203.0.113.0/24 via 192.0.2.1 dev eth0
    blackhole 198.51.100.128/25
    203.0.113.64/26 dev eth0 table nosuch
}
static_rules {
    from 198.51.100.0/24 table 100 priority 100
    to 203.0.113.0/24 table 101
}
"""


def model(extra: str = ""):
    result = parseText(CONFIG % extra)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    return result.model


class StaticServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.logged: list[dict] = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def messages(self, level: str) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.logged if e.get("log_level").name == level]

    def build(self, extra: str = "", **kw) -> StaticService:
        self.platform = FakeStaticPlatform(**kw)
        return StaticService(model(extra), platform=self.platform, names=IprouteNames(()))

    def test_startAndStop(self) -> None:
        """
        Start: addresses (no C{dev}: on C{default_interface}), routes, rules.
        Stop: rules, routes, addresses, each in reverse order, and the
        platform is closed.
        """
        service = self.build()
        service.privilegedStartService()
        service.startService()
        self.assertEqual(self.platform.opened, 1)
        self.assertEqual(self.platform.journal, [
            ("add", "address", "198.51.100.5/24 dev eth1"),
            ("add", "address", "198.51.100.6/24 dev eth0"),
            ("add", "route", "203.0.113.0/24 via 192.0.2.1 dev eth0"),
            ("add", "route", "blackhole 198.51.100.128/25"),
            ("add", "rule", "100: from 198.51.100.0/24 lookup 100"),
            ("add", "rule", "16384: from all to 203.0.113.0/24 lookup 101"),
        ])
        del self.platform.journal[:]
        service.stopService()
        self.assertEqual(self.platform.journal, [
            ("remove", "rule", "16384: from all to 203.0.113.0/24 lookup 101"),
            ("remove", "rule", "100: from 198.51.100.0/24 lookup 100"),
            ("remove", "route", "blackhole 198.51.100.128/25"),
            ("remove", "route", "203.0.113.0/24 via 192.0.2.1 dev eth0"),
            ("remove", "address", "198.51.100.6/24 dev eth0"),
            ("remove", "address", "198.51.100.5/24 dev eth1"),
        ])
        self.assertEqual((self.platform.addresses.addresses, self.platform.routes.installed,
                          self.platform.rules.installed), ({}, [], []))
        self.assertEqual(self.platform.closed, 1)
        self.assertEqual(service.added, [])

    def test_configProblemsLogged(self) -> None:
        """
        A route with an unknown table and a rule without a preference are
        reported with their file and line.
        """
        service = self.build()
        service.startService()
        warnings = self.messages("warn")
        self.assertTrue(any("keepalived.conf:13: unknown table 'nosuch'" in w for w in warnings), warnings)
        self.assertTrue(any("keepalived.conf:17: Rule has no preference specified" in w for w in warnings),
                        warnings)

    def test_defaultInterfaceMissing(self) -> None:
        """
        A static address without C{dev} needs C{default_interface}: when
        that does not exist the address is skipped with an error, the rest
        goes ahead.
        """
        service = self.build("default_interface eth7")
        service.startService()
        added = [entry[2] for entry in self.platform.journal if entry[1] == "address"]
        self.assertEqual(added, ["198.51.100.5/24 dev eth1"])
        errors = self.messages("error")
        self.assertEqual(len(errors), 1)
        self.assertIn("static_ipaddress 198.51.100.6/24: default_interface eth7 does not exist",
                      errors[0])

    def test_onlyAddedAreRemoved(self) -> None:
        """
        What could not be added is not removed at stop.
        """
        service = self.build(interfaces=("eth0",))
        service.startService()
        self.assertIn(("add-failed", "address", "198.51.100.5/24 dev eth1"), self.platform.journal)
        service.stopService()
        removed = [entry[2] for entry in self.platform.journal if entry[0] == "remove"]
        self.assertNotIn("198.51.100.5/24 dev eth1", removed)
        self.assertIn("198.51.100.6/24 dev eth0", removed)

    def test_restart(self) -> None:
        """
        Stop then start again adds everything again.
        """
        service = self.build()
        service.startService()
        service.stopService()
        service.startService()
        self.assertEqual(len(service.added), 6)
        self.assertEqual(self.platform.opened, 2)


ROOT = """
global_defs {
    router_id lb1
}
%s
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


class RootServiceTests(SynchronousTestCase):
    def build(self, static: str, **kw) -> KeepalivedService:
        result = parseText(ROOT % static)
        self.assertEqual([str(d) for d in result.diagnostics], [])
        return KeepalivedService(result.model, reactor=MemoryReactorClock(), **kw)

    def test_staticBeforeVrrp(self) -> None:
        """
        Static entries get a StaticService before the VRRP service (it
        starts first and stops last), using the injected platform.
        """
        platform = FakeStaticPlatform()
        service = self.build("static_routes {\n 203.0.113.0/24 via 192.0.2.1\n}\n",
                             staticPlatform=platform)
        self.assertEqual([child.name for child in service], ["static", "vrrp"])
        self.assertIs(service.staticService.platform, platform)
        self.assertTrue(hasStaticEntries(service.model))

    def test_noStaticEntries(self) -> None:
        """
        Without static entries, or without VRRP, there is no StaticService.
        """
        self.assertIsNone(self.build("").staticService)
        self.assertEqual([child.name for child in self.build("")], ["vrrp"])
        vrrpless = self.build("static_rules {\n from 198.51.100.0/24 table 1 priority 9\n}\n",
                              vrrp=False)
        self.assertIsNone(vrrpless.staticService)


class DeletedStaticAddressTests(SynchronousTestCase):
    """
    keepalived re-adds a static address deleted behind its back at once.
    """

    def setUp(self) -> None:
        self.platform = FakeStaticPlatform()
        self.watchers: list = []
        self.platform.watchAddresses = (  # type: ignore[attr-defined]
            lambda observer, routes=False: self.watchers.append(observer))
        self.service = StaticService(model(), platform=self.platform, names=IprouteNames(()))

    def removed(self, ip: str, ifname: str) -> None:
        from ipaddress import ip_interface

        from keepalive_tx.net.netlink import AddressInfo

        self.platform.addresses.addresses.pop((ifname, ip_interface(ip).ip), None)
        for watcher in self.watchers:
            watcher.addressRemoved(ifname, 3, AddressInfo(3, ip_interface(ip)))

    def test_reAdded(self) -> None:
        self.service.privilegedStartService()
        self.service.startService()
        self.assertEqual(self.watchers, [self.service])
        self.platform.journal.clear()
        self.removed("198.51.100.5/24", "eth1")
        self.assertEqual(self.platform.journal,
                         [("add", "address", "198.51.100.5/24 dev eth1")])
        self.removed("198.51.100.77/24", "eth1")
        self.removed("198.51.100.5/24", "eth0")
        self.assertEqual(len(self.platform.journal), 1)

    def test_notAfterStop(self) -> None:
        self.service.privilegedStartService()
        self.service.startService()
        self.service.stopService()
        self.platform.journal.clear()
        self.removed("198.51.100.5/24", "eth1")
        self.assertEqual(self.platform.journal, [])

    def test_routesAndRulesReAdded(self) -> None:
        """
        A static route or rule of ours deleted behind our back is re-added;
        an event for another protocol changes nothing.
        """
        self.service.privilegedStartService()
        self.service.startService()
        routes = [item for kind, item in self.service.added if kind == "route"]
        rules = [item for kind, item in self.service.added if kind == "rule"]
        self.platform.routes.installed.remove(routes[0])
        self.platform.rules.installed.remove(rules[0])
        self.platform.journal.clear()
        self.service.routeRemoved(4)
        self.assertEqual(self.platform.journal, [])
        self.service.routeRemoved(routes[0].protocol)
        self.service.ruleRemoved(None)
        self.assertEqual([(verb, kind) for verb, kind, _ in self.platform.journal],
                         [("add", "route"), ("add", "rule")])
        self.assertIn(routes[0], self.platform.routes.installed)
