# -*- test-case-name: tests.unit.test_vrrp_validate -*-
"""
Receive validation of VRRP adverts, in the order of keepalived's
C{vrrp_check_packet}.

L{checkAdvert} is pure: it takes the datagram a raw socket delivered (IPv4:
the whole IP packet; IPv6: the VRRP message), the L{ReceivedMeta} the socket
gave and the instance's L{ReceivePolicy}, and returns a L{PacketCheckResult}:
OK, KO (an error, counted) or DROP (ignored), with a L{Reason} and the
keepalived stats counters to bump.  It never raises on bad input.

L{ReceiveCounters} keeps per-reason and per-keepalived-counter totals and
L{RateLimitedLog} logs the first occurrence of each reason until reset.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv6Address
from typing import NoReturn

from twisted.logger import Logger

from keepalive_tx.config.model import UnicastPeer
from keepalive_tx.vrrp.packet import (
    ADVERTISEMENT,
    AH_HEADER_LEN,
    IPPROTO_AH,
    IPPROTO_VRRP,
    VRRP_HEADER_LEN,
    VRRP_MCAST_V4,
    VRRP_TTL,
    AHHeader,
    AuthType,
    IPv4Header,
    IPv4Packet,
    PacketError,
    ReceivedMeta,
    VrrpAdvert,
    ahIcv,
    authKey,
    decodeVrrp,
    expectedVrrpLength,
    vrrpChecksum,
)

__all__ = [
    "AdvertChecker",
    "PacketCheckResult",
    "PacketVerdict",
    "RateLimitedLog",
    "Reason",
    "ReceiveCounters",
    "ReceivePolicy",
    "checkAdvert",
    "peekVrid",
]

IPAddress = IPv4Address | IPv6Address

#: The largest IPv4 packet that may carry Ethernet minimum-frame padding
#: (60-byte minimum frame minus the 14-byte Ethernet header).
_MIN_ETHERNET_PAYLOAD = 46


class PacketVerdict(Enum):
    """
    keepalived's C{VRRP_PACKET_OK}, C{VRRP_PACKET_KO} and C{VRRP_PACKET_DROP}.
    """

    OK = "ok"
    KO = "ko"
    DROP = "drop"


class Reason(Enum):
    """
    Why a packet got its verdict.

    Each member carries C{verdict} and C{counter}, the keepalived stats
    counter it increments (C{None} when keepalived counts nothing), and a
    keepalived-like log C{message} template.
    """

    def __new__(cls, value: str, verdict: PacketVerdict, counter: str | None, message: str):
        obj = object.__new__(cls)
        obj._value_ = value
        obj.verdict = verdict  # type: ignore[attr-defined]
        obj.counter = counter  # type: ignore[attr-defined]
        obj.message = message  # type: ignore[attr-defined]
        return obj

    OK = ("ok", PacketVerdict.OK, None, "")
    # Dispatcher-level drops (before the per-instance checks).
    TRUNCATED = ("truncated", PacketVerdict.DROP, None, "VRRP packet truncated ({length} bytes)")
    TOO_SHORT = ("too_short", PacketVerdict.DROP, None, "IPv{family} VRRP packet too short - {length} bytes")
    NOT_VRRP = ("not_vrrp", PacketVerdict.DROP, None, "not a VRRP packet (IP protocol {protocol})")
    UNKNOWN_VRID = ("unknown_vrid", PacketVerdict.DROP, None,
                    "Unknown VRID({vrid}) received on interface. ignoring...")
    # Per-instance checks, in keepalived's order.
    AH_PRESENCE_MISMATCH = ("ah_presence_mismatch", PacketVerdict.KO, "authtype_mismatch", "{detail}")
    PACKET_LENGTH = ("packet_length", PacketVerdict.KO, "packet_len_err",
                     "vrrp packet too {detail}, length {length} and expect {expected}")
    TTL = ("ttl", PacketVerdict.KO, "ip_ttl_err", "invalid TTL/HL. Received {ttl} and expect 255")
    VERSION = ("version", PacketVerdict.KO, "vers_err",
               "wrong version. Received {received} and expect {expected}")
    INVALID_AUTHTYPE = ("invalid_authtype", PacketVerdict.KO, "invalid_authtype",
                        "Invalid auth type: {received}")
    AUTHTYPE_MISMATCH = ("authtype_mismatch", PacketVerdict.KO, "authtype_mismatch",
                         "received a {received} auth, expecting {expected}!")
    PASSWORD = ("password", PacketVerdict.KO, "auth_failure", "received an invalid passwd!")
    AH_NOT_VRRP = ("ah_not_vrrp", PacketVerdict.DROP, None,
                   "AH header for protocol {protocol}, ignoring")
    AH_ICV = ("ah_icv", PacketVerdict.KO, "auth_failure",
              "IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !")
    AH_SPI = ("ah_spi", PacketVerdict.KO, "auth_failure",
              "IPSEC AH : invalid IPSEC SPI value. {spi} and expect {source}")
    AH_REPLAY = ("ah_replay", PacketVerdict.KO, "auth_failure",
                 "IPSEC-AH : sequence number {sequence} already processed. Packet dropped. "
                 "Local({last})")
    ADVERT_INTERVAL = ("advert_interval", PacketVerdict.DROP, None,
                       "advertisement interval mismatch mine={mine} sec rcv'd={received} sec")
    INVALID_TYPE = ("invalid_type", PacketVerdict.KO, "invalid_type_rcvd",
                    "Invalid packet type. {received} and expect 1")
    IP_TOTAL_LENGTH = ("ip_total_length", PacketVerdict.KO, "packet_len_err",
                       "ip_tot_len mismatch against received length. {totalLength} and "
                       "received {length}")
    CHECKSUM = ("checksum", PacketVerdict.KO, "chk_err", "Invalid VRRPv{version} checksum")
    CAST_MISMATCH = ("cast_mismatch", PacketVerdict.KO, "addr_list_err",
                     "Expected {expected}icast packet but received {received}icast packet")
    OWNER_IGNORES = ("owner_ignores", PacketVerdict.DROP, None,
                     "address owner ignoring advert (owner_ignore_adverts)")
    UNICAST_SOURCE = ("unicast_source", PacketVerdict.KO, None,
                      "unicast source address {source} not a unicast peer")
    PEER_TTL = ("peer_ttl", PacketVerdict.KO, "ip_ttl_err",
                "TTL/HL {ttl} not in range {low} - {high}")
    # The address list (keepalived 2.2.7 drops these; later versions accept them).
    VIP_COUNT = ("vip_count", PacketVerdict.KO, "addr_list_err",
                 "received an unexpected ip number count {received}, expected {expected}!")
    VIP_MISSING = ("vip_missing", PacketVerdict.KO, "addr_list_err",
                   "ip address associated with VRID {vrid} not present in MASTER advert: "
                   "{address}")
    # Notes on accepted packets (counted, verdict stays OK).
    V3_INTERVAL = ("v3_interval", PacketVerdict.OK, None,
                   "advertisement interval changed: mine={mine} milli-sec, "
                   "rcved={received} milli-sec")
    OLD_UNICAST_CHECKSUM = ("old_unicast_checksum", PacketVerdict.OK, None,
                            "Setting unicast VRRPv3 checksum to old version")


@dataclass(frozen=True)
class ReceivePolicy:
    """
    What one VRRP instance accepts.

    @ivar family: 4 or 6.
    @ivar version: 2 or 3.
    @ivar authType: configured VRRPv2 auth type.
    @ivar password: C{auth_pass} (padded/truncated to 8 bytes internally).
    @ivar advertInterval: configured C{advert_int} in seconds.
    @ivar vips: our virtual addresses (the ones of our family, in order).
    @ivar unicastPeers: the C{unicast_peer} entries (with their C{min_ttl} and
        C{max_ttl}); non-empty means unicast mode.
    @ivar checkUnicastSource: instance or global C{check_unicast_src}.
    @ivar ownerIgnoreAdverts: C{owner_ignore_adverts} (global).
    @ivar effectivePriority: our current effective priority.
    @ivar ahLastSequence: the highest AH sequence number accepted so far.
    @ivar checkVipAddresses: compare the advert's address list with ours.
    @ivar skipAddressCheckFrom: do not compare the address list of adverts
        from this sender (C{skip_check_adv_addr}: the master a BACKUP
        already knows), or C{None}.
    @ivar v3ChecksumAsV2: C{v3_checksum_as_v2}: no pseudo-header.
    @ivar multicastGroup: the IPv4 group (C{vrrp_mcast_group4}), used to
        recognise old keepalived's unicast checksums.
    @ivar oldUnicastChecksum: the instance already uses the old unicast
        checksum (pseudo-header destination = multicast group).
    """

    family: int
    vrid: int
    version: int = 2
    authType: AuthType = AuthType.NONE
    password: str | bytes = b""
    advertInterval: float = 1.0
    vips: tuple[IPAddress, ...] = ()
    unicastPeers: tuple[UnicastPeer, ...] = ()
    checkUnicastSource: bool = False
    ownerIgnoreAdverts: bool = False
    effectivePriority: int = 100
    ahLastSequence: int = 0
    checkVipAddresses: bool = True
    skipAddressCheckFrom: IPAddress | None = None
    v3ChecksumAsV2: bool = False
    multicastGroup: IPv4Address = VRRP_MCAST_V4
    oldUnicastChecksum: bool = False

    def evolve(self, **changes: object) -> ReceivePolicy:
        """
        C{dataclasses.replace(self, **changes)}, cheaply: a copy of the
        fields with C{changes} applied, without running C{__init__} (an AH
        instance needs a new policy for every advert it accepts).

        @raise TypeError: a name in C{changes} is not a field.
        """
        unknown = set(changes) - _POLICY_FIELDS
        if unknown:
            raise TypeError(f"not ReceivePolicy fields: {', '.join(sorted(unknown))}")
        new = object.__new__(ReceivePolicy)
        fields = new.__dict__
        fields.update(self.__dict__)
        fields.update(changes)
        return new


_POLICY_FIELDS = frozenset(ReceivePolicy.__dataclass_fields__)


@dataclass(frozen=True)
class PacketCheckResult:
    """
    The verdict on one datagram.

    @ivar reason: the deciding L{Reason} (L{Reason.OK} when accepted).
    @ivar advert: the decoded advert, when the header could be decoded.
    @ivar source: the sender.
    @ivar ttl: TTL / hop limit seen (C{None} when unknown).
    @ivar notes: reasons noted on the way without rejecting the packet.
    @ivar counters: keepalived stats counters to increment, in order
        (e.g. C{advert_rcvd}, C{addr_list_err}, C{pri_zero_rcvd}).
    @ivar ahSequence: the AH sequence number to remember as last seen
        (set once the AH ICV, SPI and sequence checks passed).
    @ivar detail: keepalived-like log text for C{reason}.
    """

    verdict: PacketVerdict
    reason: Reason
    advert: VrrpAdvert | None = None
    source: IPAddress | None = None
    ttl: int | None = None
    notes: tuple[Reason, ...] = ()
    noteDetails: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()
    ahSequence: int | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.verdict is PacketVerdict.OK


def peekVrid(data: bytes, family: int) -> int | None:
    """
    The VRID of a received datagram, for demultiplexing, or C{None} when
    it is too short to carry a VRRP header.
    """
    if family == 4:
        # What IPv4Header.decode accepts: 20 bytes at least, 20 <= IHL <= length.
        if len(data) < 20:
            return None
        offset = (data[0] & 0xF) * 4
        if offset < 20 or len(data) < offset:
            return None
        if data[9] == IPPROTO_AH:
            offset += AH_HEADER_LEN
    else:
        offset = 0
    if len(data) < offset + VRRP_HEADER_LEN:
        return None
    return data[offset + 1]


class _Rejected(Exception):
    def __init__(self, result: PacketCheckResult) -> None:
        self.result = result


class _Checker:
    """
    One run of the checks; collects counters and notes.
    """

    def __init__(self, policy: ReceivePolicy, meta: ReceivedMeta) -> None:
        self.policy = policy
        self.meta = meta
        self.counters: list[str] = []
        self.notes: list[Reason] = []
        self.noteDetails: list[str] = []
        self.advert: VrrpAdvert | None = None
        self.source: IPAddress | None = meta.source
        self.ttl: int | None = meta.ttl
        self.ahSequence: int | None = None

    def result(self, reason: Reason, **kw: object) -> PacketCheckResult:
        counters = list(self.counters)
        if reason.counter is not None and reason.verdict is not PacketVerdict.OK:
            counters.append(reason.counter)
        try:
            detail = reason.message.format(**kw)
        except (KeyError, IndexError, ValueError):
            detail = reason.message
        return PacketCheckResult(
            verdict=reason.verdict,
            reason=reason,
            advert=self.advert,
            source=self.source,
            ttl=self.ttl,
            notes=tuple(self.notes),
            noteDetails=tuple(self.noteDetails),
            counters=tuple(counters),
            ahSequence=self.ahSequence,
            detail=detail,
        )

    def reject(self, reason: Reason, **kw: object) -> NoReturn:
        raise _Rejected(self.result(reason, **kw))

    def note(self, reason: Reason, **kw: object) -> None:
        self.notes.append(reason)
        self.noteDetails.append(reason.message.format(**kw))
        if reason.counter is not None:
            self.counters.append(reason.counter)

    def run(self, data: bytes) -> PacketCheckResult:
        if self.meta.truncated:
            self.reject(Reason.TRUNCATED, length=len(data))
        if self.policy.family == 4:
            return self.runIPv4(data)
        return self.runIPv6(data)

    # -- IPv4 ------------------------------------------------------------

    def runIPv4(self, data: bytes) -> PacketCheckResult:
        policy = self.policy
        try:
            ip = IPv4Header.decode(data)
        except PacketError:
            self.reject(Reason.TOO_SHORT, family=4, length=len(data))
        isAh = ip.protocol == IPPROTO_AH
        if ip.protocol not in (IPPROTO_VRRP, IPPROTO_AH):
            self.reject(Reason.NOT_VRRP, protocol=ip.protocol)
        ihl = ip.headerLength
        headers = ihl + (AH_HEADER_LEN if isAh else 0)
        if len(data) < headers + VRRP_HEADER_LEN:
            self.reject(Reason.TOO_SHORT, family=4, length=len(data))
        self.source = ip.source
        self.ttl = ip.ttl
        # Ethernet minimum-frame padding (only ever seen in captures: the
        # kernel trims raw-socket packets to tot_len).
        if (
            len(data) > ip.totalLength >= headers + VRRP_HEADER_LEN
            and len(data) <= _MIN_ETHERNET_PAYLOAD
        ):
            data = data[: ip.totalLength]
        if data[headers + 1] != policy.vrid:
            self.reject(Reason.UNKNOWN_VRID, vrid=data[headers + 1])
        # 1. AH header iff auth type AH
        wantAh = policy.authType == AuthType.AH
        if isAh != wantAh:
            detail = (
                "Received AH header but auth type not AH" if isAh
                else "No AH header but auth type is AH"
            )
            self.reject(Reason.AH_PRESENCE_MISMATCH, detail=detail)
        versType, naddr = data[headers], data[headers + 3]
        # 2. length
        expected = headers + expectedVrrpLength(versType >> 4, naddr, 4)
        if len(data) != expected:
            self.reject(
                Reason.PACKET_LENGTH,
                detail="long" if len(data) > expected else "short",
                length=len(data),
                expected=expected,
            )
        # decodeIPv4Packet(data), reusing the header decoded above
        vrrpBytes = bytes(data[headers:])
        packet = IPv4Packet(ip=ip, ah=AHHeader.decode(data[ihl:]) if isAh else None,
                            vrrp=decodeVrrp(vrrpBytes, 4), vrrpBytes=vrrpBytes)
        advert = self.advert = packet.vrrp
        # 3. TTL (not in unicast mode)
        if not policy.unicastPeers and ip.ttl != VRRP_TTL:
            self.reject(Reason.TTL, ttl=ip.ttl)
        # 4. version
        self.checkVersion(advert)
        # 5. auth_hmac: not implemented.
        # 6. VRRPv2 authentication and interval
        if policy.version == 2:
            self.checkV2Auth(advert)
            if isAh:
                assert packet.ah is not None
                if packet.ah.nextHeader != IPPROTO_VRRP:
                    self.reject(Reason.AH_NOT_VRRP, protocol=packet.ah.nextHeader)
                icv = ahIcv(ip, packet.ah, packet.vrrpBytes, authKey(policy.password),
                            unicast=bool(policy.unicastPeers))
                if not hmac.compare_digest(icv, packet.ah.icv):
                    self.reject(Reason.AH_ICV)
                if packet.ah.spi != int(ip.source):
                    self.reject(Reason.AH_SPI, spi=IPv4Address(packet.ah.spi), source=ip.source)
                if packet.ah.sequence <= policy.ahLastSequence:
                    self.reject(Reason.AH_REPLAY, sequence=packet.ah.sequence,
                                last=policy.ahLastSequence)
                self.ahSequence = packet.ah.sequence
            self.checkV2Interval(advert)
        # 7. type, then the address count
        self.checkType(advert)
        self.checkAddressCount(advert)
        # 8. IP total length
        if ip.totalLength != len(data):
            self.reject(Reason.IP_TOTAL_LENGTH, totalLength=ip.totalLength, length=len(data))
        # 9. VRRPv3 interval: noted only
        self.noteV3Interval(advert)
        # 10. checksum
        self.checkIPv4Checksum(ip, packet.vrrpBytes, advert)
        # 11. multicast vs unicast destination
        self.checkCast(ip.destination.is_multicast)
        return self.finish(advert)

    def checkIPv4Checksum(self, ip: IPv4Header, message: bytes, advert: VrrpAdvert) -> None:
        policy = self.policy
        msg = message[: expectedVrrpLength(advert.version, advert.naddr, 4)]
        v3AsV2 = policy.v3ChecksumAsV2
        dst = policy.multicastGroup if policy.oldUnicastChecksum else ip.destination
        calc = vrrpChecksum(msg, advert.version, 4, ip.source, dst, v3AsV2)
        if calc == advert.checksum:
            return
        if (
            advert.version == 3
            and not v3AsV2
            and policy.unicastPeers
            and not policy.oldUnicastChecksum
            and ip.destination != policy.multicastGroup
        ):
            old = vrrpChecksum(msg, 3, 4, ip.source, policy.multicastGroup)
            if old == advert.checksum:
                self.note(Reason.OLD_UNICAST_CHECKSUM)
                return
        self.reject(Reason.CHECKSUM, version=advert.version)

    # -- IPv6 ------------------------------------------------------------

    def runIPv6(self, data: bytes) -> PacketCheckResult:
        policy = self.policy
        if len(data) < VRRP_HEADER_LEN:
            self.reject(Reason.TOO_SHORT, family=6, length=len(data))
        if data[1] != policy.vrid:
            self.reject(Reason.UNKNOWN_VRID, vrid=data[1])
        # 2. length
        expected = expectedVrrpLength(data[0] >> 4, data[3], 6)
        if len(data) != expected:
            self.reject(
                Reason.PACKET_LENGTH,
                detail="long" if len(data) > expected else "short",
                length=len(data),
                expected=expected,
            )
        advert = self.advert = decodeVrrp(data, 6)
        # 3. hop limit (unknown hop limit is not checked, as keepalived)
        if not policy.unicastPeers and self.ttl is not None and self.ttl != VRRP_TTL:
            self.reject(Reason.TTL, ttl=self.ttl)
        self.checkVersion(advert)
        if policy.version == 2:
            self.checkV2Auth(advert)
            self.checkV2Interval(advert)
        self.checkType(advert)
        self.checkAddressCount(advert)
        self.noteV3Interval(advert)
        # 10. the kernel verified the checksum (IPV6_CHECKSUM).
        dst = self.meta.destination
        if dst is not None:
            self.checkCast(dst.is_multicast)
        return self.finish(advert)

    # -- shared steps ----------------------------------------------------

    def checkVersion(self, advert: VrrpAdvert) -> None:
        if advert.version != self.policy.version:
            self.reject(Reason.VERSION, received=advert.version, expected=self.policy.version)

    def checkV2Auth(self, advert: VrrpAdvert) -> None:
        policy = self.policy
        if advert.authType not in (AuthType.NONE, AuthType.PASS, AuthType.AH):
            self.reject(Reason.INVALID_AUTHTYPE, received=advert.authType)
        if advert.authType != policy.authType:
            self.reject(Reason.AUTHTYPE_MISMATCH, received=advert.authType,
                        expected=int(policy.authType))
        if policy.authType == AuthType.PASS:
            # IPv6 VRRPv2 messages carry no auth data: never a match.
            if policy.family != 4 or not hmac.compare_digest(
                advert.authData, authKey(policy.password)
            ):
                self.reject(Reason.PASSWORD)

    def checkV2Interval(self, advert: VrrpAdvert) -> None:
        if float(advert.advertIntSeconds) != float(self.policy.advertInterval):
            self.reject(Reason.ADVERT_INTERVAL, mine=self.policy.advertInterval,
                        received=advert.advertIntSeconds)

    def checkType(self, advert: VrrpAdvert) -> None:
        if advert.type != ADVERTISEMENT:
            self.reject(Reason.INVALID_TYPE, received=advert.type)

    def checksAddresses(self) -> bool:
        policy = self.policy
        return policy.checkVipAddresses and (
            policy.skipAddressCheckFrom is None or self.source != policy.skipAddressCheckFrom)

    def checkAddressCount(self, advert: VrrpAdvert) -> None:
        # keepalived 2.2.7 compares the count byte right after the type,
        # before the IP length and the checksum.
        expected = len(self.policy.vips)
        if advert.naddr != expected and self.checksAddresses():
            self.reject(Reason.VIP_COUNT, received=advert.naddr, expected=expected)

    def noteV3Interval(self, advert: VrrpAdvert) -> None:
        if advert.version != 3:
            return
        mine = round(self.policy.advertInterval * 1000)
        received = advert.maxAdvertIntCs * 10
        if mine != received:
            self.note(Reason.V3_INTERVAL, mine=mine, received=received)

    def checkCast(self, isMulticast: bool) -> None:
        unicastMode = bool(self.policy.unicastPeers)
        if isMulticast == unicastMode:
            self.reject(
                Reason.CAST_MISMATCH,
                expected="un" if unicastMode else "mult",
                received="mult" if isMulticast else "un",
            )

    def finish(self, advert: VrrpAdvert) -> PacketCheckResult:
        policy = self.policy
        # 12. owner ignores adverts
        if policy.ownerIgnoreAdverts and policy.effectivePriority == 255:
            self.reject(Reason.OWNER_IGNORES)
        # 13. counted as received
        self.counters.append("advert_rcvd")
        # 14. every VIP of ours is in the advert (the count matched above)
        if self.checksAddresses():
            carried: Collection[IPAddress] = advert.addresses
            if len(carried) > 8:
                carried = frozenset(carried)
            for vip in policy.vips:
                if vip not in carried:
                    self.reject(Reason.VIP_MISSING, vrid=policy.vrid, address=vip)
        # 15. unicast source check
        if policy.unicastPeers and policy.checkUnicastSource:
            peer = next((p for p in policy.unicastPeers if p.address == self.source), None)
            if peer is None:
                self.reject(Reason.UNICAST_SOURCE, source=self.source)
            if self.ttl is not None and not (peer.minTtl <= self.ttl <= peer.maxTtl):
                self.reject(Reason.PEER_TTL, ttl=self.ttl, low=peer.minTtl, high=peer.maxTtl)
        # 16. priority 0
        if advert.priority == 0:
            self.counters.append("pri_zero_rcvd")
        return self.result(Reason.OK)


def checkAdvert(data: bytes, meta: ReceivedMeta, policy: ReceivePolicy) -> PacketCheckResult:
    """
    Run keepalived's receive checks on one datagram, in order.

    @param data: IPv4: the IP packet as an C{AF_INET} raw socket returns it;
        IPv6: the VRRP message as an C{AF_INET6} raw socket returns it.
    @param meta: what C{recvmsg} told us (IPv6 needs C{source},
        C{destination} and C{ttl} = hop limit; IPv4 takes them from the
        header).
    @param policy: the receiving instance's L{ReceivePolicy}.
    @return: a L{PacketCheckResult}; never raises for bad packets.
    """
    checker = _Checker(policy, meta)
    try:
        return checker.run(bytes(data))
    except _Rejected as rejected:
        return rejected.result
    except (PacketError, IndexError, ValueError, TypeError):
        # A decode failure the explicit checks did not anticipate.
        return checker.result(Reason.TOO_SHORT, family=policy.family, length=len(data))


class AdvertChecker:
    """
    L{checkAdvert} with a memory of the last datagram it judged.

    A master sends the same advert every interval: for an IPv4 packet
    without AH only the IP ID and the IP header checksum change, and
    neither takes part in any check (the kernel verified the checksum); an
    IPv6 message does not change at all.  So when a datagram equals the
    previous one (outside those two fields), with equal L{ReceivedMeta} and
    the same L{ReceivePolicy} object (policies are immutable), the previous
    L{PacketCheckResult} (also immutable) is the answer.  AH packets are always
    checked in full: their sequence number and ICV change every time.
    """

    __slots__ = ("_key", "_meta", "_policy", "_result")

    def __init__(self) -> None:
        self._key: bytes | None = None
        self._meta: ReceivedMeta | None = None
        self._policy: ReceivePolicy | None = None
        self._result: PacketCheckResult | None = None

    def check(self, data: bytes, meta: ReceivedMeta, policy: ReceivePolicy) -> PacketCheckResult:
        """
        The same as C{checkAdvert(data, meta, policy)}.
        """
        data = bytes(data)
        if policy.family == 4:
            if len(data) < 20 or data[9] == IPPROTO_AH:
                return checkAdvert(data, meta, policy)
            key = data[:4] + data[6:10] + data[12:]
        else:
            key = data
        if key == self._key and policy is self._policy and meta == self._meta:
            result = self._result
            assert result is not None
            return result
        result = checkAdvert(data, meta, policy)
        self._key, self._meta, self._policy, self._result = key, meta, policy, result
        return result


@dataclass
class ReceiveCounters:
    """
    Per-reason and per-keepalived-counter totals for one instance.

    @ivar byReason: L{Reason} -> number of packets with that verdict reason
        (notes included).
    @ivar stats: keepalived counter name (C{advert_rcvd}, C{packet_len_err},
        C{ip_ttl_err}, C{invalid_type_rcvd}, C{addr_list_err},
        C{invalid_authtype}, C{authtype_mismatch}, C{auth_failure},
        C{pri_zero_rcvd}, plus the SNMP-only C{vers_err} and C{chk_err})
        -> count.
    """

    byReason: Counter = field(default_factory=Counter)
    stats: Counter = field(default_factory=Counter)

    def record(self, result: PacketCheckResult) -> None:
        """
        Account for one L{PacketCheckResult}.
        """
        self.byReason[result.reason] += 1
        for note in result.notes:
            self.byReason[note] += 1
        for name in result.counters:
            self.stats[name] += 1

    def __getitem__(self, name: str) -> int:
        return self.stats[name]

    def clear(self) -> None:
        self.byReason.clear()
        self.stats.clear()


class RateLimitedLog:
    """
    Log each L{Reason} once until L{reset} (keepalived logs one message per
    error type until the state changes or a good packet from a new master
    arrives).
    """

    def __init__(self, log: Logger | None = None, prefix: str = "") -> None:
        self._log = log if log is not None else Logger()
        self._prefix = prefix
        self._seen: set[Reason] = set()

    def log(self, reason: Reason, detail: str) -> bool:
        """
        Log C{detail} if C{reason} was not logged since the last reset.

        @return: whether it was logged.
        """
        if reason in self._seen or reason is Reason.OK:
            return False
        self._seen.add(reason)
        self._log.info("{prefix}{detail}", prefix=self._prefix, detail=detail, reason=reason.value)
        return True

    def logResult(self, result: PacketCheckResult) -> None:
        """
        Log C{result}'s reason (unless OK) and its notes, each once.
        """
        for note, detail in zip(result.notes, result.noteDetails, strict=False):
            self.log(note, detail)
        self.log(result.reason, result.detail)

    def reset(self) -> None:
        self._seen.clear()
