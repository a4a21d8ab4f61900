"""
The immutable configuration model (global_defs, VRRP side, static addresses).

Every value is typed and defaulted the way keepalived does it: timers are float
seconds, addresses are C{ipaddress} objects, scripts are L{Script}s.  Fields
that keepalived resolves from C{global_defs} when unset are already resolved
here (see L{keepalive_tx.config.validate}).  The LVS side lives in
C{model_lvs}; L{Config} only carries its objects.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from keepalive_tx.config.errors import Location

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MASTER = "MASTER"
BACKUP = "BACKUP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """
    A script-style command: C{command} is the configured string, C{argv} its
    words after keepalived's tokenising, C{user} the optional C{user[:group]}.
    """

    command: str
    argv: tuple[str, ...]
    user: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualAddress:
    """
    One C{virtual_ipaddress}/C{virtual_ipaddress_excluded}/C{static_ipaddress} line.

    @ivar address: address with prefix (default /32 or /128).
    @ivar broadcast: C{None}, an address, C{"-"} (clear host bits) or C{"+"} (set).
    @ivar preferredLft: seconds, C{"forever"}, or C{None} (kernel/keepalived default).
    @ivar dad: C{-nodad} was given: the kernel runs Duplicate Address
        Detection on this IPv6 address (keepalived's default is C{nodad}).
    """

    address: IPInterface
    dev: str | None = None
    scope: str | None = None
    broadcast: IPAddress | str | None = None
    label: str | None = None
    peer: IPInterface | None = None
    home: bool = False
    dad: bool = False
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    preferredLft: int | str | None = None
    noTrack: bool = False
    useVmac: bool = False
    trackGroup: str | None = None
    location: Location | None = field(default=None, compare=False)

    @property
    def family(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True, kw_only=True)
class Nexthop:
    via: IPAddress | None = None
    dev: str | None = None
    weight: int | None = None
    onlink: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """
    One C{static_routes}/C{virtual_routes} line (C{ip route} syntax).

    @ivar destination: the prefix, or C{None} for C{default}/C{any}/C{all}.
    @ivar options: other C{ip route} attributes as (name, value) pairs.
    """

    family: int
    destination: IPNetwork | None
    type: str = "unicast"
    src: IPAddress | None = None
    via: IPAddress | None = None
    dev: str | None = None
    scope: str | None = None
    table: str | None = None
    metric: int | None = None
    nexthops: tuple[Nexthop, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    noTrack: bool = False
    trackGroup: str | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """
    One C{static_rules}/C{virtual_rules} line (C{ip rule} syntax).
    """

    family: int
    fromPrefix: IPNetwork | None = None
    toPrefix: IPNetwork | None = None
    priority: int | None = None
    table: str | None = None
    action: str | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    noTrack: bool = False
    trackGroup: str | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tracker:
    """
    A C{track_interface}/C{track_script}/C{track_file}/C{track_process}/C{track_bfd}
    entry.  C{weight}/C{reverse} are C{None} when the tracked object's own
    settings apply.
    """

    name: str
    weight: int | None = None
    reverse: bool | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnicastPeer:
    address: IPAddress
    minTtl: int = 0
    maxTtl: int = 255
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Authentication:
    """
    RFC 2338 authentication: C{authType} C{"PASS"} or C{"AH"}; C{password} is
    the 8-byte zero-padded key.
    """

    authType: str
    password: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthHmacKey:
    keyId: int
    secret: str  # "hex:..", "file:PATH" or the ASCII secret
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthHmac:
    keys: tuple[AuthHmacKey, ...] = ()
    activeKey: int | None = None
    antiReplay: str = "time"
    timeWindow: int | None = None
    mode: str = "enforce"


@dataclass(frozen=True, slots=True, kw_only=True)
class Vmac:
    """
    C{use_vmac} / C{use_ipvlan} settings (keepalive_tx.config.schema_vmac).

    @ivar name: the configured interface name (C{None}: generated).
    @ivar mac: a configured MAC, VRID already filled in (C{None}: RFC 5798's).
    @ivar ipvlan: C{use_ipvlan} (an L2 ipvlan instead of a macvlan).
    @ivar ipvlanMode: C{bridge}, C{private}, C{vepa} or C{None} (bridge).
    @ivar group: the link group (name or number) instead of the parent's.
    @ivar fault: why the instance must stay in FAULT (keepalived's
        "setting instance to fault state"), or C{None}.
    """

    name: str | None = None
    mac: str | None = None
    ipvlan: bool = False
    ipvlanAddress: IPInterface | None = None
    ipvlanMode: str | None = None
    netlinkNotifyMsg: bool = False
    group: str | None = None
    fault: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GarpSettingsConfig:
    masterDelay: float = 5.0
    masterRepeat: int = 5
    lowerPrioDelay: float = 5.0
    lowerPrioRepeat: int = 5
    masterRefresh: float = 0.0
    masterRefreshRepeat: int = 1
    extraIf: float = 0.0
    extraIfAll: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpInstanceConfig:
    name: str
    location: Location | None = field(default=None, compare=False)
    state: str = BACKUP
    interface: str | None = None
    interfaceLocation: Location | None = field(default=None, compare=False)
    virtualRouterId: int | None = None
    priority: int = 100
    advertInt: float = 1.0
    version: int = 2
    family: int = 4
    mcastSrcIp: IPAddress | None = None
    unicastSrcIp: IPAddress | None = None
    mcastDstIp: IPAddress | None = None
    unicastPeers: tuple[UnicastPeer, ...] = ()
    unicastTtl: int | None = None
    unicastFaultNoPeer: bool = False
    checkUnicastSrc: bool = False
    oldUnicastChecksum: str | None = None
    v3ChecksumAsV2: bool = False
    trackSrcIp: bool = False
    vrf: str | None = None
    dontTrackPrimary: bool = False
    kernelRxBufSize: int | None = None
    debug: int = 0
    lvsSyncDaemonInterface: str | None = None
    virtualIpaddresses: tuple[VirtualAddress, ...] = ()
    virtualIpaddressesExcluded: tuple[VirtualAddress, ...] = ()
    noVirtualIpaddress: bool = False
    virtualRoutes: tuple[Route, ...] = ()
    virtualRules: tuple[Rule, ...] = ()
    promoteSecondaries: bool = False
    accept: bool = True
    vmac: Vmac | None = None
    useVmacAddr: bool = False
    vmacXmitBase: bool = False
    nopreempt: bool = False
    preemptDelay: float = 0.0
    downTimerAdverts: int = 3
    timerExpiredBackup: int | None = None
    lowerPrioNoAdvert: bool = False
    higherPrioSendAdvert: bool = False
    ownerIgnoreAdverts: bool = False
    skipCheckAdvAddr: bool = False
    strictMode: bool = False
    garp: GarpSettingsConfig = field(default_factory=GarpSettingsConfig)
    trackInterfaces: tuple[Tracker, ...] = ()
    trackScripts: tuple[Tracker, ...] = ()
    trackFiles: tuple[Tracker, ...] = ()
    trackProcesses: tuple[Tracker, ...] = ()
    trackBfds: tuple[Tracker, ...] = ()
    authentication: Authentication | None = None
    authHmac: AuthHmac | None = None
    notifyMaster: Script | None = None
    notifyBackup: Script | None = None
    notifyFault: Script | None = None
    notifyStop: Script | None = None
    notifyDeleted: Script | None = None
    notifyDeletedEnabled: bool = False
    notify: Script | None = None
    notifyMasterRxLowerPri: Script | None = None
    notifyPriorityChanges: bool = False
    smtpAlert: bool | None = None
    syncGroup: str | None = None

    @property
    def isUnicast(self) -> bool:
        return bool(self.unicastPeers)

    @property
    def isOwner(self) -> bool:
        return self.priority == 255


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncGroupConfig:
    name: str
    location: Location | None = field(default=None, compare=False)
    members: tuple[str, ...] = ()
    trackInterfaces: tuple[Tracker, ...] = ()
    trackScripts: tuple[Tracker, ...] = ()
    trackFiles: tuple[Tracker, ...] = ()
    trackProcesses: tuple[Tracker, ...] = ()
    trackBfds: tuple[Tracker, ...] = ()
    notifyMaster: Script | None = None
    notifyBackup: Script | None = None
    notifyFault: Script | None = None
    notifyStop: Script | None = None
    notify: Script | None = None
    smtpAlert: bool | None = None
    notifyPriorityChanges: bool = False
    syncGroupTrackingWeight: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpScript:
    name: str
    location: Location | None = field(default=None, compare=False)
    script: Script | None = None
    interval: float = 1.0
    timeout: float | None = None
    weight: int = 0
    weightReverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    initFail: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackProcess:
    name: str
    location: Location | None = field(default=None, compare=False)
    process: tuple[str, ...] = ()
    paramMatch: str | None = None
    weight: int = 0
    weightReverse: bool = False
    quorum: int = 1
    quorumMax: int | None = None
    forkDelay: float = 0.0
    terminateDelay: float = 0.0
    fullCommand: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackFile:
    name: str
    location: Location | None = field(default=None, compare=False)
    file: str | None = None
    weight: int = 1
    weightReverse: bool = False
    initFile: bool = False
    initValue: int = 0
    initOverwrite: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GarpGroupConfig:
    location: Location | None = field(default=None, compare=False)
    garpInterval: float = 0.0
    gnaInterval: float = 0.0
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdInstance:
    """
    A C{bfd_instance}.  Intervals are in microseconds, as keepalived keeps
    them (the file gives milliseconds with up to 3 decimals); C{ttl} is
    L{None} when neither C{ttl} nor C{hoplimit} was given; C{maxHops} -1
    and 255 turn the TTL check off.  C{vrrp} / C{checker}: deliver events
    only to that side (neither: both).
    """

    name: str
    location: Location | None = field(default=None, compare=False)
    neighborIp: IPAddress | None = None
    sourceIp: IPAddress | None = None
    minRx: int = 10_000
    minTx: int = 10_000
    idleTx: int = 1_000_000
    multiplier: int = 5
    passive: bool = False
    ttl: int | None = None
    maxHops: int = 0
    weight: int = 0
    weightReverse: bool = False
    vrrp: bool = False
    checker: bool = False

    @property
    def forVrrp(self) -> bool:
        return self.vrrp or not self.checker

    @property
    def forChecker(self) -> bool:
        return self.checker or not self.vrrp


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackGroup:
    name: str
    location: Location | None = field(default=None, compare=False)
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkbeatInterface:
    name: str
    mode: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceDelay:
    name: str
    downDelay: float
    upDelay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Fifo:
    path: str
    user: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LvsSyncDaemon:
    interface: str
    instance: str | None = None
    syncId: int | None = None
    maxlen: int | None = None
    port: int = 8848
    ttl: int | None = None
    group: IPAddress | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalDefs:
    routerId: str | None = None
    notificationEmail: tuple[str, ...] = ()
    notificationEmailFrom: str | None = None
    smtpServer: str | None = None
    smtpPort: int = 25
    smtpHeloName: str | None = None
    smtpConnectTimeout: int = 30
    smtpAlert: bool | None = None
    smtpAlertVrrp: bool | None = None
    smtpAlertChecker: bool | None = None
    noEmailFaults: bool = False
    checkerLogAllFailures: bool = False
    noCheckerEmails: bool = False
    rsInitNotifies: bool = False
    #: keepalive_tx extension, not a keepalived keyword: run identical
    #: checker definitions of several real servers once (see
    #: C{checker_share_identical} in L{keepalive_tx.config.schema_global})
    checkerShareIdentical: bool = False
    #: keepalive_tx extension, not a keepalived keyword: the server endpoint
    #: of the status API and /metrics (C{status_listen}); None: off
    statusListen: str | None = None
    processNames: bool = False
    processName: str | None = None
    vrrpProcessName: str | None = None
    checkerProcessName: str | None = None
    bfdProcessName: str | None = None
    startupScript: Script | None = None
    startupScriptTimeout: int = 10
    shutdownScript: Script | None = None
    shutdownScriptTimeout: int = 10
    scriptUser: str | None = None
    enableScriptSecurity: bool = False
    useSymlinkPaths: bool = False
    setSupplementaryGroups: bool = False
    umask: int | None = None
    randomSeed: int | None = None
    tmpConfigDirectory: str | None = None
    configSaveDir: str | None = None
    reloadCheckConfig: bool = False
    reloadCheckConfigLog: str | None = None
    reloadTimeFile: str | None = None
    reloadRepeat: bool = False
    reloadFile: str | None = None
    includeCheck: tuple[str, ...] | None = None
    dataUseInstance: bool = False
    stateDumpFile: str | None = None
    statsDumpFile: str | None = None
    jsonDumpFile: str | None = None
    jsonVersion: int = 1
    maxAutoPriority: int | None = None
    minAutoPriorityDelay: int = 1000000
    priorities: tuple[tuple[str, Any], ...] = ()  # (keyword, value) process tuning
    snmpSocket: str | None = None
    snmp: tuple[str, ...] = ()
    snmpVsStatsUpdateInterval: float = 5.0
    snmpRsStatsUpdateInterval: float = 5.0
    enableDbus: bool = False
    dbusServiceName: str | None = None
    dbusNoInterfaceName: str | None = None
    notifyFifo: Fifo | None = None
    vrrpNotifyFifo: Fifo | None = None
    lvsNotifyFifo: Fifo | None = None
    notifyFifoScript: Script | None = None
    vrrpNotifyFifoScript: Script | None = None
    lvsNotifyFifoScript: Script | None = None
    fifoWriteVrrpStatesOnReload: bool = False
    vrrpNotifyPriorityChanges: bool = False
    dynamicInterfaces: bool = False
    dynamicInterfacesAllowIfChanges: bool = False
    netlinkBufs: tuple[tuple[str, Any], ...] = ()
    iprouteUsrDir: str | None = None
    iprouteEtcDir: str | None = None
    vrrpMcastGroup4: ipaddress.IPv4Address = ipaddress.IPv4Address("224.0.0.18")
    vrrpMcastGroup6: ipaddress.IPv6Address = ipaddress.IPv6Address("ff02::12")
    defaultInterface: str = "eth0"
    vrrpVersion: int = 2
    garp: GarpSettingsConfig = field(default_factory=GarpSettingsConfig)
    vrrpGarpInterval: float = 0.0
    vrrpGnaInterval: float = 0.0
    vrrpMinGarp: bool = False
    vrrpDownTimerAdverts: int = 3
    vrrpLowerPrioNoAdvert: bool | None = None
    vrrpHigherPrioSendAdvert: bool | None = None
    vrrpOwnerIgnoreAdverts: bool | None = None
    vrrpCheckUnicastSrc: bool = False
    vrrpSkipCheckAdvAddr: bool = False
    vrrpStrict: bool = False
    v3ChecksumAsV2: bool = False
    vrrpIptables: tuple[str, ...] | None = None
    vrrpIpsets: tuple[str, ...] | None = None
    nftables: str | None = None
    nftablesPriority: int | None = None
    nftablesCounters: bool = False
    nftablesIfindex: bool = False
    nftablesIpvs: str | None = None
    nftablesIpvsPriority: int | None = None
    nftablesIpvsStartFwmark: int | None = None
    disableLocalIgmp: bool = False
    vrrpRxBufsPolicy: str | None = None
    vrrpRxBufsMultiplier: int = 3
    vrrpStartupDelay: float = 0.0
    vrrpDelayAfterBoot: float = 0.0
    logUnknownVrids: bool = False
    vmacPrefix: str = "vrrp"
    vmacAddrPrefix: str | None = None
    lvsSyncDaemon: LvsSyncDaemon | None = None
    lvsTimeouts: tuple[tuple[str, int], ...] = ()
    lvsFlush: bool = False
    lvsFlushOnStop: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """
    A whole parsed configuration.

    @ivar vrrpConfigured: the file has C{vrrp_instance} blocks, even if
        none made it into C{vrrpInstances} (keepalived still runs, and
        checks the scripts of, its VRRP process then).
    """

    globalDefs: GlobalDefs = field(default_factory=GlobalDefs)
    vrrpConfigured: bool = False
    netNamespace: str | None = None
    netNamespaceIpvs: str | None = None
    namespaceWithIpsets: bool = False
    instance: str | None = None
    usePidDir: bool = False
    childWaitTime: int = 5
    linkbeatUsePolling: bool = False
    linkbeatInterfaces: tuple[LinkbeatInterface, ...] = ()
    interfaceUpDownDelays: tuple[InterfaceDelay, ...] = ()
    trackGroups: tuple[TrackGroup, ...] = ()
    staticIpaddresses: tuple[VirtualAddress, ...] = ()
    staticRoutes: tuple[Route, ...] = ()
    staticRules: tuple[Rule, ...] = ()
    trackFiles: tuple[TrackFile, ...] = ()
    vrrpScripts: tuple[VrrpScript, ...] = ()
    trackProcesses: tuple[TrackProcess, ...] = ()
    bfdInstances: tuple[BfdInstance, ...] = ()
    syncGroups: tuple[SyncGroupConfig, ...] = ()
    garpGroups: tuple[GarpGroupConfig, ...] = ()
    vrrpInstances: tuple[VrrpInstanceConfig, ...] = ()
    virtualServerGroups: tuple[Any, ...] = ()
    virtualServers: tuple[Any, ...] = ()
    ssl: Any = None

    def vrrpInstance(self, name: str) -> VrrpInstanceConfig | None:
        for vi in self.vrrpInstances:
            if vi.name == name:
                return vi
        return None


_FIELDS: dict[type, frozenset[str]] = {}


def make(cls: type, b: dict[str, Any], **extra: Any) -> Any:
    """
    Build dataclass C{cls} from builder C{b}: unknown keys are ignored and
    lists become tuples.
    """
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    kwargs = {}
    for k, v in b.items():
        if k in names:
            kwargs[k] = tuple(v) if isinstance(v, list) else v
    kwargs.update(extra)
    return cls(**kwargs)
