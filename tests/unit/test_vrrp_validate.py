"""
keepalived's receive checks, in order, on real and doctored frames.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config.model import UnicastPeer
from keepalive_tx.vrrp.packet import (
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    AHHeader,
    AuthType,
    IPv4Header,
    PacketError,
    ReceivedMeta,
    VrrpAdvert,
    ahIcv,
    authKey,
    buildIPv4Advert,
    decodeIPv4Packet,
    decodeVrrp,
    encodeVrrp,
)
from keepalive_tx.vrrp.validate import (
    PacketVerdict,
    RateLimitedLog,
    Reason,
    ReceiveCounters,
    ReceivePolicy,
    checkAdvert,
    peekVrid,
)
from tests.unit.vrrp_vectors import PASSWORD, VECTORS

VIP4 = IPv4Address("192.0.2.100")
VIP6 = IPv6Address("2001:db8::100")
H1 = IPv4Address("192.0.2.11")
H2 = IPv4Address("192.0.2.12")
H1_LL = IPv6Address("fe80::c0ff:fe00:20b")

POLICIES = {
    "vrrpv2-pass": ReceivePolicy(4, 51, 2, AuthType.PASS, PASSWORD, 1, (VIP4,)),
    "vrrpv2-ah": ReceivePolicy(4, 51, 2, AuthType.AH, PASSWORD, 1, (VIP4,)),
    "vrrpv3-ipv4": ReceivePolicy(4, 51, 3, advertInterval=1, vips=(VIP4,)),
    "vrrpv3-ipv6": ReceivePolicy(6, 51, 3, advertInterval=1, vips=(VIP6,)),
}


def vector(name: str, index: int = 1) -> tuple[bytes, dict]:
    for n, i, packetHex, fields in VECTORS:
        if (n, i) == (name, index):
            return bytes.fromhex(packetHex), fields
    raise KeyError(name)


def policyFor(name: str) -> ReceivePolicy:
    return POLICIES[name.replace("-prio0", "")]


def check(data: bytes, policy: ReceivePolicy, meta: ReceivedMeta | None = None):
    return checkAdvert(data, meta or ReceivedMeta(policy.family), policy)


def ipv6Check(packet: bytes, policy: ReceivePolicy, **kw):
    """
    Check an IPv6 packet the way an AF_INET6 raw socket delivers it.
    """
    meta = dict(source=IPv6Address(packet[8:24]), destination=IPv6Address(packet[24:40]),
                ttl=packet[7])
    meta.update(kw)
    return checkAdvert(packet[40:], ReceivedMeta(6, **meta), policy)


V2 = VrrpAdvert(version=2, vrid=51, priority=150, addresses=(VIP4,), authType=AuthType.PASS,
                advertIntSeconds=1)
V3 = VrrpAdvert(version=3, vrid=51, priority=150, addresses=(VIP4,), maxAdvertIntCs=100)


def build(advert: VrrpAdvert = V2, **kw) -> bytes:
    kw.setdefault("password", PASSWORD)
    return buildIPv4Advert(advert, kw.pop("source", H1), **kw)


class VectorAcceptanceTests(SynchronousTestCase):
    """
    Every captured keepalived advert passes with the matching policy.
    """

    def test_allVectorsAccepted(self) -> None:
        """
        OK, counted as received (and as priority 0 for the prio0 frames);
        AH frames report their sequence number.
        """
        for name, index, packetHex, fields in VECTORS:
            packet = bytes.fromhex(packetHex)
            policy = policyFor(name)
            if fields["family"] == 4:
                result = check(packet, policy)
            else:
                result = ipv6Check(packet, policy)
            self.assertEqual(result.verdict, PacketVerdict.OK, (name, index, result))
            expected = ("advert_rcvd",) + (("pri_zero_rcvd",) if fields["priority"] == 0 else ())
            self.assertEqual(result.counters, expected, (name, index))
            self.assertEqual(result.ahSequence, fields.get("ahSeq"))
            self.assertEqual(str(result.source), fields["src"])
            self.assertEqual(result.advert.priority, fields["priority"])

    def test_v3IntervalDifferenceIsOnlyNoted(self) -> None:
        """
        A VRRPv3 advert with another interval (the 0.1 s frames) is
        accepted with a note, not counted as an error.
        """
        packet, _ = vector("vrrpv3-ipv4", 3)
        result = check(packet, POLICIES["vrrpv3-ipv4"])
        self.assertEqual(result.verdict, PacketVerdict.OK)
        self.assertEqual(result.notes, (Reason.V3_INTERVAL,))
        self.assertIn("rcved=100 milli-sec", result.noteDetails[0])

    def test_ethernetPaddingTolerated(self) -> None:
        """
        Bytes after tot_len in a minimum-size frame are link padding.
        """
        packet, _ = vector("vrrpv2-pass")
        self.assertEqual(len(packet), 40)
        result = check(packet + b"\x00" * 6, POLICIES["vrrpv2-pass"])
        self.assertEqual(result.verdict, PacketVerdict.OK)


class OrderedCheckTests(SynchronousTestCase):
    """
    Each check of keepalived's C{vrrp_check_packet}, with its verdict and counter.
    """

    def assertResult(self, result, reason: Reason, counters: tuple[str, ...] = ()) -> None:
        self.assertEqual(result.reason, reason, result.detail)
        self.assertEqual(result.verdict, reason.verdict)
        self.assertEqual(result.counters, counters)

    def test_dispatcherDrops(self) -> None:
        """
        Truncated, too short, non-VRRP and unknown-VRID datagrams are
        dropped without counting.
        """
        packet, _ = vector("vrrpv2-pass")
        policy = POLICIES["vrrpv2-pass"]
        self.assertResult(check(packet, policy, ReceivedMeta(4, truncated=True)),
                          Reason.TRUNCATED)
        self.assertResult(check(packet[:27], policy), Reason.TOO_SHORT)
        self.assertResult(check(b"", policy), Reason.TOO_SHORT)
        self.assertResult(check(packet, replace(policy, vrid=52)), Reason.UNKNOWN_VRID)
        udp = packet[:9] + b"\x11" + packet[10:]
        self.assertResult(check(udp, policy), Reason.NOT_VRRP)
        self.assertResult(check(b"\x31", POLICIES["vrrpv3-ipv6"]), Reason.TOO_SHORT)

    def test_1_ahPresence(self) -> None:
        """
        An AH header iff auth type AH, else C{authtype_mismatch}.
        """
        pas, _ = vector("vrrpv2-pass")
        ah, _ = vector("vrrpv2-ah")
        self.assertResult(check(pas, POLICIES["vrrpv2-ah"]), Reason.AH_PRESENCE_MISMATCH,
                          ("authtype_mismatch",))
        result = check(ah, POLICIES["vrrpv2-pass"])
        self.assertResult(result, Reason.AH_PRESENCE_MISMATCH, ("authtype_mismatch",))
        self.assertEqual(result.detail, "Received AH header but auth type not AH")

    def test_2_length(self) -> None:
        """
        The datagram must be exactly IP + (AH) + VRRP long: C{packet_len_err}.
        """
        ah, _ = vector("vrrpv2-ah")
        result = check(ah + b"\x00" * 4, POLICIES["vrrpv2-ah"])
        self.assertResult(result, Reason.PACKET_LENGTH, ("packet_len_err",))
        self.assertEqual(result.detail, "vrrp packet too long, length 68 and expect 64")
        pas, _ = vector("vrrpv2-pass")
        self.assertResult(check(pas[:-1], POLICIES["vrrpv2-pass"]), Reason.PACKET_LENGTH,
                          ("packet_len_err",))
        v6, _ = vector("vrrpv3-ipv6")
        self.assertResult(ipv6Check(v6 + b"\x00", POLICIES["vrrpv3-ipv6"]),
                          Reason.PACKET_LENGTH, ("packet_len_err",))

    def test_3_ttl(self) -> None:
        """
        TTL / hop limit must be 255 (C{ip_ttl_err}), unless unicast; an
        unknown IPv6 hop limit is not checked.
        """
        policy = POLICIES["vrrpv2-pass"]
        self.assertResult(check(build(ttl=254), policy), Reason.TTL, ("ip_ttl_err",))
        unicast = replace(policy, unicastPeers=(UnicastPeer(address=H1),))
        result = check(build(ttl=64, destination=H2), unicast)
        self.assertResult(result, Reason.OK, ("advert_rcvd",))
        v6, _ = vector("vrrpv3-ipv6")
        self.assertResult(ipv6Check(v6, POLICIES["vrrpv3-ipv6"], ttl=1), Reason.TTL,
                          ("ip_ttl_err",))
        self.assertResult(ipv6Check(v6, POLICIES["vrrpv3-ipv6"], ttl=None), Reason.OK,
                          ("advert_rcvd",))

    def test_4_version(self) -> None:
        """
        The version must be ours.
        """
        v3, _ = vector("vrrpv3-ipv4")
        policy = replace(POLICIES["vrrpv2-pass"], authType=AuthType.NONE)
        result = check(v3, policy)
        self.assertResult(result, Reason.VERSION, ("vers_err",))
        self.assertEqual(result.detail, "wrong version. Received 3 and expect 2")

    def test_6_invalidAuthType(self) -> None:
        """
        VRRPv2 auth types other than 0, 1, 2 are C{invalid_authtype}.
        """
        self.assertResult(check(build(replace(V2, authType=3)), POLICIES["vrrpv2-pass"]),
                          Reason.INVALID_AUTHTYPE, ("invalid_authtype",))

    def test_6_authTypeMismatch(self) -> None:
        """
        Another valid auth type than ours is C{authtype_mismatch}.
        """
        packet, _ = vector("vrrpv2-pass")
        policy = replace(POLICIES["vrrpv2-pass"], authType=AuthType.NONE)
        self.assertResult(check(packet, policy), Reason.AUTHTYPE_MISMATCH,
                          ("authtype_mismatch",))

    def test_6_password(self) -> None:
        """
        A wrong password is C{auth_failure}; only 8 bytes count.
        """
        packet, _ = vector("vrrpv2-pass")
        policy = POLICIES["vrrpv2-pass"]
        self.assertResult(check(packet, replace(policy, password="other")), Reason.PASSWORD,
                          ("auth_failure",))
        long = replace(policy, password="s3cr3t\x00\x00ignored")
        self.assertResult(check(packet, long), Reason.OK, ("advert_rcvd",))

    def test_6_ahNextHeader(self) -> None:
        """
        An AH header for another protocol is silently dropped.
        """
        packet, _ = vector("vrrpv2-ah")
        doctored = packet[:20] + b"\x11" + packet[21:]
        self.assertResult(check(doctored, POLICIES["vrrpv2-ah"]), Reason.AH_NOT_VRRP)

    def test_6_ahIcv(self) -> None:
        """
        A bad ICV (wrong key or changed bytes) is C{auth_failure}.
        """
        packet, _ = vector("vrrpv2-ah")
        policy = POLICIES["vrrpv2-ah"]
        self.assertResult(check(packet, replace(policy, password="wrong")), Reason.AH_ICV,
                          ("auth_failure",))
        prio = bytearray(packet)
        prio[46] = 200  # priority byte of the VRRP message
        self.assertResult(check(bytes(prio), policy), Reason.AH_ICV, ("auth_failure",))

    def test_6_ahIcvIgnoresMutableFields(self) -> None:
        """
        TOS and fragment field changes in transit do not break the ICV.
        """
        packet, _ = vector("vrrpv2-ah")
        ip = IPv4Header.decode(packet)
        mutated = replace(ip, tos=0, fragment=0x4000).encode(44) + packet[20:]
        self.assertResult(check(mutated, POLICIES["vrrpv2-ah"]), Reason.OK, ("advert_rcvd",))

    def test_6_ahSpi(self) -> None:
        """
        The SPI must equal the IPv4 source.
        """
        packet, _ = vector("vrrpv2-ah")
        decoded = decodeIPv4Packet(packet)
        ah = replace(decoded.ah, spi=int(H2))
        ah = replace(ah, icv=ahIcv(decoded.ip, ah, decoded.vrrpBytes, PASSWORD))
        doctored = packet[:20] + ah.encode() + decoded.vrrpBytes
        result = check(doctored, POLICIES["vrrpv2-ah"])
        self.assertResult(result, Reason.AH_SPI, ("auth_failure",))
        self.assertIsNone(result.ahSequence)

    def test_6_ahReplay(self) -> None:
        """
        Sequence numbers must increase.
        """
        packet, _ = vector("vrrpv2-ah", 2)
        policy = POLICIES["vrrpv2-ah"]
        self.assertResult(check(packet, replace(policy, ahLastSequence=2)), Reason.AH_REPLAY,
                          ("auth_failure",))
        self.assertEqual(check(packet, replace(policy, ahLastSequence=1)).ahSequence, 2)

    def test_6_v2Interval(self) -> None:
        """
        A VRRPv2 interval mismatch is dropped, not counted.
        """
        packet, _ = vector("vrrpv2-pass")
        result = check(packet, replace(POLICIES["vrrpv2-pass"], advertInterval=2))
        self.assertResult(result, Reason.ADVERT_INTERVAL)
        self.assertEqual(result.detail,
                         "advertisement interval mismatch mine=2 sec rcv'd=1 sec")

    def test_7_type(self) -> None:
        """
        Type must be 1: C{invalid_type_rcvd}.
        """
        self.assertResult(check(build(replace(V2, type=2)), POLICIES["vrrpv2-pass"]),
                          Reason.INVALID_TYPE, ("invalid_type_rcvd",))

    def test_8_ipTotalLength(self) -> None:
        """
        IPv4 tot_len must match what was received: C{packet_len_err}.
        """
        packet, _ = vector("vrrpv3-ipv4")
        doctored = packet[:2] + struct.pack("!H", 33) + packet[4:]
        self.assertResult(check(doctored, POLICIES["vrrpv3-ipv4"]), Reason.IP_TOTAL_LENGTH,
                          ("packet_len_err",))

    def test_10_checksum(self) -> None:
        """
        A bad checksum is KO (C{chk_err}, keepalived's SNMP counter).
        """
        for name in ("vrrpv2-pass", "vrrpv3-ipv4"):
            packet, _ = vector(name)
            bad = bytearray(packet)
            bad[27] ^= 0xFF
            self.assertResult(check(bytes(bad), POLICIES[name]), Reason.CHECKSUM, ("chk_err",))

    def test_10_v3ChecksumAsV2(self) -> None:
        """
        C{v3_checksum_as_v2} adverts only pass with the same setting.
        """
        packet = build(V3, v3ChecksumAsV2=True)
        policy = POLICIES["vrrpv3-ipv4"]
        self.assertResult(check(packet, policy), Reason.CHECKSUM, ("chk_err",))
        self.assertResult(check(packet, replace(policy, v3ChecksumAsV2=True)), Reason.OK,
                          ("advert_rcvd",))

    def test_10_oldUnicastChecksum(self) -> None:
        """
        A unicast VRRPv3 advert summed over the multicast group (keepalived
        < 1.3.6) is accepted with a note so the instance can switch.
        """
        packet = build(V3, destination=H2, checksumDestination=VRRP_MCAST_V4)
        policy = replace(POLICIES["vrrpv3-ipv4"], unicastPeers=(UnicastPeer(address=H1),))
        result = check(packet, policy)
        self.assertResult(result, Reason.OK, ("advert_rcvd",))
        self.assertEqual(result.notes, (Reason.OLD_UNICAST_CHECKSUM,))
        switched = replace(policy, oldUnicastChecksum=True)
        self.assertEqual(check(packet, switched).notes, ())

    def test_11_castMismatch(self) -> None:
        """
        Multicast adverts for a unicast instance (and vice versa) are KO,
        counted as C{addr_list_err}.
        """
        packet, _ = vector("vrrpv2-pass")
        unicast = replace(POLICIES["vrrpv2-pass"], unicastPeers=(UnicastPeer(address=H1),))
        result = check(packet, unicast)
        self.assertResult(result, Reason.CAST_MISMATCH, ("addr_list_err",))
        self.assertEqual(result.detail, "Expected unicast packet but received multicast packet")
        self.assertResult(check(build(destination=H2), POLICIES["vrrpv2-pass"]),
                          Reason.CAST_MISMATCH, ("addr_list_err",))
        v6, _ = vector("vrrpv3-ipv6")
        self.assertResult(
            ipv6Check(v6, POLICIES["vrrpv3-ipv6"], destination=IPv6Address("2001:db8::12")),
            Reason.CAST_MISMATCH, ("addr_list_err",),
        )

    def test_12_ownerIgnoresAdverts(self) -> None:
        """
        An owner with C{owner_ignore_adverts} drops adverts.
        """
        packet, _ = vector("vrrpv2-pass")
        policy = replace(POLICIES["vrrpv2-pass"], ownerIgnoreAdverts=True)
        self.assertResult(check(packet, replace(policy, effectivePriority=255)),
                          Reason.OWNER_IGNORES)
        self.assertResult(check(packet, policy), Reason.OK, ("advert_rcvd",))

    def test_7b_addressCountDropped(self) -> None:
        """
        An advert carrying another number of addresses than we have VIPs is
        KO (C{addr_list_err}, not counted as received), as keepalived 2.2.7
        decides it: VRRPv2, VRRPv3 over IPv4 and over IPv6.
        """
        two4 = (VIP4, IPv4Address("192.0.2.101"))
        for name in ("vrrpv2-pass", "vrrpv3-ipv4"):
            packet, _ = vector(name)
            result = check(packet, replace(POLICIES[name], vips=two4))
            self.assertResult(result, Reason.VIP_COUNT, ("addr_list_err",))
            self.assertEqual(result.detail, "received an unexpected ip number count 1, expected 2!")
            self.assertFalse(result.accepted)
        v6, _ = vector("vrrpv3-ipv6")
        two6 = replace(POLICIES["vrrpv3-ipv6"], vips=(VIP6, IPv6Address("2001:db8::101")))
        result = ipv6Check(v6, two6)
        self.assertResult(result, Reason.VIP_COUNT, ("addr_list_err",))
        self.assertEqual(result.detail, "received an unexpected ip number count 1, expected 2!")
        # More addresses than ours, self-consistent and well summed: still KO.
        three = build(replace(V2, addresses=(VIP4, H1, H2)))
        result = check(three, POLICIES["vrrpv2-pass"])
        self.assertResult(result, Reason.VIP_COUNT, ("addr_list_err",))
        self.assertEqual(result.detail, "received an unexpected ip number count 3, expected 1!")

    def test_7b_addressCountBeforeLengthAndChecksum(self) -> None:
        """
        The count is compared right after the type: a bad checksum or IP
        total length behind a wrong count is reported as the count.
        """
        packet, _ = vector("vrrpv3-ipv4")
        bad = bytearray(packet)
        bad[27] ^= 0xFF
        two = replace(POLICIES["vrrpv3-ipv4"], vips=(VIP4, IPv4Address("192.0.2.101")))
        self.assertEqual(check(bytes(bad), two).reason, Reason.VIP_COUNT)
        self.assertEqual(check(build(replace(V2, type=2)), replace(POLICIES["vrrpv2-pass"],
                                                                   vips=())).reason,
                         Reason.INVALID_TYPE)

    def test_14_missingVipDropped(self) -> None:
        """
        With the right count, each of our VIPs must be in the advert, else
        KO after being counted as received (keepalived 2.2.7).
        """
        packet, _ = vector("vrrpv2-pass")
        other = replace(POLICIES["vrrpv2-pass"], vips=(IPv4Address("192.0.2.101"),))
        result = check(packet, other)
        self.assertResult(result, Reason.VIP_MISSING, ("advert_rcvd", "addr_list_err"))
        self.assertEqual(result.detail, "ip address associated with VRID 51 not present in "
                         "MASTER advert: 192.0.2.101")
        many = tuple(IPv4Address(f"198.51.100.{i}") for i in range(1, 21))
        advert = build(replace(V2, addresses=many[::-1]))
        self.assertResult(check(advert, replace(other, vips=many)), Reason.OK, ("advert_rcvd",))
        swapped = many[:-1] + (IPv4Address("203.0.113.1"),)
        result = check(advert, replace(other, vips=swapped))
        self.assertEqual((result.reason, result.detail[-11:]), (Reason.VIP_MISSING, "203.0.113.1"))

    def test_14_addressChecksSkipped(self) -> None:
        """
        C{checkVipAddresses} off, or the advert coming from the sender named
        by C{skipAddressCheckFrom} (C{skip_check_adv_addr} and the master
        we know): neither the count nor the addresses are compared.
        """
        packet, _ = vector("vrrpv2-pass")
        policy = POLICIES["vrrpv2-pass"]
        for vips in ((IPv4Address("192.0.2.101"),), (VIP4, IPv4Address("192.0.2.101"))):
            mismatched = replace(policy, vips=vips)
            self.assertFalse(check(packet, mismatched).accepted)
            self.assertResult(check(packet, replace(mismatched, checkVipAddresses=False)),
                              Reason.OK, ("advert_rcvd",))
            self.assertResult(check(packet, replace(mismatched, skipAddressCheckFrom=H1)),
                              Reason.OK, ("advert_rcvd",))
            self.assertFalse(check(packet, replace(mismatched, skipAddressCheckFrom=H2)).accepted)

    def test_15_unicastSource(self) -> None:
        """
        With C{check_unicast_src}, the sender must be a peer (KO, after
        being counted as received) and its TTL in the peer's range (KO,
        counted as a TTL error, as keepalived 2.2.7 counts it).
        """
        packet = build(destination=H2, ttl=64)
        peers = (UnicastPeer(address=H2),)
        policy = replace(POLICIES["vrrpv2-pass"], unicastPeers=peers, checkUnicastSource=True)
        result = check(packet, policy)
        self.assertResult(result, Reason.UNICAST_SOURCE, ("advert_rcvd",))
        self.assertEqual(result.detail, "unicast source address 192.0.2.11 not a unicast peer")
        ranged = replace(policy, unicastPeers=(UnicastPeer(address=H1, minTtl=100, maxTtl=255),))
        self.assertResult(check(packet, ranged), Reason.PEER_TTL, ("advert_rcvd", "ip_ttl_err"))
        self.assertEqual(check(packet, ranged).detail, "TTL/HL 64 not in range 100 - 255")
        ok = replace(policy, unicastPeers=(UnicastPeer(address=H1, minTtl=60, maxTtl=64),))
        self.assertResult(check(packet, ok), Reason.OK, ("advert_rcvd",))
        unchecked = replace(policy, checkUnicastSource=False)
        self.assertResult(check(packet, unchecked), Reason.OK, ("advert_rcvd",))

    def test_orderTtlBeforeVersion(self) -> None:
        """
        With several faults, the first check in keepalived's order decides.
        """
        packet = build(V3, ttl=1)
        result = check(packet, POLICIES["vrrpv2-pass"])
        self.assertEqual(result.reason, Reason.TTL)

    def test_orderAuthBeforeType(self) -> None:
        """
        A wrong password is reported before a wrong type.
        """
        packet = build(replace(V2, type=3), password="nope")
        self.assertEqual(check(packet, POLICIES["vrrpv2-pass"]).reason, Reason.PASSWORD)

    def test_ipv6V2Pass(self) -> None:
        """
        VRRPv2 over IPv6 has no auth data, so PASS never matches.
        """
        advert = VrrpAdvert(version=2, vrid=51, priority=100, addresses=(VIP6,),
                            authType=AuthType.PASS, advertIntSeconds=1)
        data = encodeVrrp(advert, 6)
        policy = ReceivePolicy(6, 51, 2, AuthType.PASS, PASSWORD, 1, (VIP6,))
        meta = ReceivedMeta(6, H1_LL, VRRP_MCAST_V6, 255)
        self.assertEqual(checkAdvert(data, meta, policy).reason, Reason.PASSWORD)
        none = replace(policy, authType=AuthType.NONE)
        data = encodeVrrp(replace(advert, authType=0), 6)
        self.assertEqual(checkAdvert(data, meta, none).reason, Reason.OK)


class PeekVridTests(SynchronousTestCase):
    """
    Demultiplexing by VRID.
    """

    def test_peek(self) -> None:
        """
        The VRID is found after the IP header, after AH, or at byte 1.
        """
        self.assertEqual(peekVrid(vector("vrrpv2-pass")[0], 4), 51)
        self.assertEqual(peekVrid(vector("vrrpv2-ah")[0], 4), 51)
        self.assertEqual(peekVrid(vector("vrrpv3-ipv6")[0][40:], 6), 51)
        self.assertIsNone(peekVrid(b"\x45" + b"\x00" * 20, 4))
        self.assertIsNone(peekVrid(b"", 6))


class CountersAndLogTests(SynchronousTestCase):
    """
    L{ReceiveCounters} and L{RateLimitedLog}.
    """

    def test_counters(self) -> None:
        """
        Results add up per reason (notes included) and per keepalived
        counter; an address-count mismatch is not counted as received.
        """
        counters = ReceiveCounters()
        packet, _ = vector("vrrpv2-pass")
        policy = POLICIES["vrrpv2-pass"]
        counters.record(check(packet, policy))
        counters.record(check(packet, replace(policy, password="x")))
        counters.record(check(packet, replace(policy, vips=())))
        counters.record(check(vector("vrrpv2-pass-prio0")[0], policy))
        self.assertEqual(counters["advert_rcvd"], 2)
        self.assertEqual(counters["auth_failure"], 1)
        self.assertEqual(counters["addr_list_err"], 1)
        self.assertEqual(counters["pri_zero_rcvd"], 1)
        self.assertEqual(counters["packet_len_err"], 0)
        self.assertEqual(counters.byReason[Reason.OK], 2)
        self.assertEqual(counters.byReason[Reason.PASSWORD], 1)
        self.assertEqual(counters.byReason[Reason.VIP_COUNT], 1)
        counters.clear()
        self.assertEqual(counters["advert_rcvd"], 0)

    def test_reasonsCarryKeepalivedCounterNames(self) -> None:
        """
        Counted reasons use keepalived's stats names.
        """
        names = {r.counter for r in Reason if r.counter}
        self.assertEqual(names, {
            "authtype_mismatch", "packet_len_err", "ip_ttl_err", "vers_err",
            "invalid_authtype", "auth_failure", "invalid_type_rcvd", "chk_err",
            "addr_list_err",
        })
        for r in Reason:
            if r.verdict is PacketVerdict.DROP:
                self.assertIsNone(r.counter, r)

    def test_rateLimitedLog(self) -> None:
        """
        One message per reason until reset.
        """
        events: list[dict] = []
        log = RateLimitedLog(Logger(observer=events.append), prefix="(VI_1) ")
        packet, _ = vector("vrrpv2-pass")
        bad = check(packet, replace(POLICIES["vrrpv2-pass"], password="x"))
        for _ in range(3):
            log.logResult(bad)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["detail"], "received an invalid passwd!")
        self.assertEqual(events[0]["prefix"], "(VI_1) ")
        log.logResult(check(packet, POLICIES["vrrpv2-pass"]))
        self.assertEqual(len(events), 1)
        log.reset()
        log.logResult(bad)
        self.assertEqual(len(events), 2)


# -- fuzzing --------------------------------------------------------------

_SAMPLES = [bytes.fromhex(h) for _, _, h, _ in VECTORS]
_FUZZ_POLICIES = list(POLICIES.values()) + [
    replace(POLICIES["vrrpv2-pass"], unicastPeers=(UnicastPeer(address=H1),), checkUnicastSource=True),
    replace(POLICIES["vrrpv3-ipv4"], unicastPeers=(UnicastPeer(address=H1),)),
    replace(POLICIES["vrrpv2-ah"], ahLastSequence=3),
]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_SAMPLES)))
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.sampled_from(["flip", "cut", "extend"]))
        if action == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif action == "cut":
            data = data[: draw(st.integers(0, len(data)))]
        else:
            data += draw(st.binary(max_size=40))
    return bytes(data)


class FuzzTests(SynchronousTestCase):
    """
    No exception escapes the decoders (other than L{PacketError}) or the
    validator, whatever the bytes.
    """

    def _throw(self, data: bytes) -> None:
        for family in (4, 6):
            try:
                if family == 4:
                    decodeIPv4Packet(data)
                decodeVrrp(data, family)
            except PacketError:
                pass
        for policy in _FUZZ_POLICIES:
            metas = [ReceivedMeta(4), ReceivedMeta(6, H1_LL, VRRP_MCAST_V6, 255),
                     ReceivedMeta(6, ip_address("2001:db8::1"), ip_address("2001:db8::2"), None)]
            for meta in metas:
                if (meta.family == 6) != (policy.family == 6):
                    continue
                result = checkAdvert(data, meta, policy)
                self.assertIn(result.verdict, (PacketVerdict.OK, PacketVerdict.KO, PacketVerdict.DROP))
            peekVrid(data, policy.family)

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=120))
    def test_randomBytes(self, data: bytes) -> None:
        """
        Random bytes.
        """
        self._throw(data)

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutated())
    def test_mutatedVectors(self, data: bytes) -> None:
        """
        Real frames with bytes changed, cut or appended (IPv6 ones are fed
        whole and as payload).
        """
        self._throw(data)
        self._throw(data[40:])

    def test_ahHeaderFuzzStructure(self) -> None:
        """
        An AH packet whose AH header is cut short is dropped as too short.
        """
        packet = vector("vrrpv2-ah")[0]
        result = check(packet[:30], POLICIES["vrrpv2-ah"])
        self.assertEqual(result.reason, Reason.TOO_SHORT)
        self.assertEqual(AHHeader.decode(packet[20:44]).sequence, 1)
        self.assertEqual(authKey(PASSWORD), b"s3cr3t\x00\x00")
