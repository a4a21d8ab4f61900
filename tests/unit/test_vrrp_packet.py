"""
The pure VRRP codec against real keepalived 2.2.7 frames.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.vrrp.packet import (
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    AHHeader,
    AuthType,
    IPv4Header,
    PacketError,
    VrrpAdvert,
    ahIcv,
    authKey,
    buildIPv4Advert,
    decodeIPv4Packet,
    decodeVrrp,
    encodeVrrp,
    expectedVrrpLength,
    internetChecksum,
    nextIpId,
    vrrpChecksum,
)
from tests.unit.vrrp_vectors import PASSWORD, VECTORS


def _ipv6Parts(packet: bytes) -> tuple[IPv6Address, IPv6Address, int, bytes]:
    """
    Split an IPv6 packet into source, destination, hop limit, payload.
    """
    return IPv6Address(packet[8:24]), IPv6Address(packet[24:40]), packet[7], packet[40:]


class VectorTests(SynchronousTestCase):
    """
    Every captured frame decodes to the README's fields, and the encoder
    reproduces it byte for byte given the same IP ID / AH sequence number.
    Test methods are generated per vector below.
    """

    def checkDecode(self, packetHex: str, fields: dict) -> None:
        packet = bytes.fromhex(packetHex)
        if fields["family"] == 4:
            decoded = decodeIPv4Packet(packet)
            ip, advert = decoded.ip, decoded.vrrp
            self.assertEqual(str(ip.source), fields["src"])
            self.assertEqual(str(ip.destination), fields["dst"])
            self.assertEqual(ip.ttl, fields["ttl"])
            self.assertEqual(ip.tos, fields["tos"])
            self.assertEqual(ip.identification, fields["ipId"])
            self.assertEqual(ip.protocol, fields["proto"])
            self.assertEqual(ip.totalLength, fields["totalLength"])
            self.assertEqual(ip.checksum, fields["ipChecksum"])
            self.assertEqual(ip.fragment, 0)
            self.assertEqual(len(decoded.vrrpBytes), fields["vrrpLength"])
            if "ahSpi" in fields:
                ah = decoded.ah
                self.assertIsNotNone(ah)
                self.assertEqual(IPv4Address(ah.spi), IPv4Address(fields["ahSpi"]))
                self.assertEqual(ah.sequence, fields["ahSeq"])
                self.assertEqual(ah.icv.hex(), fields["ahIcv"])
                self.assertEqual(ah.nextHeader, fields["ahNextHeader"])
                self.assertEqual(ah.payloadLength, fields["ahPayloadLen"])
                self.assertEqual(ahIcv(ip, ah, decoded.vrrpBytes, PASSWORD), ah.icv)
            else:
                self.assertIsNone(decoded.ah)
        else:
            src, dst, hlim, payload = _ipv6Parts(packet)
            self.assertEqual(src, ip_address(fields["src"]))
            self.assertEqual(dst, ip_address(fields["dst"]))
            self.assertEqual(hlim, fields["ttl"])
            self.assertEqual(len(payload), fields["vrrpLength"])
            advert = decodeVrrp(payload, 6)
        self.assertEqual(advert.version, fields["version"])
        self.assertEqual(advert.type, fields["type"])
        self.assertEqual(advert.vrid, fields["vrid"])
        self.assertEqual(advert.priority, fields["priority"])
        self.assertEqual(advert.naddr, fields["count"])
        self.assertEqual([str(a) for a in advert.addresses], fields["addresses"])
        self.assertEqual(advert.checksum, fields["checksum"])
        if advert.version == 2:
            self.assertEqual(advert.authType, fields["authType"])
            self.assertEqual(advert.advertIntSeconds, fields["advertIntSeconds"])
            self.assertEqual(advert.authData.hex(), fields["authData"])
            self.assertEqual(advert.advertInterval, float(fields["advertIntSeconds"]))
        else:
            self.assertEqual(advert.maxAdvertIntCs, fields["maxAdvertIntCs"])
            self.assertEqual(advert.rsvd, fields["rsvd"])
            self.assertEqual(advert.advertInterval, fields["maxAdvertIntCs"] / 100)

    def checkEncode(self, packetHex: str, fields: dict) -> None:
        packet = bytes.fromhex(packetHex)
        addresses = tuple(ip_address(a) for a in fields["addresses"])
        if fields["version"] == 2:
            advert = VrrpAdvert(
                version=2,
                vrid=fields["vrid"],
                priority=fields["priority"],
                addresses=addresses,
                authType=fields["authType"],
                advertIntSeconds=fields["advertIntSeconds"],
            )
        else:
            advert = VrrpAdvert(
                version=3,
                vrid=fields["vrid"],
                priority=fields["priority"],
                addresses=addresses,
                maxAdvertIntCs=fields["maxAdvertIntCs"],
            )
        if fields["family"] == 4:
            built = buildIPv4Advert(
                advert,
                fields["src"],
                identification=fields["ipId"],
                password=PASSWORD,
                ahSequence=fields.get("ahSeq", 1),
            )
            self.assertEqual(built.hex(), packet.hex())
        else:
            src, dst, _, payload = _ipv6Parts(packet)
            self.assertEqual(dst, VRRP_MCAST_V6)
            built = encodeVrrp(advert, 6, source=src, destination=dst)
            self.assertEqual(built.hex(), payload.hex())
            # What an IPv6 sender hands the kernel (IPV6_CHECKSUM fills it in).
            unsummed = encodeVrrp(advert, 6, computeChecksum=False)
            self.assertEqual(unsummed[:6] + unsummed[8:], payload[:6] + payload[8:])
            self.assertEqual(unsummed[6:8], b"\x00\x00")

    def checkChecksum(self, packetHex: str, fields: dict) -> None:
        packet = bytes.fromhex(packetHex)
        if fields["family"] == 4:
            decoded = decodeIPv4Packet(packet)
            message, src, dst = decoded.vrrpBytes, decoded.ip.source, decoded.ip.destination
            self.assertEqual(internetChecksum(packet[:20]), 0)
        else:
            src, dst, _, message = _ipv6Parts(packet)
        self.assertEqual(
            vrrpChecksum(message, fields["version"], fields["family"], src, dst),
            fields["checksum"],
        )


def _addVectorTests() -> None:
    for name, index, packetHex, fields in VECTORS:
        slug = f"{name.replace('-', '_')}_{index}"
        for kind in ("Decode", "Encode", "Checksum"):

            def test(self, packetHex=packetHex, fields=fields, kind=kind) -> None:
                getattr(self, f"check{kind}")(packetHex, fields)

            test.__doc__ = f"{kind}: keepalived frame {name} #{index}."
            test.__name__ = f"test_{kind.lower()}_{slug}"
            setattr(VectorTests, test.__name__, test)


_addVectorTests()


class ChecksumTests(SynchronousTestCase):
    """
    Internet checksum and the VRRPv3 checksum variants.
    """

    def test_rfc1071Example(self) -> None:
        """
        The RFC 1071 worked example sums to 0xddf2, so the checksum is its
        complement; odd lengths are zero padded.
        """
        data = bytes.fromhex("0001f203f4f5f6f7")
        self.assertEqual(internetChecksum(data), ~0xDDF2 & 0xFFFF)
        self.assertEqual(internetChecksum(b"\x01"), internetChecksum(b"\x01\x00"))

    def test_v3WithoutPseudoHeader(self) -> None:
        """
        C{v3_checksum_as_v2} omits the pseudo-header: the README's "checksum
        if pseudo-header were omitted" value for vrrpv3-ipv4 frame 1.
        """
        packet = bytes.fromhex(VECTORS[7][2])
        self.assertEqual(VECTORS[7][0], "vrrpv3-ipv4")
        decoded = decodeIPv4Packet(packet)
        self.assertEqual(
            vrrpChecksum(decoded.vrrpBytes, 3, 4, v3ChecksumAsV2=True), 0x7602
        )
        built = buildIPv4Advert(decoded.vrrp, "192.0.2.11", v3ChecksumAsV2=True)
        self.assertEqual(decodeIPv4Packet(built).vrrp.checksum, 0x7602)

    def test_v3NeedsAddresses(self) -> None:
        """
        A VRRPv3 pseudo-header checksum cannot be computed without the
        addresses.
        """
        advert = VrrpAdvert(version=3, vrid=1, priority=100, maxAdvertIntCs=100)
        self.assertRaises(PacketError, encodeVrrp, advert, 4)

    def test_oldUnicastChecksum(self) -> None:
        """
        C{checksumDestination} puts another address (the multicast group,
        as old keepalived did for unicast) in the v3 pseudo-header.
        """
        advert = VrrpAdvert(version=3, vrid=1, priority=100, maxAdvertIntCs=100,
                            addresses=(IPv4Address("192.0.2.100"),))
        normal = decodeIPv4Packet(buildIPv4Advert(advert, "192.0.2.11", "192.0.2.12"))
        old = decodeIPv4Packet(
            buildIPv4Advert(advert, "192.0.2.11", "192.0.2.12", checksumDestination=VRRP_MCAST_V4)
        )
        self.assertEqual(
            old.vrrp.checksum,
            vrrpChecksum(old.vrrpBytes, 3, 4, IPv4Address("192.0.2.11"), VRRP_MCAST_V4),
        )
        self.assertNotEqual(normal.vrrp.checksum, old.vrrp.checksum)


class AuthTests(SynchronousTestCase):
    """
    PASS and keepalived's AH.
    """

    def test_authKeyPadsAndTruncates(self) -> None:
        """
        The key is the password NUL padded or truncated to 8 bytes.
        """
        self.assertEqual(authKey("s3cr3t"), b"s3cr3t\x00\x00")
        self.assertEqual(authKey(b"averylongpassword"), b"averylon")
        self.assertEqual(authKey(""), b"\x00" * 8)

    def test_passwordReplacesAuthData(self) -> None:
        """
        For PASS, C{password} is written into the auth data.
        """
        advert = VrrpAdvert(version=2, vrid=51, priority=150, authType=AuthType.PASS,
                            advertIntSeconds=1, addresses=(IPv4Address("192.0.2.100"),))
        built = buildIPv4Advert(advert, "192.0.2.11", password="averylongpassword")
        self.assertEqual(built[-8:], b"averylon")

    def _ahPacket(self, **kw) -> bytes:
        advert = VrrpAdvert(version=2, vrid=51, priority=150, authType=AuthType.AH,
                            advertIntSeconds=1, addresses=(IPv4Address("192.0.2.100"),))
        return buildIPv4Advert(advert, "192.0.2.11", password=PASSWORD, **kw)

    def test_ahLayout(self) -> None:
        """
        AH packets use protocol 51, SPI = source, the given sequence and an
        all-zero VRRP auth field.
        """
        decoded = decodeIPv4Packet(self._ahPacket(ahSequence=7))
        self.assertEqual(decoded.ip.protocol, 51)
        self.assertEqual(decoded.ah.spi, int(IPv4Address("192.0.2.11")))
        self.assertEqual(decoded.ah.sequence, 7)
        self.assertEqual(decoded.vrrp.authData, b"\x00" * 8)
        self.assertEqual(decoded.ip.totalLength, 20 + 24 + 20)

    def test_ahIcvCoversTtlOnlyForMulticast(self) -> None:
        """
        The multicast ICV covers the TTL; for unicast peers the TTL is
        zeroed in the ICV input (so C{unicast_ttl} hops don't break it).
        """
        a = decodeIPv4Packet(self._ahPacket(ttl=255))
        b = decodeIPv4Packet(self._ahPacket(ttl=64))
        self.assertNotEqual(a.ah.icv, b.ah.icv)
        c = decodeIPv4Packet(self._ahPacket(ttl=255, destination="192.0.2.12"))
        d = decodeIPv4Packet(self._ahPacket(ttl=64, destination="192.0.2.12"))
        self.assertEqual(c.ah.icv, d.ah.icv)
        self.assertEqual(ahIcv(d.ip, d.ah, d.vrrpBytes, PASSWORD, unicast=True), d.ah.icv)

    def test_ahIcvDependsOnKey(self) -> None:
        """
        A different password gives a different ICV.
        """
        decoded = decodeIPv4Packet(self._ahPacket())
        self.assertNotEqual(ahIcv(decoded.ip, decoded.ah, decoded.vrrpBytes, b"other"),
                            decoded.ah.icv)

    def test_ahHeaderRoundTrip(self) -> None:
        """
        L{AHHeader} encodes and decodes its 24 bytes.
        """
        ah = AHHeader(spi=0xC000020B, sequence=5, icv=bytes(range(12)))
        self.assertEqual(AHHeader.decode(ah.encode()), ah)
        self.assertEqual(ah.encode(zeroIcv=True)[12:], b"\x00" * 12)


class IPv4HeaderTests(SynchronousTestCase):
    """
    The header keepalived builds.
    """

    def test_unicastTtlAndDestination(self) -> None:
        """
        Unicast packets carry the peer as destination, the configured TTL,
        TOS 0xc0, no DF and a valid header checksum.
        """
        advert = VrrpAdvert(version=3, vrid=9, priority=100, maxAdvertIntCs=100,
                            addresses=(IPv4Address("192.0.2.100"),))
        built = buildIPv4Advert(advert, "192.0.2.11", "192.0.2.12", identification=300, ttl=64)
        ip = IPv4Header.decode(built)
        self.assertEqual((ip.destination, ip.ttl, ip.tos, ip.fragment, ip.identification),
                         (IPv4Address("192.0.2.12"), 64, 0xC0, 0, 300))
        self.assertEqual(internetChecksum(built[:20]), 0)

    def test_nextIpIdSkipsZero(self) -> None:
        """
        The IP ID counts 1..65535 and wraps to 1, never 0.
        """
        self.assertEqual(nextIpId(0), 1)
        self.assertEqual(nextIpId(1), 2)
        self.assertEqual(nextIpId(65535), 1)

    def test_options(self) -> None:
        """
        Headers with options decode with their IHL.
        """
        base = IPv4Header(IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18"),
                          options=b"\x01\x01\x01\x00")
        raw = base.encode(8)
        decoded = IPv4Header.decode(raw + b"\x00" * 8)
        self.assertEqual(decoded.headerLength, 24)
        self.assertEqual(decoded.options, b"\x01\x01\x01\x00")


class DecodeErrorTests(SynchronousTestCase):
    """
    Short or inconsistent input raises L{PacketError} and nothing else.
    """

    def test_shortInputs(self) -> None:
        """
        Every prefix of a valid packet either decodes or raises
        L{PacketError}.
        """
        for _, _, packetHex, fields in VECTORS:
            packet = bytes.fromhex(packetHex)
            for n in range(len(packet)):
                try:
                    if fields["family"] == 4:
                        decodeIPv4Packet(packet[:n])
                    else:
                        decodeVrrp(packet[40:40 + n], 6)
                except PacketError:
                    pass

    def test_truncatedAddresses(self) -> None:
        """
        An address count beyond the data is an error.
        """
        self.assertRaises(PacketError, decodeVrrp, b"\x21\x33\x96\x05\x01\x01\x00\x00", 4)
        self.assertRaises(PacketError, decodeVrrp, b"\x21\x33", 4)
        self.assertRaises(PacketError, IPv4Header.decode, b"\x44" + b"\x00" * 19)

    def test_mixedFamilies(self) -> None:
        """
        An IPv6 address in an IPv4 advert is refused.
        """
        advert = VrrpAdvert(version=2, vrid=1, priority=1, addresses=(IPv6Address("::1"),))
        self.assertRaises(PacketError, encodeVrrp, advert, 4)


class RoundTripTests(SynchronousTestCase):
    """
    Encode/decode round trips for shapes not in the captures.
    """

    def test_v2Ipv6HasNoAuthData(self) -> None:
        """
        VRRPv2 over IPv6 carries no auth data.
        """
        advert = VrrpAdvert(version=2, vrid=3, priority=200, advertIntSeconds=2,
                            addresses=(IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")))
        raw = encodeVrrp(advert, 6)
        self.assertEqual(len(raw), expectedVrrpLength(2, 2, 6))
        self.assertEqual(len(raw), 8 + 32)
        back = decodeVrrp(raw, 6)
        self.assertEqual(back.addresses, advert.addresses)
        self.assertEqual(back.advertIntSeconds, 2)

    def test_v3ReservedAndInterval(self) -> None:
        """
        The VRRPv3 interval keeps its 12 bits and the reserved nibble.
        """
        advert = VrrpAdvert(version=3, vrid=3, priority=200, maxAdvertIntCs=4095, rsvd=0xA)
        raw = encodeVrrp(advert, 4, source=IPv4Address("192.0.2.1"), destination=VRRP_MCAST_V4)
        self.assertEqual(struct.unpack("!H", raw[4:6])[0], 0xAFFF)
        back = decodeVrrp(raw, 4)
        self.assertEqual((back.maxAdvertIntCs, back.rsvd), (4095, 0xA))
        self.assertEqual(back.naddr, 0)


class CountByteTests(SynchronousTestCase):
    """
    The address count never wraps.
    """

    def test_countNeverWraps(self) -> None:
        """
        256 or more addresses are refused instead of going out as a count
        of 256 - 256 = 0 (300 went out as 44); 255 is fine.
        """
        addresses = tuple(IPv4Address(0xC6336400 + i) for i in range(300))
        for n in (256, 300):
            advert = VrrpAdvert(version=3, vrid=1, priority=100, addresses=addresses[:n],
                                maxAdvertIntCs=100)
            self.assertRaises(PacketError, encodeVrrp, advert, 4, source=IPv4Address("192.0.2.1"),
                              destination=VRRP_MCAST_V4)
        advert = VrrpAdvert(version=2, vrid=1, priority=100, addresses=addresses[:255],
                            advertIntSeconds=1)
        message = encodeVrrp(advert, 4)
        self.assertEqual((message[3], len(message)), (255, 8 + 255 * 4 + 8))
        self.assertEqual(decodeVrrp(message, 4).addresses, addresses[:255])
