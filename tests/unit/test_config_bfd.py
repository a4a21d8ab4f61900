"""
C{bfd_instance} and C{BFD_CHECK} as keepalived 2.2.7 reads them: defaults,
units, ranges, the end-of-block checks, which side sees an instance.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText


def parse(text: str):
    result = parseText(text, filename="t.conf")
    return result.model, [str(d) for d in result.diagnostics]


def bfd(body: str, name: str = "b1") -> str:
    return f"bfd_instance {name} {{\n{body}\n}}\n"


class BfdInstanceTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """
        keepalived's defaults, intervals in microseconds.
        """
        model, diags = parse(bfd("neighbor_ip 192.0.2.1"))
        self.assertEqual(diags, [])
        (b,) = model.bfdInstances
        self.assertEqual((b.name, b.neighborIp, b.sourceIp), ("b1", ip_address("192.0.2.1"), None))
        self.assertEqual((b.minRx, b.minTx, b.idleTx, b.multiplier), (10_000, 10_000, 1_000_000, 5))
        self.assertEqual((b.passive, b.ttl, b.maxHops, b.weight, b.weightReverse),
                         (False, None, 0, 0, False))
        self.assertTrue(b.forVrrp and b.forChecker)

    def test_everything(self) -> None:
        model, diags = parse(bfd(
            "neighbour_ip 2001:db8::1\n source_ip 2001:db8::2\n min_rx 50\n min_tx 1.5\n"
            " idle_tx 2000.25\n multiplier 3\n passive\n hoplimit 200\n max_hops 2\n"
            " weight -30 reverse\n vrrp"))
        self.assertEqual(diags, [])
        (b,) = model.bfdInstances
        self.assertEqual((b.minRx, b.minTx, b.idleTx), (50_000, 1500, 2_000_250))
        self.assertEqual((b.multiplier, b.passive, b.ttl, b.maxHops), (3, True, 200, 2))
        self.assertEqual((b.weight, b.weightReverse), (-30, True))
        self.assertTrue(b.forVrrp)
        self.assertFalse(b.forChecker)

    def test_ranges(self) -> None:
        """
        min_rx/min_tx in [1, 4294967] ms with up to 3 decimals, idle_tx from
        1000, multiplier 1-255, ttl 1-255, max_hops -1..255: anything else is
        reported and the default stays.
        """
        model, diags = parse(bfd(
            "neighbor_ip 192.0.2.1\n min_rx 0.5\n min_tx 4294968\n idle_tx 999\n"
            " multiplier 0\n ttl 0\n max_hops -2\n min_rx 1.0001\n weight 254"))
        (b,) = model.bfdInstances
        self.assertEqual((b.minRx, b.minTx, b.idleTx, b.multiplier, b.ttl, b.maxHops, b.weight),
                         (10_000, 10_000, 1_000_000, 5, None, 0, 0))
        self.assertEqual([d.split(":")[1] for d in diags], ["3", "4", "5", "6", "7", "8", "9",
                                                            "10"])
        self.assertIn("min_rx value 0.5 is not valid (must be in range [1-4294967] ms", diags[0])
        model, diags = parse(bfd("neighbor_ip 192.0.2.1\n max_hops -1\n min_tx 4294967"))
        self.assertEqual(diags, [])
        self.assertEqual((model.bfdInstances[0].maxHops, model.bfdInstances[0].minTx),
                         (-1, 4_294_967_000))

    def test_neighborRequired(self) -> None:
        model, diags = parse(bfd("source_ip 192.0.2.1") + bfd("neighbour_ip bad", "b2"))
        self.assertEqual(model.bfdInstances, ())
        self.assertIn("t.conf:1: BFD instance b1 has no neighbor address set, disabling instance",
                      diags)
        self.assertIn("t.conf:4: BFD instance b2 has no neighbour address set, disabling instance",
                      diags)

    def test_familyMismatch(self) -> None:
        model, diags = parse(bfd("neighbor_ip 2001:db8::1\n source_ip 192.0.2.1"))
        self.assertEqual(model.bfdInstances, ())
        self.assertIn("are not of the same family, disabling instance", diags[0])

    def test_duplicateNeighbor(self) -> None:
        """
        One instance per neighbour (and source): later ones are ignored.
        """
        model, diags = parse(
            bfd("neighbor_ip 192.0.2.1") + bfd("neighbor_ip 192.0.2.1\n source_ip 192.0.2.9", "b2")
            + bfd("neighbor_ip 192.0.2.2\n source_ip 192.0.2.9", "b3")
            + bfd("neighbor_ip 192.0.2.2\n source_ip 192.0.2.8", "b4")
            + bfd("neighbor_ip 192.0.2.3", "b1"))
        self.assertEqual([b.name for b in model.bfdInstances], ["b1", "b3", "b4"])
        self.assertTrue(any("BFD instance b2 has duplicate source/neighbor address "
                            "192.0.2.9/192.0.2.1, ignoring instance" in d for d in diags), diags)
        self.assertTrue(any("bfd_instance b1 is already defined" in d for d in diags), diags)

    def test_maxHopsAboveTtl(self) -> None:
        """
        max_hops above the TTL / hop limit (IPv6 default 64) is lowered.
        """
        model, diags = parse(bfd("neighbor_ip 2001:db8::1\n max_hops 100"))
        self.assertEqual(model.bfdInstances[0].maxHops, 64)
        self.assertIn("max_hops exceeds ttl/hoplimit - setting to ttl/hoplimit", diags[0])

    def test_nameTooLong(self) -> None:
        model, diags = parse(bfd("neighbor_ip 192.0.2.1", "b" * 32) + bfd("neighbor_ip 192.0.2.2",
                                                                           "c" * 31))
        self.assertEqual([b.name for b in model.bfdInstances], ["c" * 31])
        self.assertIn("name too long (maximum length is 31 characters) - ignoring", diags[0])

    def test_multihopUnknownIn227(self) -> None:
        """
        keepalived 2.2.7 does not know C{multihop} (a later version does):
        refused loudly.
        """
        _, diags = parse(bfd("neighbor_ip 192.0.2.1\n multihop"))
        self.assertEqual(diags, ["t.conf:3: Unknown keyword 'multihop'"])


class BfdCheckTests(SynchronousTestCase):
    VS = ("virtual_server 192.0.2.100 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"
          " real_server 192.0.2.5 80 {\n BFD_CHECK {\n name {name}\n }\n }\n}\n")

    def test_checker(self) -> None:
        model, diags = parse(bfd("neighbor_ip 192.0.2.5") + self.VS.replace("{name}", "b1"))
        self.assertEqual(diags, [])
        (chk,) = model.virtualServers[0].realServers[0].checkers
        self.assertEqual((chk.kind, chk.name), ("BFD_CHECK", "b1"))

    def test_definedLater(self) -> None:
        """
        keepalived's checker side only knows bfd_instances read so far: the
        checker is skipped.
        """
        model, diags = parse(self.VS.replace("{name}", "b1") + bfd("neighbor_ip 192.0.2.5"))
        self.assertEqual(model.virtualServers[0].realServers[0].checkers, ())
        self.assertIn("t.conf:7: BFD_CHECK - BFD b1 not configured - skipping checker", diags)

    def test_vrrpOnlyInstance(self) -> None:
        _, diags = parse(bfd("neighbor_ip 192.0.2.5\n vrrp") + self.VS.replace("{name}", "b1"))
        self.assertTrue(any("BFD b1 not configured" in d for d in diags), diags)
