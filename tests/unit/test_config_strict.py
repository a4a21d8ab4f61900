"""
vrrp_strict's configuration rules and the firewall keywords, with keepalived
2.2.7's messages (each checked against its C{-t}; see
docs/keepalived-compat.md, "vrrp_strict and no_accept").
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.config.errors import Severity


def parse(globals_: str, body: str, vips: str = "192.0.2.100/24"):
    text = (f"global_defs {{\n{globals_}\n}}\nvrrp_instance VI_1 {{\n interface eth0\n"
            f" virtual_router_id 51\n{body}\n virtual_ipaddress {{\n {vips}\n }}\n}}\n")
    return parseText(text)


def errors(result) -> list[str]:
    return [d.message for d in result.diagnostics if d.severity >= Severity.ERROR]


class StrictTests(SynchronousTestCase):
    def test_forcedSettings(self) -> None:
        """
        Every explicit setting strict mode forbids is reset with keepalived's
        message, in keepalived's order.
        """
        r = parse(" vrrp_strict", " priority 100\n garp_lower_prio_repeat 2\n garp_lower_prio_delay 3\n"
                  " lower_prio_no_advert false\n higher_prio_send_advert\n down_timer_adverts 5\n"
                  " preempt_delay 10")
        self.assertEqual(errors(r), [
            "(VI_1) preempt_delay is incompatible with strict mode - resetting",
            "(VI_1) down_timer_adverts is incompatible with strict mode - resetting",
            "(VI_1) Strict mode requires no repeat garps. resetting",
            "(VI_1) Strict mode requires no repeat garp delay. resetting",
            "(VI_1) Strict mode requires no lower priority advert. resetting",
            "(VI_1) strict mode requires higher_prio_send_advert to be clear. resetting",
        ])
        vi = r.model.vrrpInstances[0]
        self.assertEqual(
            (vi.preemptDelay, vi.downTimerAdverts, vi.garp.lowerPrioRepeat, vi.garp.lowerPrioDelay,
             vi.lowerPrioNoAdvert, vi.higherPrioSendAdvert, vi.accept),
            (0.0, 3, 0, 0.0, True, False, False))

    def test_garpLowerPrioNotInherited(self) -> None:
        """
        Strict mode: no lower-priority GARPs, whatever global_defs says.
        """
        r = parse(" vrrp_strict\n vrrp_garp_lower_prio_repeat 4", " priority 100")
        self.assertEqual(errors(r), [])
        self.assertEqual(r.model.vrrpInstances[0].garp.lowerPrioRepeat, 0)

    def test_stateMatchesOwner(self) -> None:
        """
        State MASTER must match priority 255, both ways.
        """
        for body, state in ((" state MASTER\n priority 100", "BACKUP"),
                            (" state BACKUP\n priority 255", "MASTER")):
            r = parse(" vrrp_strict", body)
            self.assertEqual(errors(r), ["(VI_1) State MASTER must match being address owner"])
            self.assertEqual(r.model.vrrpInstances[0].state, state)

    def test_accept(self) -> None:
        """
        Strict mode defaults to no_accept (the owner accepts); accept with
        VRRPv2 is reset, with VRRPv3 kept.
        """
        r = parse(" vrrp_strict", " priority 100\n accept")
        self.assertEqual(errors(r), ["(VI_1) warning - accept mode for VRRP version 2 does not"
                                     " comply with RFC3768 - resetting"])
        self.assertFalse(r.model.vrrpInstances[0].accept)
        r = parse(" vrrp_strict\n vrrp_version 3", " priority 100\n accept")
        self.assertEqual((errors(r), r.model.vrrpInstances[0].accept), ([], True))
        self.assertTrue(parse(" vrrp_strict", " priority 255").model.vrrpInstances[0].accept)
        self.assertTrue(parse("", " priority 100").model.vrrpInstances[0].accept)
        self.assertFalse(parse("", " priority 100\n no_accept").model.vrrpInstances[0].accept)
        self.assertFalse(parse("", " priority 100\n strict_mode").model.vrrpInstances[0].accept)

    def test_authenticationIgnored(self) -> None:
        r = parse(" vrrp_strict", " priority 100\n authentication {\n auth_type PASS\n auth_pass x\n }")
        self.assertEqual(errors(r), ["(VI_1) Strict mode does not support authentication. Ignoring."])
        self.assertIsNone(r.model.vrrpInstances[0].authentication)

    def test_ipv6(self) -> None:
        r = parse(" vrrp_strict", " priority 100\n version 2", vips="fe80::1/64")
        self.assertEqual(errors(r), ["(VI_1) cannot use IPv6 with VRRP version 2; setting version 3"])
        self.assertEqual(r.model.vrrpInstances[0].version, 3)
        r = parse(" vrrp_strict", " priority 100", vips="2001:db8::1/64\n fe80::1/64")
        self.assertEqual(errors(r), ["(VI_1) the first IPv6 VIP address must be link local"])

    def test_unicastKept(self) -> None:
        """
        keepalived 2.2.7 runs strict instances with unicast peers.
        """
        r = parse(" vrrp_strict", " priority 100\n unicast_peer {\n 192.0.2.12\n }")
        self.assertEqual(errors(r), [])
        self.assertEqual(len(r.model.vrrpInstances[0].unicastPeers), 1)

    def test_noVip(self) -> None:
        r = parseText("global_defs {\n vrrp_strict\n}\nvrrp_instance VI_1 {\n interface eth0\n"
                      " virtual_router_id 51\n priority 100\n}\n")
        self.assertEqual(len(errors(r)), 1)
        self.assertIn("No VIP specified; at least one is required", errors(r)[0])


class FirewallKeywordTests(SynchronousTestCase):
    def globals_(self, text: str):
        r = parse(text, " priority 100")
        return r, r.model.globalDefs

    def test_nftables(self) -> None:
        r, g = self.globals_(" nftables_priority 5\n nftables\n nftables other\n nftables_counters\n"
                             " nftables_ifindex")
        self.assertEqual(errors(r), ["nftables already specified - ignoring"])
        # keepalived: `nftables` resets a priority given before it
        self.assertEqual((g.nftables, g.nftablesPriority, g.nftablesCounters, g.nftablesIfindex),
                         ("keepalived", -1, True, True))
        r, g = self.globals_(" nftables kt\n nftables_priority -5")
        self.assertEqual((errors(r), g.nftables, g.nftablesPriority), ([], "kt", -5))

    def test_badValues(self) -> None:
        r, g = self.globals_(" nftables " + "a" * 256 + "\n nftables_priority x")
        self.assertEqual(errors(r), ["nftables table name too long - ignoring",
                                     "invalid nftables chain priority 'x'"])
        self.assertIsNone(g.nftables)
        r, g = self.globals_(" nftables " + "a" * 255)
        self.assertEqual(errors(r), [])

    def test_iptables(self) -> None:
        """
        vrrp_iptables: keepalived built with nftables only (Debian's)
        reports it and uses nftables; vrrp_ipsets is refused.
        """
        r, g = self.globals_(" vrrp_iptables\n vrrp_ipsets a b")
        self.assertEqual(errors(r), [
            "iptables not supported, using nftables instead. Please replace 'vrrp_iptables and"
            " 'vrrp_ipsets' with 'nftables' config option"])
        self.assertEqual([d.message for d in r.diagnostics if d.severity == Severity.WARNING], [
            "'vrrp_ipsets' is not implemented by keepalive_tx (ignored: the firewall is nftables,"
            " use 'nftables')"])
        self.assertEqual(g.nftables, "keepalived")
