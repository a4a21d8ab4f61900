"""
Stand-ins for the VRRP side: the platform (ports, links, addresses), the
advert sender, the trackers and the notifier's view of instances, and the
configurations and harnesses that use them.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from twisted.internet.task import Clock
from zope.interface import implementer

from keepalive_tx.config import model, parseText
from keepalive_tx.net.announce import AnnouncePacer, Announcer, AnnounceTarget
from keepalive_tx.net.vmac import ExistingLink, VmacSpec
from keepalive_tx.vrrp.instance import VrrpInstance, machineConfigFor
from keepalive_tx.vrrp.machine import State, VRRPMachine
from keepalive_tx.vrrp.packet import (
    VRRP_MCAST_V4,
    AuthType,
    ReceivedMeta,
    VrrpAdvert,
    buildIPv4Advert,
    decodeIPv4Packet,
)
from keepalive_tx.vrrp.service import IVrrpPlatform
from keepalive_tx.vrrp.sync import SyncGroup
from keepalive_tx.vrrp.tracking import TrackingCoordinator
from tests.fakes.net import FakeAddressManager, FakeFrameSender
from tests.fakes.vrrpmachine import RecordingEffects

MAC = b"\x02\x00\xc0\x00\x02\x0b"


class FakeVrrpPort:
    def __init__(self, receiver, interface, family, ipProtocol, group, joinGroup, sourceAddress):
        self.receiver = receiver
        self.args = (interface, family, ipProtocol, group, joinGroup, sourceAddress)
        self.sent: list[tuple[bytes, object]] = []
        self.listening = True

    def send(self, packet: bytes, destination) -> bool:
        assert self.listening
        self.sent.append((packet, destination))
        return True

    def stopListening(self) -> None:
        self.listening = False


@implementer(IVrrpPlatform)
class FakeVrrpPlatform:
    """
    Interfaces eth0 (192.0.2.11, fe80::1) and eth1 (no address), all up
    unless listed in C{down}.
    """

    def __init__(self, down: tuple[str, ...] = (), stale: tuple[str, ...] = (),
                 mtus: dict[str, int] | None = None) -> None:
        self.mtus = {"eth0": 1500, "eth1": 1500} if mtus is None else mtus
        self.addresses = None
        self.frameSender = None
        self.opened = self.closed = 0
        self.ports: list[FakeVrrpPort] = []
        self.observers: list = []
        self.down = set(down)
        self.stale = stale
        self.links = {"eth0", "eth1"}
        self.primary = {("eth0", 4): IPv4Address("192.0.2.11"), ("eth0", 6): IPv6Address("fe80::1")}

    def open(self) -> None:
        self.opened += 1
        self.addresses = FakeAddressManager(stale=self.stale)
        self.frameSender = FakeFrameSender()

    def close(self) -> None:
        self.closed += 1

    def openPort(self, receiver, interface, family, ipProtocol, group, joinGroup, sourceAddress):
        port = FakeVrrpPort(receiver, interface, family, ipProtocol, group, joinGroup, sourceAddress)
        self.ports.append(port)
        return port

    def primaryAddress(self, interface, family):
        return self.primary.get((interface, family))

    def macAddress(self, interface):
        return MAC if interface in self.links else None

    def watchLinks(self, observer) -> None:
        self.observers.append(observer)

    def linkUp(self, interface):
        if interface not in self.links:
            return None
        return interface not in self.down

    def mtu(self, interface):
        return self.mtus.get(interface)


def instanceText(name: str, vrid: int, vip: str, *, interface: str = "eth0", priority: int = 150,
                 extra: str = "") -> str:
    return (f"vrrp_instance {name} {{\n state BACKUP\n interface {interface}\n"
            f" virtual_router_id {vrid}\n priority {priority}\n advert_int 1\n{extra}\n"
            f" virtual_ipaddress {{\n {vip}\n }}\n}}\n")


def modelFor(*instances: str, extra: str = ""):
    result = parseText("".join(instances) + extra)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    return result.model


OURS = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")
VIP = "192.0.2.100"


def instanceConfig(body: str = "", *, family: int = 4, version: int = 2, auth: str | None = "PASS",
                   priority: int = 150):
    """
    The model of one C{vrrp_instance VI_1} with C{body} lines added.
    """
    vip = "192.0.2.100/24" if family == 4 else "2001:db8::100/64"
    authBlock = (f"authentication {{\n auth_type {auth}\n auth_pass s3cr3t\n}}\n"
                 if auth else "")
    text = (f"global_defs {{\n vrrp_version {version}\n}}\n"
            f"vrrp_instance VI_1 {{\n state BACKUP\n interface eth0\n virtual_router_id 51\n"
            f" priority {priority}\n advert_int 1\n{authBlock}{body}\n"
            f" virtual_ipaddress {{\n {vip} dev eth0\n }}\n}}\n")
    result = parseText(text)
    assert result.model is not None, [str(d) for d in result.diagnostics]
    return result.model.vrrpInstances[0]


class FakeAdvertSender:
    """
    Records what the instance sends.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, object]] = []
        self.working = True

    def send(self, packet: bytes, destination) -> bool:
        self.sent.append((packet, destination))
        return self.working

    def adverts(self) -> list[VrrpAdvert]:
        return [decodeIPv4Packet(p).vrrp for p, _ in self.sent]

    def ahSequences(self) -> list[int]:
        result = []
        for packet, _ in self.sent:
            ah = decodeIPv4Packet(packet).ah
            assert ah is not None
            result.append(ah.sequence)
        return result


