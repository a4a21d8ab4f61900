"""
Tests for L{keepalive_tx.config.values_lvs}: the pure argument converters of
the LVS keywords.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config.model_lvs import AddressRange, ForwardingMethod, FwmarkEntry, HexPattern
from keepalive_tx.config.values_lvs import (
    BadValue,
    parseAddress,
    parseDigest,
    parseGranularity,
    parseHexPattern,
    parseLvsMethod,
    parseServerAddress,
    parseStatusCodes,
    parseVsgEntry,
    parseVsHeader,
)


class AddressTests(SynchronousTestCase):
    def test_ipv4FastPath(self) -> None:
        self.assertEqual(parseAddress("192.0.2.1"), IPv4Address("192.0.2.1"))

    def test_ipv6(self) -> None:
        self.assertEqual(parseAddress("2001:db8::1"), IPv6Address("2001:db8::1"))

    def test_invalid(self) -> None:
        for text in ("1.2.3", "256.1.1.1", "01.2.3.4", "host.example", "", "1.2.3.4\x00"):
            with self.assertRaises(BadValue, msg=text) as cm:
                parseAddress(text)
            self.assertIn("numeric IPv4 or IPv6", str(cm.exception))

    def test_serverAddress(self) -> None:
        self.assertEqual(parseServerAddress(["192.0.2.5", "80"], "real server"), (ip_address("192.0.2.5"), 80))
        self.assertEqual(parseServerAddress(["192.0.2.5"], "real server"), (ip_address("192.0.2.5"), None))
        self.assertRaises(BadValue, parseServerAddress, ["192.0.2.5", "65536"], "real server")
        self.assertRaises(BadValue, parseServerAddress, ["192.0.2.5", "80", "x"], "real server")
        self.assertRaises(BadValue, parseServerAddress, [], "real server")


class VsHeaderTests(SynchronousTestCase):
    def test_addressPort(self) -> None:
        h = parseVsHeader(["192.0.2.1", "80"])
        self.assertEqual((h.address, h.port, h.family, h.fwmark, h.group), (ip_address("192.0.2.1"), 80, 4, None, None))

    def test_addressNoPort(self) -> None:
        h = parseVsHeader(["2001:db8::1"])
        self.assertEqual((h.port, h.family), (None, 6))

    def test_fwmark(self) -> None:
        self.assertEqual(parseVsHeader(["fwmark", "1"]).fwmark, 1)
        h = parseVsHeader(["fwmark", "7", "inet6"])
        self.assertEqual((h.fwmark, h.family), (7, 6))

    def test_group(self) -> None:
        self.assertEqual(parseVsHeader(["group", "VSG_1"]).group, "VSG_1")

    def test_bad(self) -> None:
        for args in ([], ["fwmark"], ["fwmark", "0"], ["fwmark", "x"], ["fwmark", "1", "inet5"], ["group"],
                     ["group", "a", "b"], ["10.0.0.1", "80", "90"], ["10.0.0.300", "80"], ["10.0.0.1", "-1"]):
            self.assertRaises(BadValue, parseVsHeader, args)


class VsgEntryTests(SynchronousTestCase):
    def test_single(self) -> None:
        e = parseVsgEntry(("10.0.0.1", "8080"))
        self.assertEqual(e, AddressRange(ip_address("10.0.0.1"), ip_address("10.0.0.1"), 8080))

    def test_lastOctetRange(self) -> None:
        e = parseVsgEntry(("192.168.200.3-10", "80"))
        self.assertEqual((str(e.first), str(e.last), e.port), ("192.168.200.3", "192.168.200.10", 80))
        self.assertEqual(len(list(e.addresses())), 8)

    def test_fullRange(self) -> None:
        e = parseVsgEntry(("10.0.2.1-10.0.3.5",))
        self.assertEqual((str(e.last), e.port), ("10.0.3.5", None))

    def test_cidr(self) -> None:
        e = parseVsgEntry(("10.0.1.0/30", "80"))
        self.assertEqual((str(e.first), str(e.last)), ("10.0.1.0", "10.0.1.3"))

    def test_ipv6HexRange(self) -> None:
        e = parseVsgEntry(("ae00::2-9", "80"))
        self.assertEqual((str(e.first), str(e.last)), ("ae00::2", "ae00::9"))
        e = parseVsgEntry(("2001:db8::1-ff",))
        self.assertEqual(str(e.last), "2001:db8::ff")

    def test_fwmark(self) -> None:
        self.assertEqual(parseVsgEntry(("fwmark", "1")), FwmarkEntry(1, None))
        self.assertEqual(parseVsgEntry(("fwmark", "2", "inet6")), FwmarkEntry(2, 6))

    def test_bad(self) -> None:
        for tokens in (("bogus",), ("10.0.0.5-3",), ("10.0.0.1-256",), ("10.0.0.1-::5",), ("10.0.0.1/33",),
                       ("10.0.0.1", "99999"), ("fwmark",), ("fwmark", "1", "x"), ("10.0.0.1", "80", "x")):
            with self.assertRaises(BadValue, msg=tokens):
                parseVsgEntry(tokens)

    def test_badMessageListsForms(self) -> None:
        with self.assertRaises(BadValue) as cm:
            parseVsgEntry(("bogus",))
        self.assertIn("'fwmark N [inet|inet6]'", str(cm.exception))


class LvsMethodTests(SynchronousTestCase):
    def test_simple(self) -> None:
        self.assertEqual(parseLvsMethod(["NAT"]), ForwardingMethod("NAT"))
        self.assertEqual(parseLvsMethod(["DR"]).kind, "DR")
        self.assertEqual(parseLvsMethod(["TUN"]), ForwardingMethod("TUN", "ipip"))

    def test_tunnelOptions(self) -> None:
        self.assertEqual(
            parseLvsMethod(["TUN", "type", "gue", "port", "5555", "remcsum"]),
            ForwardingMethod("TUN", "gue", 5555, "remcsum"),
        )
        self.assertEqual(parseLvsMethod(["TUN", "type", "gre", "csum"]), ForwardingMethod("TUN", "gre", None, "csum"))

    def test_bad(self) -> None:
        for args in ([], ["nat"], ["FOO"], ["NAT", "type", "gre"], ["TUN", "type", "gue"],
                     ["TUN", "type", "ipip", "port", "5"], ["TUN", "type", "vxlan"], ["TUN", "nocsum"],
                     ["TUN", "type", "gre", "remcsum"], ["TUN", "bogus"]):
            self.assertRaises(BadValue, parseLvsMethod, args)

    def test_gueMessage(self) -> None:
        with self.assertRaises(BadValue) as cm:
            parseLvsMethod(["TUN", "type", "gue"])
        self.assertIn("gue tunnels require port", str(cm.exception))


class StatusCodeTests(SynchronousTestCase):
    def test_sample(self) -> None:
        good, bad = parseStatusCodes(["200-299", "400-499", "503", "505"])
        self.assertEqual(good, [(200, 299), (400, 499), (503, 503), (505, 505)])
        self.assertEqual(bad, [])

    def test_bad(self) -> None:
        good, bad = parseStatusCodes(["200-199", "600", "abc", "99", "100-600", "200"])
        self.assertEqual(good, [(200, 200)])
        self.assertEqual(bad, ["200-199", "600", "abc", "99", "100-600"])


class HexPatternTests(SynchronousTestCase):
    def test_pairs(self) -> None:
        self.assertEqual(parseHexPattern("0a0B ff", False).value, b"\x0a\x0b\xff")

    def test_loneNibble(self) -> None:
        # keepalived pairs characters within a group; a lone trailing one is a byte.
        self.assertEqual(parseHexPattern("123", False).value, b"\x12\x03")
        self.assertEqual(parseHexPattern("1 2", False).value, b"\x01\x02")

    def test_wildcards(self) -> None:
        p = parseHexPattern("12XX3x", True)
        self.assertEqual(p, HexPattern(b"\x12\x00\x30", b"\x00\xff\x0f"))
        self.assertTrue(p.matches(b"\x12\xab\x3f\x99"))
        self.assertFalse(p.matches(b"\x13\xab\x3f"))
        self.assertFalse(p.matches(b"\x12\xab"))

    def test_wildcardNotInPayload(self) -> None:
        self.assertRaises(BadValue, parseHexPattern, "12XX", False)

    def test_bad(self) -> None:
        self.assertRaises(BadValue, parseHexPattern, "12zz", False)
        self.assertRaises(BadValue, parseHexPattern, "  ", True)


class GranularityTests(SynchronousTestCase):
    def test_ipv4Netmask(self) -> None:
        self.assertEqual(parseGranularity("255.255.255.0", None), (24, 4))
        self.assertEqual(parseGranularity("255.255.255.255", 4), (32, 4))

    def test_ipv6Prefix(self) -> None:
        self.assertEqual(parseGranularity("64", None), (64, 6))
        self.assertEqual(parseGranularity("128", 6), (128, 6))

    def test_bad(self) -> None:
        for text, family in (("255.255.0.255", None), ("0.0.0.0", 4), ("300.0.0.0", 4), ("0", 6), ("129", 6), ("x", 6)):
            self.assertRaises(BadValue, parseGranularity, text, family)


class DigestTests(SynchronousTestCase):
    def test_valid(self) -> None:
        self.assertEqual(parseDigest("FF20AD2481F97B1754EF3E12ECD3A9CC"), "ff20ad2481f97b1754ef3e12ecd3a9cc")

    def test_length(self) -> None:
        with self.assertRaises(BadValue) as cm:
            parseDigest("1234")
        self.assertIn("should be 32 rather than 4", str(cm.exception))

    def test_notHex(self) -> None:
        self.assertRaises(BadValue, parseDigest, "g" * 32)
