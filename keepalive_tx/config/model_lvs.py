"""
Immutable model of the LVS / health-checker half of a keepalived configuration:
C{virtual_server_group}, C{virtual_server} (with real servers, sorry server
and checkers) and the global C{SSL} block.

Every value here is already I{effective}: parameter inheritance (checker ←
real server ← virtual server ← built-in default, see C{docs/keepalived-compat.md},
"Checker parameters: inheritance and defaults") has been
resolved by the schema, so consumers never re-implement it. Each object also
carries C{explicit}, the set of keywords written at that level, for code that
needs to know whether a value was chosen by the operator (reload diffs,
status output).

The only values left unresolved are those that depend on C{global_defs}
(C{smtpAlert}, C{logAllFailures}): C{None} there means "not written anywhere
on the VS/RS/checker path, use the global default".
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, ClassVar

from keepalive_tx.config.errors import Location

if TYPE_CHECKING:
    from keepalive_tx.config.model import Script

IPAddress = IPv4Address | IPv6Address

#: IPVS schedulers keepalived accepts (C{lvs_sched}/C{lb_algo}).
SCHEDULERS = frozenset(
    ("rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos")
)

#: Scheduler flag keywords (C{ops} = one-packet scheduling).
SCHEDULER_FLAGS = frozenset(
    ("hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback")
)

#: Default C{status_code} set of HTTP_GET/SSL_GET URLs.
DEFAULT_STATUS_CODES: tuple[tuple[int, int], ...] = ((200, 299),)


@dataclass(frozen=True, slots=True)
class ForwardingMethod:
    """
    IPVS forwarding method (C{lvs_method}/C{lb_kind}).

    @ivar kind: C{"NAT"}, C{"DR"} or C{"TUN"}.
    @ivar tunnelType: for TUN: C{"ipip"} (default), C{"gue"} or C{"gre"}.
    @ivar tunnelPort: GUE destination port (only for C{gue}).
    @ivar checksum: for TUN: C{None} (kernel default), C{"nocsum"}, C{"csum"}
        or C{"remcsum"}.
    """

    kind: str = "NAT"
    tunnelType: str | None = None
    tunnelPort: int | None = None
    checksum: str | None = None


NAT = ForwardingMethod("NAT")


@dataclass(frozen=True, slots=True)
class AddressRange:
    """
    One address entry of a C{virtual_server_group}: a single address
    (C{first == last}) or an inclusive range, with an optional port.
    """

    first: IPAddress
    last: IPAddress
    port: int | None
    location: Location | None = None

    @property
    def family(self) -> int:
        return self.first.version

    def addresses(self):
        """
        Iterate over every address of the range.
        """
        a, b = int(self.first), int(self.last)
        cls = type(self.first)
        for n in range(a, b + 1):
            yield cls(n)


@dataclass(frozen=True, slots=True)
class FwmarkEntry:
    """
    A C{fwmark N [inet|inet6]} entry of a C{virtual_server_group}.

    @ivar family: 4, 6 or C{None} when not given (the VS decides).
    """

    mark: int
    family: int | None = None
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class VirtualServerGroup:
    name: str
    addressRanges: tuple[AddressRange, ...] = ()
    fwmarks: tuple[FwmarkEntry, ...] = ()
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class SSLConfig:
    """
    The top-level C{SSL} block: client context for SSL_GET. All C{None}
    means an auto-generated context.
    """

    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    location: Location | None = None


# --- checkers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckerConfig:
    """
    Fields shared by every checker.

    @cvar kind: the configuration keyword (C{"TCP_CHECK"}, ...).
    @ivar alpha: effective alpha (checker ← RS ← VS).
    @ivar explicit: keywords written inside this checker block.
    """

    kind: ClassVar[str] = ""
    location: Location | None = None
    alpha: bool = False
    explicit: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledChecker(CheckerConfig):
    """
    A checker run periodically by keepalived (all but FILE_CHECK/BFD_CHECK).

    @ivar delayLoop: seconds between checks (checker ← RS ← VS ← 60).
    @ivar retry: failures tolerated before DOWN (checker ← RS ← VS ← 1;
        DNS 3, MISC 0).
    @ivar delayBeforeRetry: seconds between retries (checker ← RS ← VS ←
        1; HTTP/SSL 3; DNS = delayLoop).
    @ivar warmup: max random initial delay (checker ← RS ← VS ← delayLoop).
    @ivar logAllFailures: C{None} = global C{checker_log_all_failures}.
    """

    delayLoop: float = 60.0
    retry: int = 1
    delayBeforeRetry: float = 1.0
    warmup: float = 60.0
    logAllFailures: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectingChecker(ScheduledChecker):
    """
    A checker that talks to an endpoint.

    @ivar connectIp: effective target address (C{connect_ip}, else RS address).
    @ivar connectPort: effective port (C{connect_port}, else RS port; 0 = none).
    @ivar connectTimeout: seconds (checker ← RS ← VS ← 5).
    """

    connectIp: IPAddress
    connectPort: int = 0
    bindTo: IPAddress | None = None
    bindIf: str | None = None
    bindPort: int | None = None
    fwmark: int | None = None
    connectTimeout: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpCheck(ConnectingChecker):
    kind: ClassVar[str] = "TCP_CHECK"


@dataclass(frozen=True, slots=True, kw_only=True)
class PingCheck(ConnectingChecker):
    kind: ClassVar[str] = "PING_CHECK"


@dataclass(frozen=True, slots=True)
class HttpUrlConfig:
    """
    One C{url {}} of an HTTP_GET/SSL_GET checker.

    @ivar digest: lower-case 32-hex MD5 of the body, or C{None}.
    @ivar statusCodes: inclusive C{(low, high)} ranges; default 200-299.
    @ivar virtualhost: effective Host (url ← checker ← RS ← VS), or C{None}
        for C{ip:port}.
    """

    path: str
    digest: str | None = None
    statusCodes: tuple[tuple[int, int], ...] = DEFAULT_STATUS_CODES
    virtualhost: str | None = None
    regex: str | None = None
    regexNoMatch: bool = False
    regexOptions: tuple[str, ...] = ()
    regexMinOffset: int | None = None
    regexMaxOffset: int | None = None
    regexStack: tuple[int, int] | None = None
    tlsCompliant: bool = False
    location: Location | None = None

    def statusAllowed(self, code: int) -> bool:
        for low, high in self.statusCodes:
            if low <= code <= high:
                return True
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCheck(ConnectingChecker):
    """
    HTTP_GET (C{ssl=False}) or SSL_GET (C{ssl=True}).

    @ivar virtualhost: effective checker-level Host (checker ← RS ← VS).
    @ivar httpProtocol: C{"1.0"}, C{"1.0C"} or C{"1.1"}.
    """

    kind: ClassVar[str] = "HTTP_GET"
    ssl: bool = False
    urls: tuple[HttpUrlConfig, ...] = ()
    virtualhost: str | None = None
    httpProtocol: str = "1.0"
    fastRecovery: bool = False
    enableSni: bool = False
    sniName: str | None = None
    tlsCompliant: bool = False

    @property
    def checkerName(self) -> str:
        return "SSL_GET" if self.ssl else "HTTP_GET"


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpCheck(ConnectingChecker):
    """
    SMTP_CHECK. Legacy C{host {}} sub-blocks are expanded by the schema into
    one L{SmtpCheck} per endpoint.
    """

    kind: ClassVar[str] = "SMTP_CHECK"
    heloName: str = "smtpchecker.keepalived.org"


DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY")


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsCheck(ConnectingChecker):
    kind: ClassVar[str] = "DNS_CHECK"
    type: str = "SOA"
    name: str = "."


@dataclass(frozen=True, slots=True)
class HexPattern:
    """
    Bytes with a per-nibble wildcard mask: a received byte C{b} at index
    C{i} matches when C{b & ~mask[i] & 0xff == value[i]}.
    """

    value: bytes
    mask: bytes

    def matches(self, data: bytes) -> bool:
        if len(data) < len(self.value):
            return False
        for i, want in enumerate(self.value):
            if data[i] & ~self.mask[i] & 0xFF != want:
                return False
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpCheck(ConnectingChecker):
    """
    @ivar payload: bytes to send, or C{None} for random bytes.
    @ivar requireReply: C{False}, C{True} (any reply), or a L{HexPattern}.
    """

    kind: ClassVar[str] = "UDP_CHECK"
    payload: bytes | None = None
    requireReply: bool | HexPattern = False
    minReplyLength: int = 0
    maxReplyLength: int = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class MiscCheck(ScheduledChecker):
    """
    @ivar timeout: seconds before the script is killed (default VS delay_loop).
    @ivar user: C{user [group]} from the C{user} keyword (keepalived ignores
        words after the command on the misc_path line).
    """

    kind: ClassVar[str] = "MISC_CHECK"
    script: Script
    timeout: float = 60.0
    dynamic: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCheck(CheckerConfig):
    """
    @ivar weight: multiplier, or C{None} for the track_file's own weight.
    """

    kind: ClassVar[str] = "FILE_CHECK"
    trackFile: str
    dynamic: bool = False
    weight: int | None = None
    reverse: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdCheck(CheckerConfig):
    kind: ClassVar[str] = "BFD_CHECK"
    name: str


AnyChecker = (
    TcpCheck | PingCheck | HttpCheck | SmtpCheck | DnsCheck | UdpCheck | MiscCheck | FileCheck | BfdCheck
)


# --- servers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RealServer:
    """
    A C{real_server} with effective values.

    @ivar port: effective port (NAT: VS port if omitted; DR/TUN: VS port;
        0 for fwmark DR/TUN and where nothing gives one).
    @ivar weight: RS C{weight}, else VS C{weight} (default 1).
    @ivar method: RS C{lvs_method}, else VS method.
    @ivar smtpAlert: C{None} = not written on RS (keepalived: global
        checker/global setting, else yes).
    @ivar checkers: all checkers; the RS is alive when every one is up.
    """

    address: IPAddress
    port: int = 0
    weight: int = 1
    method: ForwardingMethod = NAT
    uThreshold: int = 0
    lThreshold: int = 0
    notifyUp: Script | None = None
    notifyDown: Script | None = None
    smtpAlert: bool | None = None
    virtualhost: str | None = None
    snmpName: str | None = None
    alpha: bool = False
    inhibitOnFailure: bool = False
    delayLoop: float = 60.0
    connectTimeout: float = 5.0
    retry: int | None = None
    delayBeforeRetry: float | None = None
    warmup: float | None = None
    checkers: tuple[AnyChecker, ...] = ()
    location: Location | None = None
    explicit: frozenset[str] = frozenset()

    @property
    def family(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True, kw_only=True)
class SorryServer:
    address: IPAddress
    port: int = 0
    method: ForwardingMethod = NAT
    inhibit: bool = False
    location: Location | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServer:
    """
    A C{virtual_server} with effective values.

    Exactly one of C{address} (with C{port}), C{fwmark} or C{group} is set.

    @ivar family: 4 or 6 (resolved from the header, C{ip_family}, servers).
    @ivar protocol: C{"TCP"}, C{"UDP"} or C{"SCTP"} (C{None} for fwmark).
    @ivar persistenceTimeout: seconds, 0 = not persistent.
    @ivar persistenceGranularity: prefix length (v4 netmask converted), or
        C{None}.
    @ivar quorum: effective (clamped to total RS weight, at least 1).
    @ivar hysteresis: effective (below quorum).
    @ivar smtpAlert: C{None} = not written (global checker setting, else no).
    """

    address: IPAddress | None = None
    port: int = 0
    fwmark: int | None = None
    group: str | None = None
    family: int = 4
    protocol: str | None = "TCP"
    scheduler: str = "wlc"
    schedulerFlags: frozenset[str] = frozenset()
    method: ForwardingMethod = NAT
    persistenceTimeout: int = 0
    persistenceGranularity: int | None = None
    persistenceEngine: str | None = None
    haSuspend: bool = False
    virtualhost: str | None = None
    smtpAlert: bool | None = None
    snmpName: str | None = None
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorumUp: Script | None = None
    quorumDown: Script | None = None
    weight: int = 1
    sorryServer: SorryServer | None = None
    delayLoop: float = 60.0
    connectTimeout: float = 5.0
    retry: int | None = None
    delayBeforeRetry: float | None = None
    warmup: float | None = None
    inhibitOnFailure: bool = False
    realServers: tuple[RealServer, ...] = ()
    location: Location | None = None
    explicit: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        """
        keepalived's log name: C{[IP]:proto:port}, C{FWM n} or
        C{[group]:port}.
        """
        if self.fwmark is not None:
            return f"FWM {self.fwmark}"
        if self.group is not None:
            return f"[{self.group}]:{self.port}"
        proto = (self.protocol or "none").lower()
        return f"[{self.address}]:{proto}:{self.port}"

    @property
    def totalWeight(self) -> int:
        return sum(rs.weight for rs in self.realServers)