class InstanceTestsMixin:
    def build(self, config=None, source=OURS, stale=()) -> VrrpInstance:
        self.clock = Clock()
        self.sender = FakeAdvertSender()
        self.addresses = FakeAddressManager(stale=stale)
        self.frames = FakeFrameSender()
        config = config if config is not None else instanceConfig()
        announcer = Announcer(self.clock, AnnouncePacer(self.clock, self.frames))
        if source.version == 4:
            announcer.setTargets([AnnounceTarget("eth0", b"\x02\x00\xc0\x00\x02\x0b",
                                                 IPv4Address(VIP), False)])
        self.instance = VrrpInstance(config, clock=self.clock, sender=self.sender,
                                     addresses=self.addresses, announcer=announcer,
                                     sourceAddress=source)
        return self.instance

    def receive(self, priority: int, *, source=PEER, password: str = "s3cr3t", ahSequence=1,
                auth=AuthType.PASS, vips=(VIP,)) -> None:
        advert = VrrpAdvert(version=2, vrid=51, priority=priority,
                            addresses=tuple(ip_address(v) for v in vips),
                            authType=auth, advertIntSeconds=1)
        data = buildIPv4Advert(advert, source, password=password, ahSequence=ahSequence)
        meta = ReceivedMeta(family=4, source=source, destination=VRRP_MCAST_V4, ttl=255)
        self.instance.vrrpReceived(data, meta)

    def becomeMaster(self) -> None:
        self.instance.start()
        self.clock.advance(self.instance.machine.masterDownInterval() + 0.01)
        assert self.instance.state == State.MASTER


def trackingInstanceText(name: str = "VI_1", vrid: int = 51, priority: int = 100, body: str = "") -> str:
    return (f"vrrp_instance {name} {{\n state BACKUP\n interface eth0\n"
            f" virtual_router_id {vrid}\n priority {priority}\n advert_int 1\n{body}\n"
            f" virtual_ipaddress {{\n 192.0.2.{vrid}/24\n }}\n}}\n")


class FakeVrrpScripts:
    """
    Stands in for L{VrrpScriptService}.
    """

    def __init__(self, states: dict[str, bool | None] | None = None) -> None:
        self.states = dict(states or {})
        self.observers: list = []
        self.running = False
        #: scripts new at a reload: their weight-0 trackers do not wait
        self.unwaited: set[str] = set()

    def subscribe(self, observer) -> None:
        self.observers.append(observer)

    def state(self, name: str) -> bool | None:
        return self.states.get(name)

    def waited(self, name: str) -> bool:
        return name not in self.unwaited

    def report(self, name: str, ok: bool) -> None:
        self.states[name] = ok
        for observer in self.observers:
            observer(name, ok)

    def startService(self) -> None:
        self.running = True

    def stopService(self) -> None:
        self.running = False


