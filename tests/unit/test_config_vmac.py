"""
The VMAC keywords (L{keepalive_tx.config.schema_vmac}): model values with
keepalived's defaults and its messages, as keepalived 2.2.7's C{-t} prints
them (checked side by side in L{tests.integration.test_vrrp_vmac_config}).
"""

from __future__ import annotations

import ipaddress

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.config.model import VirtualAddress
from keepalive_tx.config.schema_vmac import parseVmacMac, validIfname, vipText
from tests.fakes.vrrp import VI_TEMPLATE


def parse(body: str = "", vips: str = "        192.0.2.100/24\n", g: str = "", extra: str = ""):
    result = parseText(VI_TEMPLATE.format(body=body, vips=vips, g=g, extra=extra), "t.conf", "host")
    return result.model, [(d.location.line if d.location else None, d.message)
                          for d in result.diagnostics]


def instance(model, name: str = "VI_1"):
    return next(i for i in model.vrrpInstances if i.name == name)


class HelperTests(SynchronousTestCase):
    def test_macs(self) -> None:
        """
        Six octets of one or two hex digits, or five (trailing colon
        allowed): the VRID goes last; octets past six are ignored.
        """
        self.assertEqual(parseVmacMac("02:00:00:00:11:22"), (bytes.fromhex("020000001122"), False))
        self.assertEqual(parseVmacMac("2:0:0:0:a:B"), (bytes.fromhex("020000000a0b"), False))
        self.assertEqual(parseVmacMac("02:00:00:00:11"), (bytes.fromhex("020000001100"), True))
        self.assertEqual(parseVmacMac("02:00:00:00:11:"), (bytes.fromhex("020000001100"), True))
        self.assertEqual(parseVmacMac("02:00:00:11:22:33:44")[0], bytes.fromhex("020000112233"))
        for bad in ("02:00:00:11", "02:000:00:11:22:33", "02::00:00:11:22", "02:00:00:11:22::"):
            self.assertEqual(parseVmacMac(bad), (None, False), bad)

    def test_names(self) -> None:
        self.assertTrue(validIfname("vrrp.51"))
        for bad in ("", ".", "..", "a/b", "a:b", "a b", "abcdefghijklmnop"):
            self.assertFalse(validIfname(bad), bad)

    def test_vipText(self) -> None:
        a = VirtualAddress(address=ipaddress.ip_interface("192.0.2.1/24"))
        b = VirtualAddress(address=ipaddress.ip_interface("2001:db8::1/128"))
        self.assertEqual((vipText(a), vipText(b)), ("192.0.2.1/24", "2001:db8::1"))


class UseVmacTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """
        Without C{use_vmac} an instance has no VMAC; plain C{use_vmac} has
        no name, no MAC (RFC 5798's is used) and no problems.
        """
        model, problems = parse()
        self.assertIsNone(instance(model).vmac)
        model, problems = parse("    use_vmac\n")
        vmac = instance(model).vmac
        self.assertEqual(problems, [])
        self.assertEqual((vmac.name, vmac.mac, vmac.ipvlan, vmac.fault), (None, None, False, None))
        self.assertFalse(instance(model).vmacXmitBase)

    def test_nameAndMac(self) -> None:
        model, problems = parse("    use_vmac vrrp.77 02:00:00:00:11\n")
        vmac = instance(model).vmac
        self.assertEqual(problems, [])
        self.assertEqual((vmac.name, vmac.mac), ("vrrp.77", "02:00:00:00:11:33"))  # VRID 51

    def test_newerSyntax(self) -> None:
        """
        keepalived's newer words: C{name NAME}, C{group G},
        C{netlink_notify_msg}.
        """
        model, problems = parse("    use_vmac name v1 group 7 netlink_notify_msg\n")
        vmac = instance(model).vmac
        self.assertEqual(problems, [])
        self.assertEqual((vmac.name, vmac.group, vmac.netlinkNotifyMsg), ("v1", "7", True))

    def test_messages(self) -> None:
        """
        keepalived's messages for bad words.
        """
        cases = {
            "abcdefghijklmnop": "VMAC interface name 'abcdefghijklmnop' too long or invalid characters - ignoring",
            "a/b": "VMAC interface name 'a/b' too long or invalid characters - ignoring",
            "01:00:00:00:11:22": "VMAC MAC address is multicast 01:00:00:00:11:22 - ignoring",
            "00:00:5e:00:01:22": "VMAC MAC address not allowed to be RFC5798 address (00:00:5e:00:01:22) - ignoring",
            "00:00:5e:00:02": "VMAC MAC address not allowed to be RFC5798 address (00:00:5e:00:02) - ignoring",
            "02:00:zz:00:11:22": "VMAC invalid MAC address 02:00:zz:00:11:22",
            "02:00:00:11": "VMAC invalid MAC address 02:00:00:11 - ignored",
            "foo bar": "VMAC interface name already specified",
            "02:00:00:00:11 02:00:00:00:12": "VMAC interface address already specified",
        }
        for words, message in cases.items():
            model, problems = parse(f"    use_vmac {words}\n")
            self.assertEqual(problems, [(6, message)], words)
            self.assertIsNotNone(instance(model).vmac)
        model, problems = parse("    use_vmac 00:00:5e:00:03:22\n")
        self.assertEqual(problems, [])

    def test_nameTakenByEarlierInstance(self) -> None:
        other = ("vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n use_vmac foo\n"
                 " virtual_ipaddress {\n 192.0.2.101\n }\n}\n")
        model, problems = parse("    use_vmac foo\n", extra=other)
        self.assertEqual(problems, [(14, "(VI_2) VRRP instance VI_1 is already using foo - ignoring name")])
        self.assertIsNone(instance(model, "VI_2").vmac.name)

    def test_instanceRules(self) -> None:
        """
        keepalived's end-of-instance rules and their messages.
        """
        peers = "    unicast_peer {\n        192.0.2.12\n    }\n"
        model, problems = parse("    use_vmac\n" + peers)
        self.assertTrue(instance(model).vmacXmitBase)
        self.assertEqual(problems, [(3, "(VI_1) unicast with use_vmac requires vmac_xmit_base - setting")])
        model, problems = parse("    vmac_xmit_base\n")
        self.assertFalse(instance(model).vmacXmitBase)
        self.assertEqual(problems, [(3, "(VI_1) vmac_xmit_base is only valid with a vmac")])
        model, problems = parse("    use_vmac\n    promote_secondaries\n")
        self.assertFalse(instance(model).promoteSecondaries)
        self.assertIn((3, "(VI_1) promote_secondaries is automatically set for vmacs - ignoring"), problems)
        strict = "    vrrp_strict\n"
        model, problems = parse("    use_vmac 02:00:00:00:11\n    vmac_xmit_base\n", g=strict)
        self.assertIn((4, "(VI_1): cannot specify MAC address with strict mode - clearing"), problems)
        self.assertIn((4, "(VI_1) xmit_base is incompatible with strict mode - resetting"), problems)
        self.assertEqual((instance(model).vmac.mac, instance(model).vmacXmitBase), (None, False))

    def test_vipUseVmac(self) -> None:
        model, problems = parse("    use_vmac\n", vips="        192.0.2.100/24 use_vmac\n")
        self.assertEqual(problems, [(8, "(VI_1) use_vmac specified for VIP/eVIP 192.0.2.100/24 and vrrp instance")])
        self.assertFalse(instance(model).virtualIpaddresses[0].useVmac)
        model, problems = parse("", vips="        192.0.2.100/24 dev eth1 use_vmac\n")
        self.assertEqual(problems, [])
        self.assertTrue(instance(model).virtualIpaddresses[0].useVmac)
        model, problems = parse("    use_vmac_addr\n", vips="        192.0.2.100/24 dev eth1 use_vmac\n")
        self.assertEqual(problems, [(8, "(VI_1) use_vmac_addr specified and use_vmac specified for VIP/eVIP "
                                        "192.0.2.100/24")])
        self.assertTrue(instance(model).useVmacAddr)

    def test_prefixes(self) -> None:
        model, problems = parse("    use_vmac\n", g="    vmac_prefix abc\n    vmac_addr_prefix xyz\n")
        self.assertEqual((model.globalDefs.vmacPrefix, model.globalDefs.vmacAddrPrefix), ("abc", "xyz"))
        self.assertEqual(problems, [])
        model, problems = parse("", g="    vmac_prefix abcdefghijklmnopq\n    vmac_prefix def\n")
        self.assertEqual(model.globalDefs.vmacPrefix, "abcdefghijklmnopq")  # cut short when naming
        self.assertEqual(problems, [(3, "vmac prefix has already been specified - ignoring def")])
        model, problems = parse("", g="    vmac_addr_prefix a\n    vmac_addr_prefix b\n")
        self.assertEqual(problems, [(3, "vmac_addr prefix has already been specified - ignoring b")])
        model, _ = parse()
        self.assertEqual((model.globalDefs.vmacPrefix, model.globalDefs.vmacAddrPrefix), ("vrrp", None))


