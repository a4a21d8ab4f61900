"""
Stand-ins for the LVS side: IPVS generic-netlink channels, checkers,
mailers and monitors, and the harness that runs an L{LvsService} on them.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import TypeVar

from pyroute2.netlink.generic import ipvs as genl
from twisted.internet import task
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.alert.messages import AlertDispatcher
from keepalive_tx.check.base import CheckerState, HttpCheckerState
from keepalive_tx.check.factory import BuiltChecker, UnsupportedChecker, checkTiming
from keepalive_tx.config import parseText
from keepalive_tx.lvs import ipvs
from keepalive_tx.lvs.backend import IPVSError, MemoryIPVSBackend
from keepalive_tx.lvs.service import LvsService
from keepalive_tx.lvs.syncd import (
    DaemonSpec,
    daemonAttrs,
    daemonMessage,
    daemonmsg,
)
from keepalive_tx.lvs.table import DestKey, DestSpec, ServiceKey, ServiceSpec
from keepalive_tx.lvs.traffic import (
    Traffic,
)
from tests.fakes.alert import FakeMailer
from tests.fakes.check import FakeChecker
from tests.fakes.scripts import FakeScriptRunner

M = TypeVar("M", genl.ipvsmsg, daemonmsg)


def reparse(msg: M) -> M:
    """
    Encode C{msg} (an IPVS or sync-daemon message) and decode the bytes
    again, as a kernel reply would be.
    """
    msg["header"]["type"] = 42
    msg.encode()
    parsed = type(msg)(bytes(msg.data))
    parsed.decode()
    return parsed


def stats(traffic: Traffic) -> dict:
    return {"attrs": [("IPVS_STATS_ATTR_CONNS", traffic.connections),
                      ("IPVS_STATS_ATTR_INPKTS", traffic.inPackets),
                      ("IPVS_STATS_ATTR_OUTPKTS", traffic.outPackets),
                      ("IPVS_STATS_ATTR_INBYTES", traffic.inBytes),
                      ("IPVS_STATS_ATTR_OUTBYTES", traffic.outBytes),
                      ("IPVS_STATS_ATTR_CPS", 99)]}


def serviceReply(key: ServiceKey, traffic: Traffic, attr: str = "STATS64") -> genl.ipvsmsg:
    attrs = ipvs.serviceAttrs(ServiceSpec(key, "rr")) + [(f"IPVS_SVC_ATTR_{attr}", stats(traffic))]
    return reparse(ipvs.message(genl.IPVS_CMD_NEW_SERVICE, ("IPVS_CMD_ATTR_SERVICE", attrs)))


def destReply(key: DestKey, traffic: Traffic, attr: str = "STATS64") -> genl.ipvsmsg:
    attrs = ipvs.destAttrs(DestSpec(key, 1, "NAT")) + [(f"IPVS_DEST_ATTR_{attr}", stats(traffic))]
    return reparse(ipvs.message(genl.IPVS_CMD_NEW_DEST, ("IPVS_CMD_ATTR_DEST", attrs)))


class FakeIpvsStatsChannel:
    """
    Answers IPVS dumps from C{services} (key -> (traffic, {dest: traffic})).
    """

    def __init__(self, services: dict) -> None:
        self.services = services
        self.requests: list[tuple[str, ServiceKey | None]] = []
        self.fail: dict[ServiceKey | None, IPVSError] = {}
        self.closed = False

    def request(self, msg, *, dump=False):
        assert dump and not self.closed
        if msg["cmd"] == genl.IPVS_CMD_GET_SERVICE:
            self.requests.append(("services", None))
            if None in self.fail:
                raise self.fail[None]
            return [serviceReply(k, t) for k, (t, _) in self.services.items()]
        key = ipvs.serviceFromMessage(reparse(msg)).key
        self.requests.append(("dests", key))
        if key in self.fail:
            raise self.fail[key]
        return [destReply(d, t) for d, t in self.services[key][1].items()]

    def close(self) -> None:
        self.closed = True


class FakeSyncdChannel:
    """
    A L{GenlChannel} stand-in: records (command, daemon attributes) of each
    request after a real encode/decode, answers dumps from C{daemons} and
    raises the scripted errors.

    @ivar errors: C{{(cmd, state): errno}} to fail with.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[int, dict]] = []
        self.errors: dict[tuple[int, int | None], int] = {}
        self.daemons: list[DaemonSpec] = []
        self.opened = 0
        self.closed = 0
        self.openError: IPVSError | None = None

    def open(self) -> None:
        if self.openError is not None:
            raise self.openError
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def request(self, msg, *, dump: bool = False):
        parsed = reparse(msg)
        daemon = parsed.get_attr("IPVS_CMD_ATTR_DAEMON")
        attrs = dict(daemon["attrs"]) if daemon is not None else {}
        cmd = parsed["cmd"]
        self.requests.append((cmd, attrs))
        code = self.errors.get((cmd, attrs.get("IPVS_DAEMON_ATTR_STATE")))
        if code is not None:
            raise IPVSError(code)
        if dump:
            return [reparse(daemonMessage(genl.IPVS_CMD_NEW_DAEMON, daemonAttrs(d))) for d in self.daemons]
        return []

    def commands(self) -> list[tuple[str, int]]:
        names = {genl.IPVS_CMD_NEW_DAEMON: "new", genl.IPVS_CMD_DEL_DAEMON: "del"}
        return [(names[c], a["IPVS_DAEMON_ATTR_STATE"]) for c, a in self.requests]