class FakeTrackFileWatcher:
    def __init__(self, trackFile: model.TrackFile, value: int = 0) -> None:
        self.trackFile = trackFile
        self.value = value
        self.onResult = None

    def read(self) -> int:
        return self.value

    def start(self, onResult) -> None:
        self.onResult = onResult
        onResult(None)

    def stop(self) -> None:
        self.onResult = None

    def set(self, value: int) -> None:
        self.value = value
        assert self.onResult is not None
        self.onResult(None)


class FakeTrackedInstance:
    """
    The parts of a L{VrrpInstance} the coordinator uses, around a real
    machine.
    """

    def __init__(self, config: model.VrrpInstanceConfig, clock: Clock) -> None:
        self.config = config
        self.name = config.name
        self.effects = RecordingEffects(clock)
        self.machine = VRRPMachine(machineConfigFor(config, None), self.effects, clock)
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.machine.start()

    def trackedInterfaces(self) -> set[str]:
        names = {self.config.interface} if self.config.interface else set()
        return names | {t.name for t in self.config.trackInterfaces if not t.weight}


class CoordinatorHarness:
    """
    A L{TrackingCoordinator} over real machines built from a configuration
    (fake scripts, track files, links and, optionally, BFD sessions).
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.links: dict[str, bool] = {}
        self.watchers: dict[str, FakeTrackFileWatcher] = {}

    def build(self, text: str, scripts: dict | None = None, fileValues: dict | None = None,
              bfd: object = None):
        config = modelFor(text)
        self.scripts = FakeVrrpScripts(scripts)
        values = fileValues or {}

        def watcher(tf: model.TrackFile) -> FakeTrackFileWatcher:
            w = self.watchers[tf.name] = FakeTrackFileWatcher(tf, values.get(tf.name, 0))
            return w

        self.coordinator = TrackingCoordinator(
            self.clock, config, scripts=self.scripts,  # type: ignore[arg-type]
            linkState=lambda n: self.links.get(n), fileWatcherFactory=watcher, bfd=bfd)
        self.instances = [FakeTrackedInstance(vi, self.clock) for vi in config.vrrpInstances]
        machines = {i.name: i.machine for i in self.instances}
        for g in config.syncGroups:
            SyncGroup(g.name, [machines[m] for m in g.members])
        for instance in self.instances:
            self.coordinator.attach(instance)
        self.coordinator.startService()
        for instance in self.instances:
            self.coordinator.startInstance(instance)
        return self.instances


class FakeNotifyMachine:
    def __init__(self, priority: int, syncGroup=None) -> None:
        self.effectivePriority = priority
        self.syncGroup = syncGroup


class FakeNotifyInstance:
    def __init__(self, config: model.VrrpInstanceConfig, syncGroup=None) -> None:
        self.name = config.name
        self.config = config
        self.machine = FakeNotifyMachine(config.priority, syncGroup)
        self.state = State.BACKUP


class FakeNotifyGroup:
    def __init__(self) -> None:
        self.state = State.INIT


class FakePersistentVrrpPlatform(FakeVrrpPlatform):
    """
    A fake platform whose address table survives being closed and opened
    again (as the kernel's does across a reload).
    """

    def __init__(self) -> None:
        super().__init__()
        self.table = FakeAddressManager()

    def open(self) -> None:
        super().open()
        self.addresses = self.table


class FakeVmacSysctls:
    def __init__(self) -> None:
        self.igmp: list[object] = []
        self.released: list[object] = []

    def disableLocalIgmp(self, owner: object) -> bool:
        self.igmp.append(owner)
        return True


class FakeVmacRegistry:
    def __init__(self) -> None:
        self.sysctls = FakeVmacSysctls()


class FakeVmacLinks:
    """
    Records what L{keepalive_tx.vrrp.vmacs.ServiceVmacs} asks for.
    """

    def __init__(self, registry, owner, interfaces: set[str], log: list, created: dict,
                 indexes: dict | None = None) -> None:
        self.registry = registry if registry is not None else FakeVmacRegistry()
        self.owner = owner
        self.interfaces = interfaces
        self.log = log
        self.fail: set[str] = set()
        self.created = created
        #: interface indexes (eth0 is 2): a VMAC created again gets a new one
        self.indexes = indexes if indexes is not None else {}

    def ifindex(self, name: str) -> int | None:
        return 1 if name in self.interfaces else None

    def existing(self) -> list:
        return [ExistingLink(2, spec.name, spec.kind, spec.mac, "private", 1)
                for spec in self.created.values() if spec.name in self.interfaces]

    def cleanStale(self, keep, existing=None) -> list[str]:
        self.log.append(("cleanStale", sorted(keep)))
        return []

    def ensure(self, spec: VmacSpec, ready=None) -> bool:
        self.log.append(("ensure", spec.name))
        if spec.name in self.fail:
            return False
        if spec.name not in self.interfaces or spec.name not in self.indexes:
            self.indexes[spec.name] = max(self.indexes.values(), default=19) + 1
        self.interfaces.add(spec.name)
        self.created[spec.name] = spec
        if ready is not None:
            ready(self.indexes[spec.name], 2)
        return True

    def present(self, name: str) -> bool:
        return name in self.interfaces

    def release(self) -> list[str]:
        self.log.append(("release", self.owner))
        return []


class FakeVmacFirewall:
    """
    What the VMACs declare to the process's firewall
    (L{keepalive_tx.net.firewall.Firewall.setVmacs}), in the platform's log.
    """

    def __init__(self, log: list) -> None:
        self.log = log

    def handle(self, owner: object) -> None:
        return None

    def setVmacs(self, owner: object, vmacs) -> None:
        self.log.append(("firewall", owner, sorted(
            (v.ifindex, v.baseIndex, tuple(sorted(v.families))) for v in vmacs)))


class FakeVmacVrrpPort(FakeVrrpPort):
    def __init__(self, *args, log: list) -> None:
        super().__init__(*args)
        self.log = log
        self.reopened = 0

    def reopen(self) -> bool:
        self.reopened += 1
        return True

    def stopListening(self) -> None:
        self.log.append(("stopListening", self.args[0]))
        super().stopListening()


class FakeVmacVrrpPlatform(FakeVrrpPlatform):
    """
    L{FakeVrrpPlatform} that can make VMACs (eth0/eth1 plus whatever was
    created), up unless down.
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.log: list = []
        self.interfaces = self.links  # eth0, eth1 and the VMACs made
        self.made: list[FakeVmacLinks] = []
        self.created: dict[str, VmacSpec] = {}
        self.indexes: dict[str, int] = {}

    def vmacLinks(self, registry, owner, groups=None):
        links = FakeVmacLinks(registry, owner, self.interfaces, self.log, self.created,
                              self.indexes)
        self.made.append(links)
        return links

    def openPort(self, receiver, interface, family, ipProtocol, group, joinGroup, sourceAddress):
        port = FakeVmacVrrpPort(receiver, interface, family, ipProtocol, group, joinGroup, sourceAddress,
                        log=self.log)
        self.ports.append(port)
        return port

    def linkUp(self, interface):
        if interface not in self.interfaces:
            return None
        return interface not in self.down


#: on eth1, where L{brokenOnEth1} cannot open a VRRP socket
VI_ETH1 = instanceText("VI_9", 9, "192.0.2.109/24", interface="eth1", extra=" mcast_src_ip 192.0.2.11")


def brokenOnEth1(platform: FakeVrrpPlatform) -> FakeVrrpPlatform:
    """
    C{platform}, failing to open a VRRP socket on eth1.
    """
    openPort = platform.openPort

    def refuse(receiver, interface, *args):  # type: ignore[no-untyped-def]
        if interface == "eth1":
            raise OSError(19, "No such device")
        return openPort(receiver, interface, *args)

    platform.openPort = refuse  # type: ignore[method-assign]
    return platform


VI_TEMPLATE = """global_defs {{
{g}}}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
{body}    virtual_ipaddress {{
{vips}    }}
}}
{extra}"""