class UseIpvlanTests(SynchronousTestCase):
    def test_values(self) -> None:
        model, problems = parse("    use_ipvlan ipv1 192.0.2.50/24 private\n")
        vmac = instance(model).vmac
        self.assertEqual(problems, [])
        self.assertEqual((vmac.ipvlan, vmac.name, str(vmac.ipvlanAddress), vmac.ipvlanMode),
                         (True, "ipv1", "192.0.2.50/24", "private"))
        model, _ = parse("    use_ipvlan 192.0.2.50\n")
        self.assertEqual(str(instance(model).vmac.ipvlanAddress), "192.0.2.50/32")

    def test_messages(self) -> None:
        fault = (3, "(VI_1) IPv4 ipvlan requires a source ip address to be configured. setting "
                    "instance to fault state")
        cases = {
            "use_ipvlan": [fault],
            "use_ipvlan bridge vepa": [(6, "(VI_1) ipvlan type already specified - ignoring 'vepa'"), fault],
            "use_ipvlan 192.0.2.50 192.0.2.51": [
                (6, "(VI_1) ipvlan address already specified - ignoring '192.0.2.51'")],
            "use_ipvlan a b": [(6, "(VI_1) IPVLAN interface already specified - ignoring 'b'"), fault],
            "use_ipvlan abcdefghijklmnop": [
                (6, "(VI_1) IPVLAN interface name 'abcdefghijklmnop' too long - ignoring"), fault],
            "use_ipvlan 192.0.2.500": [fault],
            "use_ipvlan 192.0.2.50\n    use_ipvlan": [(7, "(VI_1) use_ipvlan already specified")],
            "use_ipvlan 192.0.2.50\n    vmac_xmit_base": [
                (3, "(VI_1) vmac_xmit_base is only valid with a vmac")],
        }
        for body, expected in cases.items():
            model, problems = parse(f"    {body}\n")
            self.assertEqual(problems, expected, body)
        model, _ = parse("    use_ipvlan\n")
        self.assertEqual(instance(model).vmac.fault, "IPv4 ipvlan without an address")

    def test_family(self) -> None:
        """
        An ipvlan address before the VIPs sets the instance's family (the
        VIPs of the other family are then dropped); after them, it must
        match.
        """
        model, problems = parse("    use_ipvlan 2001:db8::50/64\n")
        self.assertEqual(instance(model).family, 6)
        self.assertEqual(instance(model).virtualIpaddresses, ())
        model, problems = parse("    use_ipvlan 2001:db8::50/64\n", vips="        2001:db8::100/64\n")
        self.assertEqual((instance(model).family, problems), (6, []))
        text = VI_TEMPLATE.format(g="", body="", extra="", vips="        192.0.2.100/24\n").replace(
            "    }\n}", "    }\n    use_ipvlan 2001:db8::50/64\n}")
        result = parseText(text, "t.conf", "host")
        self.assertEqual(instance(result.model).family, 4)
        self.assertIn("(VI_1) ipvlan address[2001:db8::50/64] MUST match vrrp instance family !!! Skipping...",
                      [d.message for d in result.diagnostics])
        self.assertIsNone(instance(result.model).vmac.ipvlanAddress)
        self.assertEqual(ipaddress.ip_address("192.0.2.100"),
                         instance(result.model).virtualIpaddresses[0].address.ip)
