# -*- test-case-name: tests.unit.test_vrrp_packet -*-
"""
VRRP on the wire: a pure codec for VRRPv2/VRRPv3 adverts over IPv4 and IPv6.

Nothing here does I/O.  The encoder reproduces what keepalived 2.2.7 puts on
the wire byte for byte (the frames captured from it are the golden vectors
of C{tests/unit/vrrp_vectors.py}):

  - VRRPv2 checksum: RFC 1071 sum over the VRRP message only;
  - VRRPv3 checksum: over an IPv4 or IPv6 pseudo-header plus the message
    (unless C{v3ChecksumAsV2});
  - PASS authentication: 8 bytes of password, NUL padded / truncated;
  - keepalived's IPsec-AH flavour: AH header (next header 112, payload
    length 4, SPI = IPv4 source, sequence number, HMAC-MD5-96 ICV over the IP
    header with its mutable fields zeroed, the AH header with a zero ICV and
    the VRRP message, keyed with the 8-byte padded password);
  - the IPv4 header keepalived builds itself (IP_HDRINCL): TOS 0xc0, TTL 255
    (or C{unicast_ttl}), caller-chosen IP ID, no DF, protocol 112 or 51.

Malformed input raises L{PacketError} (a L{ValueError}); nothing else escapes
the decoders.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field, replace
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address, ip_address

__all__ = [
    "ADVERTISEMENT",
    "AH_HEADER_LEN",
    "AH_ICV_LEN",
    "AHHeader",
    "AuthType",
    "IPPROTO_AH",
    "IPPROTO_VRRP",
    "IPv4AdvertTemplate",
    "IPv4Header",
    "IPv4Packet",
    "PacketError",
    "ReceivedMeta",
    "VRRP_AUTH_LEN",
    "VRRP_HEADER_LEN",
    "VRRP_MAX_ADDRESSES",
    "VRRP_MCAST_V4",
    "VRRP_MCAST_V6",
    "VRRP_TTL",
    "VrrpAdvert",
    "ahIcv",
    "authKey",
    "buildIPv4Advert",
    "decodeIPv4Packet",
    "decodeVrrp",
    "encodeVrrp",
    "expectedVrrpLength",
    "internetChecksum",
    "ipv4PseudoHeader",
    "ipv6PseudoHeader",
    "nextIpId",
    "parseAddress",
    "vrrpChecksum",
]

IPAddress = IPv4Address | IPv6Address

IPPROTO_VRRP = 112
IPPROTO_AH = 51
VRRP_TTL = 255
VRRP_MCAST_V4 = IPv4Address("224.0.0.18")
VRRP_MCAST_V6 = IPv6Address("ff02::12")
ADVERTISEMENT = 1
VRRP_HEADER_LEN = 8
VRRP_AUTH_LEN = 8
AH_HEADER_LEN = 24
AH_ICV_LEN = 12
AH_PAYLOAD_LEN_FIELD = 4  # (24 / 4) - 2
IPV4_HEADER_LEN = 20
TOS_INTERNETWORK_CONTROL = 0xC0
#: the address count is one byte
VRRP_MAX_ADDRESSES = 255


class PacketError(ValueError):
    """
    The bytes are not a (complete enough) VRRP packet.
    """


class AuthType(IntEnum):
    """
    VRRPv2 authentication types (byte 4 of a v2 header).
    """

    NONE = 0
    PASS = 1
    AH = 2


@dataclass(frozen=True)
class ReceivedMeta:
    """
    What the raw socket told us about a received datagram.

    @ivar family: 4 or 6.
    @ivar source: the sender (IPv4: also in the IP header; IPv6: from
        C{recvmsg}'s address).
    @ivar destination: the destination address (IPv4: from the IP header;
        IPv6: from the C{IPV6_PKTINFO} control message), or C{None}.
    @ivar ttl: IPv4 TTL or IPv6 hop limit (C{IPV6_HOPLIMIT}), or C{None}
        when unknown.
    @ivar ifindex: the receiving interface index (C{IP_PKTINFO} /
        C{IPV6_PKTINFO}), or C{None}.
    @ivar truncated: the kernel reported C{MSG_TRUNC}.
    """

    family: int
    source: IPAddress | None = None
    destination: IPAddress | None = None
    ttl: int | None = None
    ifindex: int | None = None
    truncated: bool = False


def internetChecksum(data: bytes, initial: int = 0) -> int:
    """
    RFC 1071 Internet checksum.

    @param data: the bytes to sum (an odd length is padded with a zero byte).
    @param initial: a partial (unfolded) sum to start from.
    @return: the 16-bit one's complement of the one's complement sum; 0 when
        C{data} already contains a correct checksum.
    """
    if len(data) % 2:
        data = data + b"\x00"
    total = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4PseudoHeader(source: IPv4Address, destination: IPv4Address, length: int) -> bytes:
    """
    The RFC 5798 IPv4 pseudo-header (src, dst, 0, 112, VRRP length).
    """
    return source.packed + destination.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)


def ipv6PseudoHeader(source: IPv6Address, destination: IPv6Address, length: int) -> bytes:
    """
    The RFC 8200 IPv6 upper-layer pseudo-header (src, dst, length, 0, 112).
    """
    return source.packed + destination.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)


def authKey(password: str | bytes) -> bytes:
    """
    keepalived's 8-byte auth key: the password NUL padded / truncated to 8.

    Used both as the PASS auth data and as the HMAC-MD5 key of AH.
    """
    if isinstance(password, str):
        password = password.encode("utf-8")
    return password[:VRRP_AUTH_LEN].ljust(VRRP_AUTH_LEN, b"\x00")


def nextIpId(current: int) -> int:
    """
    The IP ID after C{current}: keepalived counts 1, 2, ... 65535, 1 (never
    0, which would let the kernel overwrite it and break the AH ICV).
    """
    return current % 0xFFFF + 1


@dataclass(frozen=True)
class VrrpAdvert:
    """
    One VRRP message (header, addresses, v2 auth data).

    @ivar version: 2 or 3.
    @ivar vrid: virtual router id (0-255 on the wire; 1-255 valid).
    @ivar priority: 0-255.
    @ivar addresses: the virtual addresses carried.
    @ivar type: the type nibble (1 = ADVERTISEMENT).
    @ivar authType: VRRPv2 auth type (0 for VRRPv3).
    @ivar advertIntSeconds: VRRPv2 advert interval in whole seconds (0 for v3).
    @ivar maxAdvertIntCs: VRRPv3 max advert interval in centiseconds, the low
        12 bits of bytes 4-5 (0 for v2).
    @ivar rsvd: VRRPv3 reserved 4 bits.
    @ivar checksum: the checksum as decoded / as encoded last (0 = compute).
    @ivar authData: VRRPv2/IPv4 auth data (8 bytes on the wire; zeros for
        NONE and AH, the padded password for PASS).
    @ivar count: the address count byte if it differs from
        C{len(addresses)} (only for decoded garbage); C{None} otherwise.
    """

    version: int
    vrid: int
    priority: int
    addresses: tuple[IPAddress, ...] = ()
    type: int = ADVERTISEMENT
    authType: int = AuthType.NONE
    advertIntSeconds: int = 0
    maxAdvertIntCs: int = 0
    rsvd: int = 0
    checksum: int = 0
    authData: bytes = field(default=b"\x00" * VRRP_AUTH_LEN)
    count: int | None = None

    @property
    def naddr(self) -> int:
        """
        The address count byte.
        """
        return len(self.addresses) if self.count is None else self.count

    @property
    def advertInterval(self) -> float:
        """
        The advert interval in seconds, whatever the version.
        """
        if self.version == 2:
            return float(self.advertIntSeconds)
        return self.maxAdvertIntCs / 100.0


def expectedVrrpLength(version: int, naddr: int, family: int) -> int:
    """
    The VRRP message length keepalived expects for C{naddr} addresses
    (IPv4 VRRPv2 messages carry 8 bytes of auth data; IPv6 ones never do).
    """
    length = VRRP_HEADER_LEN + naddr * (4 if family == 4 else 16)
    if family == 4 and version == 2:
        length += VRRP_AUTH_LEN
    return length


def _familyOf(addresses: tuple[IPAddress, ...], family: int | None) -> int:
    if family is not None:
        return family
    if addresses:
        return addresses[0].version
    return 4


def vrrpChecksum(
    message: bytes,
    version: int,
    family: int,
    source: IPAddress | None = None,
    destination: IPAddress | None = None,
    v3ChecksumAsV2: bool = False,
) -> int:
    """
    Compute the checksum field for C{message} (whose checksum bytes are
    ignored).

    VRRPv2: over the message only.  VRRPv3: over the IPv4/IPv6
    pseudo-header (C{source}, C{destination}) and the message, unless
    C{v3ChecksumAsV2} (IPv4 only).
    """
    body = message[:6] + b"\x00\x00" + message[8:]
    initial = 0
    if version == 3 and not (v3ChecksumAsV2 and family == 4):
        if source is None or destination is None:
            raise PacketError("VRRPv3 checksum needs source and destination")
        cls = IPv4Address if family == 4 else IPv6Address
        src = source if type(source) is cls else cls(source)
        dst = destination if type(destination) is cls else cls(destination)
        if family == 4:
            pseudo = ipv4PseudoHeader(src, dst, len(message))
        else:
            pseudo = ipv6PseudoHeader(src, dst, len(message))
        initial = sum(struct.unpack(f"!{len(pseudo) // 2}H", pseudo))
    return internetChecksum(body, initial)


def encodeVrrp(
    advert: VrrpAdvert,
    family: int | None = None,
    *,
    source: IPAddress | None = None,
    destination: IPAddress | None = None,
    v3ChecksumAsV2: bool = False,
    computeChecksum: bool = True,
) -> bytes:
    """
    Encode C{advert} as a VRRP message.

    @param family: 4 or 6 (default: from the first address, else 4).
    @param source: IP source, needed for a VRRPv3 checksum.
    @param destination: IP destination, needed for a VRRPv3 checksum.
    @param computeChecksum: when false, C{advert.checksum} is used as is
        (IPv6 senders leave it to the kernel via C{IPV6_CHECKSUM}).
    @return: the message bytes.
    @raise PacketError: more than 255 addresses (or count): the count byte
        would wrap and every receiver would reject the advert.
    """
    if advert.naddr > VRRP_MAX_ADDRESSES or len(advert.addresses) > VRRP_MAX_ADDRESSES:
        raise PacketError(f"{max(advert.naddr, len(advert.addresses))} addresses do not fit "
                          f"in one advert (at most {VRRP_MAX_ADDRESSES})")
    family = _familyOf(advert.addresses, family)
    if advert.version == 2:
        word = struct.pack("!BB", advert.authType & 0xFF, advert.advertIntSeconds & 0xFF)
    else:
        word = struct.pack("!H", ((advert.rsvd & 0xF) << 12) | (advert.maxAdvertIntCs & 0xFFF))
    header = struct.pack(
        "!BBBB",
        ((advert.version & 0xF) << 4) | (advert.type & 0xF),
        advert.vrid & 0xFF,
        advert.priority & 0xFF,
        advert.naddr,
    )
    addrs = b""
    for a in advert.addresses:
        if a.version != family:
            raise PacketError(f"address {a} is not IPv{family}")
        addrs += a.packed
    auth = b""
    if family == 4 and advert.version == 2:
        auth = advert.authData[:VRRP_AUTH_LEN].ljust(VRRP_AUTH_LEN, b"\x00")
    message = header + word + struct.pack("!H", advert.checksum & 0xFFFF) + addrs + auth
    if computeChecksum:
        csum = vrrpChecksum(message, advert.version, family, source, destination, v3ChecksumAsV2)
        message = message[:6] + struct.pack("!H", csum) + message[8:]
    return message


def decodeVrrp(data: bytes, family: int) -> VrrpAdvert:
    """
    Decode a VRRP message.

    The header and the C{naddr} addresses must be present; VRRPv2/IPv4 auth
    data is taken from the 8 bytes after the addresses (zero filled if
    missing).  Trailing bytes are ignored: length policy is the
    validator's job.

    @raise PacketError: shorter than the header plus its addresses.
    """
    if len(data) < VRRP_HEADER_LEN:
        raise PacketError(f"VRRP message too short ({len(data)} bytes)")
    versType, vrid, priority, naddr, b4, b5, checksum = struct.unpack("!BBBBBBH", data[:8])
    version, ptype = versType >> 4, versType & 0xF
    addrLen = 4 if family == 4 else 16
    end = VRRP_HEADER_LEN + naddr * addrLen
    if len(data) < end:
        raise PacketError(f"VRRP message with {naddr} addresses truncated ({len(data)} bytes)")
    cls = IPv4Address if family == 4 else IPv6Address
    addresses = tuple(
        cls(data[VRRP_HEADER_LEN + i * addrLen : VRRP_HEADER_LEN + (i + 1) * addrLen])
        for i in range(naddr)
    )
    kw: dict = {}
    if version == 2:
        kw.update(authType=b4, advertIntSeconds=b5)
        if family == 4:
            kw["authData"] = data[end : end + VRRP_AUTH_LEN].ljust(VRRP_AUTH_LEN, b"\x00")
    else:
        word = (b4 << 8) | b5
        kw.update(maxAdvertIntCs=word & 0xFFF, rsvd=word >> 12)
    return VrrpAdvert(
        version=version,
        vrid=vrid,
        priority=priority,
        addresses=addresses,
        type=ptype,
        checksum=checksum,
        **kw,
    )


@dataclass(frozen=True)
class IPv4Header:
    """
    An IPv4 header as keepalived builds and reads it.

    @ivar headerLength: IHL in bytes (20 without options).
    @ivar fragment: the flags/fragment-offset 16-bit field.
    @ivar totalLength: as on the wire (0 = compute when encoding).
    @ivar checksum: as on the wire (ignored when encoding; recomputed).
    @ivar options: raw option bytes (length a multiple of 4).
    """

    source: IPv4Address
    destination: IPv4Address
    protocol: int = IPPROTO_VRRP
    ttl: int = VRRP_TTL
    tos: int = TOS_INTERNETWORK_CONTROL
    identification: int = 0
    fragment: int = 0
    totalLength: int = 0
    checksum: int = 0
    version: int = 4
    headerLength: int = IPV4_HEADER_LEN
    options: bytes = b""

    def encode(self, payloadLength: int, *, zeroMutable: bool = False, zeroTtl: bool = False) -> bytes:
        """
        Encode this header for a payload of C{payloadLength} bytes, with a
        correct header checksum.

        @param zeroMutable: zero TOS, flags/fragment and the checksum (the
            AH ICV input).
        @param zeroTtl: zero the TTL as well (AH ICV input for unicast).
        """
        ihl = (IPV4_HEADER_LEN + len(self.options)) // 4
        total = self.totalLength or ihl * 4 + payloadLength
        tos = 0 if zeroMutable else self.tos
        frag = 0 if zeroMutable else self.fragment
        ttl = 0 if zeroTtl else self.ttl
        raw = struct.pack(
            "!BBHHHBBH4s4s",
            (4 << 4) | ihl,
            tos & 0xFF,
            total & 0xFFFF,
            self.identification & 0xFFFF,
            frag & 0xFFFF,
            ttl & 0xFF,
            self.protocol & 0xFF,
            0,
            self.source.packed,
            self.destination.packed,
        ) + self.options
        if zeroMutable:
            return raw
        csum = internetChecksum(raw)
        return raw[:10] + struct.pack("!H", csum) + raw[12:]

    @classmethod
    def decode(cls, data: bytes) -> IPv4Header:
        """
        @raise PacketError: too short for its IHL, or IHL < 5.
        """
        if len(data) < IPV4_HEADER_LEN:
            raise PacketError(f"IPv4 packet too short ({len(data)} bytes)")
        (vihl, tos, total, ident, frag, ttl, proto, csum, src, dst) = struct.unpack(
            "!BBHHHBBH4s4s", data[:IPV4_HEADER_LEN]
        )
        hlen = (vihl & 0xF) * 4
        if hlen < IPV4_HEADER_LEN or len(data) < hlen:
            raise PacketError(f"bad IPv4 header length {hlen}")
        return cls(
            source=IPv4Address(src),
            destination=IPv4Address(dst),
            protocol=proto,
            ttl=ttl,
            tos=tos,
            identification=ident,
            fragment=frag,
            totalLength=total,
            checksum=csum,
            version=vihl >> 4,
            headerLength=hlen,
            options=data[IPV4_HEADER_LEN:hlen],
        )


@dataclass(frozen=True)
class AHHeader:
    """
    keepalived's IPsec AH header (RFC 2402 layout, 24 bytes).
    """

    spi: int
    sequence: int
    icv: bytes = b"\x00" * AH_ICV_LEN
    nextHeader: int = IPPROTO_VRRP
    payloadLength: int = AH_PAYLOAD_LEN_FIELD
    reserved: int = 0

    def encode(self, zeroIcv: bool = False) -> bytes:
        icv = b"\x00" * AH_ICV_LEN if zeroIcv else self.icv[:AH_ICV_LEN].ljust(AH_ICV_LEN, b"\x00")
        return (
            struct.pack(
                "!BBHII",
                self.nextHeader & 0xFF,
                self.payloadLength & 0xFF,
                self.reserved & 0xFFFF,
                self.spi & 0xFFFFFFFF,
                self.sequence & 0xFFFFFFFF,
            )
            + icv
        )

    @classmethod
    def decode(cls, data: bytes) -> AHHeader:
        if len(data) < AH_HEADER_LEN:
            raise PacketError(f"AH header too short ({len(data)} bytes)")
        nh, plen, rsvd, spi, seq = struct.unpack("!BBHII", data[:12])
        return cls(
            spi=spi,
            sequence=seq,
            icv=bytes(data[12:AH_HEADER_LEN]),
            nextHeader=nh,
            payloadLength=plen,
            reserved=rsvd,
        )


def ahIcv(ip: IPv4Header, ah: AHHeader, vrrpMessage: bytes, key: bytes, unicast: bool = False) -> bytes:
    """
    keepalived's AH ICV: the first 12 bytes of HMAC-MD5(key, IPv4 header
    with TOS, flags/fragment and checksum zeroed (and TTL when C{unicast})
    || AH header with a zero ICV || VRRP message).

    The header's C{totalLength} is used as is when set (so a received
    header verifies as received).
    """
    payload = AH_HEADER_LEN + len(vrrpMessage)
    data = ip.encode(payload, zeroMutable=True, zeroTtl=unicast) + ah.encode(zeroIcv=True) + vrrpMessage
    return hmac.new(authKey(key), data, hashlib.md5).digest()[:AH_ICV_LEN]


def buildIPv4Advert(
    advert: VrrpAdvert,
    source: IPv4Address | str,
    destination: IPv4Address | str = VRRP_MCAST_V4,
    *,
    identification: int = 1,
    ttl: int = VRRP_TTL,
    password: str | bytes = b"",
    ahSequence: int = 1,
    v3ChecksumAsV2: bool = False,
    unicast: bool | None = None,
    checksumDestination: IPv4Address | str | None = None,
) -> bytes:
    """
    Build the full IPv4 packet keepalived sends for C{advert} (to be sent
    on an C{IP_HDRINCL} raw socket).

    For VRRPv2 C{advert.authType == AuthType.AH} the packet gets protocol
    51 and keepalived's AH header (SPI = C{source}, C{ahSequence}); the VRRP
    auth data is all zero.  For PASS, C{password} (padded to 8 bytes)
    replaces C{advert.authData} when given.

    @param identification: the IP ID (keepalived: 1, 2, ... per instance,
        never 0; see L{nextIpId}).
    @param ttl: 255, or the configured C{unicast_ttl} for unicast peers.
    @param unicast: whether C{destination} is a unicast peer (AH then zeroes
        the TTL in its ICV input); default: C{not destination.is_multicast}.
    @param checksumDestination: the VRRPv3 pseudo-header destination, if not
        C{destination} (keepalived's C{old_unicast_checksum} uses the
        multicast group).
    """
    src = source if type(source) is IPv4Address else IPv4Address(source)
    dst = destination if type(destination) is IPv4Address else IPv4Address(destination)
    if unicast is None:
        unicast = not dst.is_multicast
    useAh = advert.version == 2 and advert.authType == AuthType.AH
    if advert.version == 2:
        if useAh:
            advert = replace(advert, authData=b"\x00" * VRRP_AUTH_LEN)
        elif advert.authType == AuthType.PASS and password:
            advert = replace(advert, authData=authKey(password))
    csumDst = IPv4Address(checksumDestination) if checksumDestination is not None else dst
    message = encodeVrrp(
        advert, 4, source=src, destination=csumDst, v3ChecksumAsV2=v3ChecksumAsV2
    )
    ip = IPv4Header(
        source=src,
        destination=dst,
        protocol=IPPROTO_AH if useAh else IPPROTO_VRRP,
        ttl=ttl,
        identification=identification,
    )
    if not useAh:
        return ip.encode(len(message)) + message
    ah = AHHeader(spi=int(src), sequence=ahSequence)
    ah = replace(ah, icv=ahIcv(ip, ah, message, authKey(password), unicast=unicast))
    return ip.encode(AH_HEADER_LEN + len(message)) + ah.encode() + message


class IPv4AdvertTemplate:
    """
    One IPv4 advert precomputed for sending again and again.

    Between two sends of the same advert to the same destination only the IP
    ID and the IP header checksum change (and, with AH, the sequence number
    and the ICV): L{packet} patches those into bytes built once by
    L{buildIPv4Advert}, and returns exactly what L{buildIPv4Advert} would
    for the same arguments.  The IP header checksum is completed from a
    precomputed partial sum; the AH ICV (an HMAC over the whole packet) is
    still computed per packet.

    The constructor takes L{buildIPv4Advert}'s arguments except
    C{identification} and C{ahSequence}.
    """

    __slots__ = ("ah", "_headerSum", "_head", "_mid", "_rest", "_tail", "_key",
                 "_icvHead", "_icvMid", "_icvTail")

    def __init__(
        self,
        advert: VrrpAdvert,
        source: IPv4Address | str,
        destination: IPv4Address | str = VRRP_MCAST_V4,
        *,
        ttl: int = VRRP_TTL,
        password: str | bytes = b"",
        v3ChecksumAsV2: bool = False,
        unicast: bool | None = None,
        checksumDestination: IPv4Address | str | None = None,
    ) -> None:
        dst = destination if type(destination) is IPv4Address else IPv4Address(destination)
        if unicast is None:
            unicast = not dst.is_multicast
        reference = buildIPv4Advert(
            advert, source, dst, identification=0, ttl=ttl, password=password, ahSequence=0,
            v3ChecksumAsV2=v3ChecksumAsV2, unicast=unicast,
            checksumDestination=checksumDestination)
        header = reference[:IPV4_HEADER_LEN]
        self.ah = reference[9] == IPPROTO_AH
        # Sum of the header words with the ID and the checksum zero.
        self._headerSum = sum(struct.unpack("!10H", header[:10] + b"\x00\x00" + header[12:]))
        self._head = header[:4]
        self._mid = header[6:10]
        self._rest = reference[12:]
        self._tail = b""
        self._key = b""
        self._icvHead = self._icvMid = self._icvTail = b""
        if self.ah:
            ahEnd = IPV4_HEADER_LEN + AH_HEADER_LEN
            message = reference[ahEnd:]
            # Sent: header[12:20] + AH(spi...) + sequence + ICV + message.
            self._rest = header[12:] + reference[IPV4_HEADER_LEN:IPV4_HEADER_LEN + 8]
            self._tail = message
            self._key = authKey(password)
            # ICV input: the header with TOS, fragment, checksum (and TTL
            # when unicast) zero, the AH header with a zero ICV, the message.
            self._icvHead = header[:1] + b"\x00" + header[2:4]
            self._icvMid = (b"\x00\x00" + (b"\x00" if unicast else header[8:9]) + header[9:10]
                            + b"\x00\x00" + header[12:] + reference[IPV4_HEADER_LEN:IPV4_HEADER_LEN + 8])
            self._icvTail = b"\x00" * AH_ICV_LEN + message

    def packet(self, identification: int, ahSequence: int = 1) -> bytes:
        """
        The packet with IP ID C{identification} (and AH sequence number
        C{ahSequence}, for an AH advert).
        """
        ident = (identification & 0xFFFF).to_bytes(2, "big")
        total = self._headerSum + (identification & 0xFFFF)
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        checksum = (~total & 0xFFFF).to_bytes(2, "big")
        if not self.ah:
            return self._head + ident + self._mid + checksum + self._rest
        sequence = (ahSequence & 0xFFFFFFFF).to_bytes(4, "big")
        icv = hmac.digest(
            self._key, self._icvHead + ident + self._icvMid + sequence + self._icvTail, "md5",
        )[:AH_ICV_LEN]
        return self._head + ident + self._mid + checksum + self._rest + sequence + icv + self._tail


@dataclass(frozen=True)
class IPv4Packet:
    """
    A decoded IPv4 VRRP packet as a raw socket delivers it.

    @ivar vrrpBytes: the VRRP message bytes (from after the IP header / AH
        to the end of the datagram).
    """

    ip: IPv4Header
    ah: AHHeader | None
    vrrp: VrrpAdvert
    vrrpBytes: bytes


def decodeIPv4Packet(data: bytes) -> IPv4Packet:
    """
    Decode an IPv4 packet (IP header, optional AH, VRRP).

    @raise PacketError: not enough bytes for the headers present.
    """
    ip = IPv4Header.decode(data)
    offset = ip.headerLength
    ah = None
    if ip.protocol == IPPROTO_AH:
        ah = AHHeader.decode(data[offset:])
        offset += AH_HEADER_LEN
    vrrpBytes = bytes(data[offset:])
    return IPv4Packet(ip=ip, ah=ah, vrrp=decodeVrrp(vrrpBytes, 4), vrrpBytes=vrrpBytes)


def parseAddress(value: str | IPAddress) -> IPAddress:
    """
    An C{ipaddress} object for C{value} (scope ids are dropped).
    """
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    return ip_address(value.split("%", 1)[0])