A = ip_address
VS = ServiceKey(4, "TCP", A("192.0.2.100"), 80)
RS11 = DestKey(A("192.0.2.11"), 80)
RS12 = DestKey(A("192.0.2.12"), 80)
SORRY = DestKey(A("192.0.2.99"), 80)
LVS_CONFIG = """\
global_defs {
    router_id lb1
}
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    quorum 2
    smtp_alert
    sorry_server 192.0.2.99 80
    quorum_up "/bin/quorum up"
    quorum_down "/bin/quorum down"
    %(vsExtra)s
    real_server 192.0.2.11 80 {
        weight 1
        notify_up "/bin/notify up11"
        notify_down "/bin/notify down11"
        %(rs11Extra)s
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 192.0.2.12 80 {
        weight 2
        inhibit_on_failure
        HTTP_GET { url { path /health } connect_timeout 1 }
        TCP_CHECK { connect_port 81 }
    }
}
"""


def parse(text: str):
    result = parseText(text)
    assert not list(result.diagnostics), [str(d) for d in result.diagnostics]
    return result.model


class FakeMonitor:
    """
    The address-monitor edge for ha_suspend.
    """

    def __init__(self, addresses: set) -> None:
        self.present = addresses
        self.observers: list = []
        self.started = False
        self.channel = self

    def addresses(self):
        return [type("Addr", (), {"address": a})() for a in self.present]

    def startMonitoring(self) -> None:
        self.started = True

    def stopMonitoring(self) -> None:
        self.started = False

    def addObserver(self, o) -> None:
        self.observers.append(o)

    def removeObserver(self, o) -> None:
        self.observers.remove(o)

    def set(self, address, present: bool) -> None:
        info = type("Addr", (), {"address": address})()
        if present:
            self.present.add(address)
            for o in self.observers:
                o.addressAdded("eth0", 2, info)
        else:
            self.present.discard(address)
            for o in self.observers:
                o.addressRemoved("eth0", 2, info)


class LvsServiceHarness(SynchronousTestCase):
    """
    An L{LvsService} on a memory IPVS backend, fake checkers and a clock.
    """

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.backend = MemoryIPVSBackend()
        self.mailer = FakeMailer()
        self.scripts: list[str] = []
        self.pendingScripts = False
        self.checkers: dict[tuple, FakeChecker] = {}
        self.recordDir = self.mktemp()

    def builder(self, reactor, config, rs, vs, model) -> BuiltChecker:
        if config.kind == "MISC_CHECK":
            raise UnsupportedChecker("MISC_CHECK is not supported yet")
        port = getattr(config, "connectPort", 0)
        fake = FakeChecker(config.kind, f"[{config.connectIp}]:tcp:{port}")
        self.checkers[(str(rs.address), config.kind)] = fake
        timing = checkTiming(config, model)
        if config.kind == "HTTP_GET":
            state = HttpCheckerState(timing, len(config.urls))
        else:
            state = CheckerState(timing)
        return BuiltChecker(fake, state, timing)

    def service(self, vsExtra: str = "", rs11Extra: str = "", text: str | None = None, **kw) -> LvsService:
        model = parse(text or LVS_CONFIG % {"vsExtra": vsExtra, "rs11Extra": rs11Extra})
        self.model = model
        alerts = AlertDispatcher(self.mailer, "lb1")
        kw.setdefault("backendFactory", lambda: self.backend)
        svc = LvsService(
            model,
            self.clock,
            alerts=alerts,
            recordDir=self.recordDir,
            checkerBuilder=self.builder,
            scriptRunner=lambda s: FakeScriptRunner(s, log=self.scripts, immediate=not self.pendingScripts),
            random=lambda: 0.0,
            **kw,
        )
        self.svc = svc
        return svc

    def start(self, svc: LvsService) -> list[str]:
        with capturedLogs() as events:
            svc.privilegedStartService()
            svc.startService()
        return [formatEvent(e) for e in events]

    def advance(self, seconds: float) -> list[str]:
        with capturedLogs() as events:
            self.clock.pump([0.5] * round(seconds * 2))
        return [formatEvent(e) for e in events]

    def dests(self, key: ServiceKey = VS) -> dict[DestKey, int]:
        return {k: d.weight for k, d in self.backend.table[key].destinations.items()}
