"""
Stand-ins for the status side: the fixture that builds a running daemon on
fakes for snapshots, dumps and the status API, sample IPVS counters, and a
reactor for signal handlers.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

from twisted.internet.task import Clock

from keepalive_tx.alert.messages import AlertDispatcher
from keepalive_tx.check.base import CheckerState
from keepalive_tx.check.factory import BuiltChecker, checkTiming
from keepalive_tx.config import parseText
from keepalive_tx.lvs.backend import MemoryIPVSBackend
from keepalive_tx.lvs.service import LvsService
from keepalive_tx.lvs.table import DestKey, ServiceKey
from keepalive_tx.lvs.traffic import ServiceTraffic, Traffic
from keepalive_tx.service import KeepalivedService
from keepalive_tx.vrrp.packet import (
    VRRP_MCAST_V4,
    AuthType,
    ReceivedMeta,
    VrrpAdvert,
    buildIPv4Advert,
)
from tests.fakes.alert import FakeMailer
from tests.fakes.check import FakeChecker
from tests.fakes.scripts import FakeScriptRunner
from tests.fakes.vrrp import FakeVrrpPlatform

#: Wall-clock start of every fixture (any fixed value works).
EPOCH = 1_795_696_726.25
STATUS_CONFIG = """\
global_defs {
    router_id lb1
}
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cr3t
    }
    notify_master "/bin/echo master"
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
        192.0.2.101
    }
    virtual_ipaddress_excluded {
        198.51.100.5/24
    }
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.102/24
    }
}
vrrp_instance VI_3 {
    state BACKUP
    interface eth0
    track_interface {
        eth1
    }
    virtual_router_id 53
    priority 100
    virtual_ipaddress {
        203.0.113.3/24
    }
}
virtual_server 192.0.2.200 80 {
    delay_loop 1
    lvs_sched wrr
    protocol TCP
    quorum 2
    sorry_server 192.0.2.99 80
    real_server 192.0.2.11 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 192.0.2.12 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK { connect_timeout 1 }
    }
}
"""


class StatusFixture:
    """
    Builds the running components for a test (mixed into a
    L{SynchronousTestCase}).
    """

    def buildRoot(self, text: str = STATUS_CONFIG, down: tuple[str, ...] = ()) -> KeepalivedService:
        result = parseText(text)
        assert result.model is not None, [str(d) for d in result.diagnostics]
        self.clock = Clock()
        self.clock.advance(EPOCH)
        self.platform = FakeVrrpPlatform(down=down)
        root = KeepalivedService(result.model, self.clock, vrrpPlatform=self.platform,
                                 checkers=False)
        self.checkers: dict[str, FakeChecker] = {}
        if result.model.virtualServers:
            root.lvsService = LvsService(
                result.model, self.clock, alerts=AlertDispatcher(FakeMailer(), "lb1"),
                backendFactory=MemoryIPVSBackend, recordDir=None,
                checkerBuilder=self._builder, scriptRunner=lambda s: FakeScriptRunner(s, log=[], immediate=True),
                random=lambda: 0.0, fifoFactory=None)
        self.root = root
        return root

    def _builder(self, reactor, config, rs, vs, model) -> BuiltChecker:
        fake = FakeChecker(config.kind, f"[{rs.address}]:tcp:{rs.port}")
        self.checkers[str(rs.address)] = fake
        timing = checkTiming(config, model)
        return BuiltChecker(fake, CheckerState(timing), timing)

    def start(self) -> None:
        self.root.privilegedStartService()
        self.root.startService()
        if self.root.lvsService is not None:
            self.root.lvsService.privilegedStartService()
            self.root.lvsService.startService()

    def advert(self, vrid: int, priority: int, source: str = "192.0.2.12", ttl: int = 255) -> None:
        """
        Deliver an advert through the instance's real port and receive checks.
        """
        advert = VrrpAdvert(version=2, vrid=vrid, priority=priority, authType=AuthType.NONE,
                            advertIntSeconds=1, addresses=(IPv4Address("192.0.2.102"),))
        if vrid == 51:
            advert = VrrpAdvert(version=2, vrid=vrid, priority=priority, authType=AuthType.PASS,
                                advertIntSeconds=1,
                                addresses=(IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101")))
        port = self.platform.ports[0]
        port.receiver.vrrpReceived(
            buildIPv4Advert(advert, source, password=b"s3cr3t\0\0" if vrid == 51 else b"",
                            ttl=ttl),
            ReceivedMeta(family=4, source=IPv4Address(source), destination=VRRP_MCAST_V4,
                         ttl=ttl))


A = ip_address

#: IPVS counters of four services, as a scrape reads them
TRAFFIC = [
    ServiceTraffic(ServiceKey(4, "TCP", A("203.0.113.10"), 80), Traffic(3, 30, 20, 3000, 2**40),
                   ((DestKey(A("192.0.2.11"), 8080), Traffic(2, 20, 13, 2000, 6000)),
                    (DestKey(A("192.0.2.12"), 8080), Traffic(1, 10, 7, 1000, 3000)))),
    ServiceTraffic(ServiceKey(6, "UDP", A("2001:db8::10"), 53), Traffic(1, 2, 3, 4, 5),
                   ((DestKey(A("2001:db8::11"), 53), Traffic(1, 2, 3, 4, 5)),)),
    ServiceTraffic(ServiceKey(4, fwmark=7), Traffic(9), ((DestKey(A("192.0.2.13"), 0), Traffic(9)),)),
    ServiceTraffic(ServiceKey(6, fwmark=7), Traffic(8), ()),
]


class FakeSignalReactor:
    def __init__(self) -> None:
        self.calls: list = []

    def callFromThread(self, f, *a) -> None:
        self.calls.append((f, a))

    def run(self) -> None:
        calls, self.calls = self.calls, []
        for f, a in calls:
            f(*a)
