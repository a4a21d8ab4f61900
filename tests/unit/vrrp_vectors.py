"""
Golden VRRP frames captured from Debian keepalived 2.2.7 on a two-host lab
network, with their decoded fields.  Shared by the VRRP codec, validation and transport
tests.

Each entry: C{(name, frameIndex, ipPacketHex, fields)}.  C{ipPacketHex} is
the Ethernet frame minus its 14-byte header (the whole IPv4 or IPv6
packet).  Lab: VRID 51, password C{s3cr3t}, h1 = 192.0.2.11 /
fe80::c0ff:fe00:20b priority 150, h2 = 192.0.2.12 / fe80::c0ff:fe00:20c.
"""

from __future__ import annotations

PASSWORD = b"s3cr3t"

VECTORS: list[tuple[str, int, str, dict]] = [
    (
        'vrrpv2-pass',
        1,
        '45c0002800010000ff701887c000020be00000122133960101017b4bc00002647333637233740000',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 1, 'proto': 112, 'totalLength': 40, 'ipChecksum': 6279, 'version': 2, 'type': 1, 'vrid': 51, 'priority': 150, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 31563, 'vrrpLength': 20, 'authType': 1, 'advertIntSeconds': 1, 'authData': '7333637233740000'},
    ),
    (
        'vrrpv2-pass',
        2,
        '45c0002800010000ff701886c000020ce0000012213364010101ad4bc00002647333637233740000',
        {'family': 4, 'src': '192.0.2.12', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 1, 'proto': 112, 'totalLength': 40, 'ipChecksum': 6278, 'version': 2, 'type': 1, 'vrid': 51, 'priority': 100, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 44363, 'vrrpLength': 20, 'authType': 1, 'advertIntSeconds': 1, 'authData': '7333637233740000'},
    ),
    (
        'vrrpv2-pass-prio0',
        1,
        '45c0002800040000ff701884c000020be0000012213300010101114cc00002647333637233740000',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 4, 'proto': 112, 'totalLength': 40, 'ipChecksum': 6276, 'version': 2, 'type': 1, 'vrid': 51, 'priority': 0, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 4428, 'vrrpLength': 20, 'authType': 1, 'advertIntSeconds': 1, 'authData': '7333637233740000'},
    ),
    (
        'vrrpv2-ah',
        1,
        '45c0004000010000ff3318acc000020be000001270040000c000020b00000001282a32d1d1cb22c225c2c06f2133960102018465c00002640000000000000000',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 1, 'proto': 51, 'totalLength': 64, 'ipChecksum': 6316, 'version': 2, 'type': 1, 'vrid': 51, 'priority': 150, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 33893, 'vrrpLength': 20, 'authType': 2, 'advertIntSeconds': 1, 'authData': '0000000000000000', 'ahSpi': '192.0.2.11', 'ahSeq': 1, 'ahIcv': '282a32d1d1cb22c225c2c06f', 'ahNextHeader': 112, 'ahPayloadLen': 4},
    ),
    (
        'vrrpv2-ah',
        2,
        '45c0004000020000ff3318abc000020be000001270040000c000020b00000002c8b5a42cd29c8a65273b3ba42133960102018465c00002640000000000000000',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 2, 'proto': 51, 'totalLength': 64, 'ipChecksum': 6315, 'version': 2, 'type': 1, 'vrid': 51, 'priority': 150, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 33893, 'vrrpLength': 20, 'authType': 2, 'advertIntSeconds': 1, 'authData': '0000000000000000', 'ahSpi': '192.0.2.11', 'ahSeq': 2, 'ahIcv': 'c8b5a42cd29c8a65273b3ba4', 'ahNextHeader': 112, 'ahPayloadLen': 4},
    ),
    (
        'vrrpv2-ah',
        3,
        '45c0004000010000ff3318abc000020ce000001270040000c000020c000000054fa9effa3086c8ebae974865213364010201b665c00002640000000000000000',
        {'family': 4, 'src': '192.0.2.12', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 1, 'proto': 51, 'totalLength': 64, 'ipChecksum': 6315, 'version': 2, 'type': 1, 'vrid': 51, 'priority': 100, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 46693, 'vrrpLength': 20, 'authType': 2, 'advertIntSeconds': 1, 'authData': '0000000000000000', 'ahSpi': '192.0.2.12', 'ahSeq': 5, 'ahIcv': '4fa9effa3086c8ebae974865', 'ahNextHeader': 112, 'ahPayloadLen': 4},
    ),
    (
        'vrrpv2-ah-prio0',
        1,
        '45c0004000040000ff3318a9c000020be000001270040000c000020b000000047560f4935a0e9779863838232133000102011a66c00002640000000000000000',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 4, 'proto': 51, 'totalLength': 64, 'ipChecksum': 6313, 'version': 2, 'type': 1, 'vrid': 51, 'priority': 0, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 6758, 'vrrpLength': 20, 'authType': 2, 'advertIntSeconds': 1, 'authData': '0000000000000000', 'ahSpi': '192.0.2.11', 'ahSeq': 4, 'ahIcv': '7560f4935a0e977986383823', 'ahNextHeader': 112, 'ahPayloadLen': 4},
    ),
    (
        'vrrpv3-ipv4',
        1,
        '45c0002000010000ff70188fc000020be0000012313396010064d367c0000264',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 1, 'proto': 112, 'totalLength': 32, 'ipChecksum': 6287, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 150, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 54119, 'vrrpLength': 12, 'maxAdvertIntCs': 100, 'rsvd': 0},
    ),
    (
        'vrrpv3-ipv4',
        2,
        '45c0002000010000ff70188ec000020ce00000123133640100640567c0000264',
        {'family': 4, 'src': '192.0.2.12', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 1, 'proto': 112, 'totalLength': 32, 'ipChecksum': 6286, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 100, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 1383, 'vrrpLength': 12, 'maxAdvertIntCs': 100, 'rsvd': 0},
    ),
    (
        'vrrpv3-ipv4',
        3,
        '45c0002000010000ff70188fc000020be000001231339601000ad3c1c0000264',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 1, 'proto': 112, 'totalLength': 32, 'ipChecksum': 6287, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 150, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 54209, 'vrrpLength': 12, 'maxAdvertIntCs': 10, 'rsvd': 0},
    ),
    (
        'vrrpv3-ipv4-prio0',
        1,
        '45c0002000040000ff70188cc000020be00000123133000100646968c0000264',
        {'family': 4, 'src': '192.0.2.11', 'dst': '224.0.0.18', 'ttl': 255, 'tos': 192, 'ipId': 4, 'proto': 112, 'totalLength': 32, 'ipChecksum': 6284, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 0, 'count': 1, 'addresses': ['192.0.2.100'], 'checksum': 26984, 'vrrpLength': 12, 'maxAdvertIntCs': 100, 'rsvd': 0},
    ),
    (
        'vrrpv3-ipv6',
        1,
        '6c0440db001870fffe800000000000000000c0fffe00020bff0200000000000000000000000000123133960100644a8420010db8000000000000000000000100',
        {'family': 6, 'src': 'fe80::c0ff:fe00:20b', 'dst': 'ff02::12', 'ttl': 255, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 150, 'count': 1, 'addresses': ['2001:db8::100'], 'checksum': 19076, 'vrrpLength': 24, 'maxAdvertIntCs': 100, 'rsvd': 0},
    ),
    (
        'vrrpv3-ipv6',
        2,
        '6c04c722001870fffe800000000000000000c0fffe00020cff0200000000000000000000000000123133640100647c8320010db8000000000000000000000100',
        {'family': 6, 'src': 'fe80::c0ff:fe00:20c', 'dst': 'ff02::12', 'ttl': 255, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 100, 'count': 1, 'addresses': ['2001:db8::100'], 'checksum': 31875, 'vrrpLength': 24, 'maxAdvertIntCs': 100, 'rsvd': 0},
    ),
    (
        'vrrpv3-ipv6',
        3,
        '6c0440db001870fffe800000000000000000c0fffe00020bff02000000000000000000000000001231339601000a4ade20010db8000000000000000000000100',
        {'family': 6, 'src': 'fe80::c0ff:fe00:20b', 'dst': 'ff02::12', 'ttl': 255, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 150, 'count': 1, 'addresses': ['2001:db8::100'], 'checksum': 19166, 'vrrpLength': 24, 'maxAdvertIntCs': 10, 'rsvd': 0},
    ),
    (
        'vrrpv3-ipv6-prio0',
        1,
        '6c0440db001870fffe800000000000000000c0fffe00020bff020000000000000000000000000012313300010064e08420010db8000000000000000000000100',
        {'family': 6, 'src': 'fe80::c0ff:fe00:20b', 'dst': 'ff02::12', 'ttl': 255, 'version': 3, 'type': 1, 'vrid': 51, 'priority': 0, 'count': 1, 'addresses': ['2001:db8::100'], 'checksum': 57476, 'vrrpLength': 24, 'maxAdvertIntCs': 100, 'rsvd': 0},
    ),
]
