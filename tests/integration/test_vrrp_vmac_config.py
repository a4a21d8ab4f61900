"""
C{-t} on a corpus of VMAC/ipvlan configurations, Debian's keepalived 2.2.7
and ours side by side in a lab host (keepalived looks the interfaces up):
the same exit code, and keepalived's VMAC lines (C{VMAC ...},
C{... ipvlan ...}, C{... use_vmac ...}) among ours.

Not in the corpus, on purpose: keepalived's newer C{use_vmac} words (C{name},
C{group}, C{netlink_notify_msg}), which 2.2.7 takes for interface names and
we accept; and the checks of existing interfaces (a configured name that is
a non-macvlan interface), which we make at start, not in C{-t}
(docs/keepalived-compat.md, "VMAC and ipvlan").
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import TestCase

from tests.fakes.vrrp import VI_TEMPLATE
from tests.integration.netns import makeLab, requireCommand
from tests.integration.vrrpnode import configTestsMany

V4 = "        192.0.2.100/24\n"
V6 = "        2001:db8::100/64\n"
VI_2 = ("vrrp_instance VI_2 {\n    interface eth0\n    virtual_router_id 52\n    use_vmac foo\n"
        "    virtual_ipaddress {\n        192.0.2.101\n    }\n}\n")
PEER = "    unicast_peer {\n        192.0.2.12\n    }\n"


def case(body: str, vips: str = V4, g: str = "", extra: str = "") -> str:
    return VI_TEMPLATE.format(body=body, vips=vips, g="    router_id t\n" + g, extra=extra)


#: name -> (configuration, keepalived 2.2.7's exit code)
CORPUS = {
    "plain": (case("    use_vmac\n"), 0),
    "name": (case("    use_vmac vrrp.77\n"), 0),
    "name too long": (case("    use_vmac abcdefghijklmnop\n"), 5),
    "name invalid": (case("    use_vmac a/b\n"), 5),
    "two names": (case("    use_vmac foo bar\n"), 5),
    "mac 5 octets": (case("    use_vmac 02:00:00:00:11\n"), 0),
    "mac 6 octets": (case("    use_vmac foo 02:00:00:00:11:22\n"), 0),
    "mac 7 octets": (case("    use_vmac 02:00:00:11:22:33:44\n"), 0),
    "mac multicast": (case("    use_vmac 01:00:00:00:11:22\n"), 5),
    "mac rfc v4": (case("    use_vmac 00:00:5e:00:01:22\n"), 5),
    "mac rfc v6, 5 octets": (case("    use_vmac 00:00:5e:00:02\n"), 5),
    "mac 00:00:5e:00:03": (case("    use_vmac 00:00:5e:00:03:22\n"), 0),
    "mac bad digit": (case("    use_vmac 02:00:zz:00:11:22\n"), 5),
    "mac short": (case("    use_vmac 02:00:00:11\n"), 5),
    "mac 3 digits": (case("    use_vmac 02:000:00:11:22:33\n"), 5),
    "two macs": (case("    use_vmac 02:00:00:00:11 02:00:00:00:12\n"), 5),
    "use_vmac twice": (case("    use_vmac foo\n    use_vmac bar\n"), 5),
    "name used by an earlier instance": (case("    use_vmac foo\n", extra=VI_2), 5),
    "xmit_base alone": (case("    vmac_xmit_base\n"), 5),
    "xmit_base with argument": (case("    vmac_xmit_base foo\n"), 5),
    "xmit_base": (case("    use_vmac\n    vmac_xmit_base\n"), 0),
    "use_vmac_addr": (case("    use_vmac_addr\n"), 0),
    "unicast": (case("    use_vmac\n" + PEER), 5),
    "unicast with xmit_base": (case("    use_vmac\n    vmac_xmit_base\n" + PEER), 0),
    "strict with xmit_base": (case("    use_vmac\n    vmac_xmit_base\n", g="    vrrp_strict\n"), 5),
    "strict with mac": (case("    use_vmac 02:00:00:00:11\n", g="    vrrp_strict\n"), 5),
    "promote_secondaries": (case("    use_vmac\n    promote_secondaries\n"), 5),
    "VIP use_vmac on the instance VMAC": (case("    use_vmac\n", vips="        192.0.2.100/24 use_vmac\n"), 5),
    "VIP use_vmac without instance VMAC": (case("", vips="        192.0.2.100/24 use_vmac\n"), 0),
    "VIP use_vmac on eth1": (case("", vips="        192.0.2.100/24 dev eth1 use_vmac\n"), 0),
    "VIP use_vmac with use_vmac_addr": (
        case("    use_vmac_addr\n", vips="        192.0.2.100/24 dev eth1 use_vmac\n"), 5),
    "static use_vmac": (case("", extra="static_ipaddress {\n    192.0.2.5/24 dev eth0 use_vmac\n}\n"), 5),
    "prefixes": (case("    use_vmac\n", g="    vmac_prefix abc\n    vmac_addr_prefix xyz\n"), 0),
    "long prefix": (case("    use_vmac\n", g="    vmac_prefix abcdefghijklmnopq\n"), 0),
    "prefix twice": (case("    use_vmac\n", g="    vmac_prefix abc\n    vmac_prefix def\n"), 5),
    "addr prefix twice": (case("", g="    vmac_addr_prefix abc\n    vmac_addr_prefix def\n"), 5),
    "ipvlan without address": (case("    use_ipvlan\n"), 5),
    "ipvlan": (case("    use_ipvlan 192.0.2.50/24\n"), 0),
    "ipvlan name address mode": (case("    use_ipvlan ipv1 192.0.2.50/24 private\n"), 0),
    "ipvlan two modes": (case("    use_ipvlan bridge vepa\n"), 5),
    "ipvlan twice": (case("    use_ipvlan 192.0.2.50\n    use_ipvlan\n"), 5),
    "ipvlan two addresses": (case("    use_ipvlan 192.0.2.50 192.0.2.51\n"), 5),
    "ipvlan two names": (case("    use_ipvlan a b 192.0.2.50\n"), 5),
    "ipvlan name too long": (case("    use_ipvlan abcdefghijklmnop 192.0.2.50\n"), 5),
    "ipvlan bad address": (case("    use_ipvlan 192.0.2.500\n"), 5),
    "ipvlan and use_vmac": (case("    use_ipvlan 192.0.2.50\n    use_vmac\n"), 0),
    "ipvlan with xmit_base": (case("    use_ipvlan 192.0.2.50\n    vmac_xmit_base\n"), 5),
    "ipvlan unicast": (case("    use_ipvlan 192.0.2.50\n" + PEER), 5),
    "ipvlan promote_secondaries": (case("    use_ipvlan 192.0.2.50\n    promote_secondaries\n"), 5),
    "IPv6 VMAC": (case("    use_vmac\n", vips=V6), 0),
    "IPv6 ipvlan without address": (case("    use_ipvlan\n", vips=V6), 0),
    "IPv6 ipvlan address sets the family": (case("    use_ipvlan 2001:db8::50/64\n", vips=V6), 0),
    "IPv6 address before IPv4 VIPs": (case("    use_ipvlan 2001:db8::50/64\n"), 5),
}

#: keepalived's lines about VMACs that ours must print too (location prefix removed)
_PREFIX = re.compile(r"^\(.*?Line \d+\) ")
_VMAC_WORDS = re.compile(r"VMAC|vmac|ipvlan|IPVLAN|xmit_base|already using|promote_secondaries")


def vmacLines(stderr: str) -> list[str]:
    messages = (_PREFIX.sub("", line) for line in stderr.splitlines())
    return [m for m in messages if _VMAC_WORDS.search(m)]


class VmacConfigTestParityTests(TestCase):
    timeout = 600

    def test_corpus(self) -> None:
        keepalived = requireCommand("keepalived")
        (host,) = makeLab(self, 1).hosts
        host.run("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
        work = os.path.abspath(self.mktemp())
        os.mkdir(work)
        paths = []
        for n, (text, _) in enumerate(CORPUS.values()):
            paths.append(os.path.join(work, f"case{n}.conf"))
            with open(paths[-1], "w") as f:
                f.write(text)
        problems = []
        runs = configTestsMany(host, keepalived, paths, work)
        for (name, (_, expected)), (theirs, ours) in zip(CORPUS.items(), runs, strict=True):
            wanted = vmacLines(theirs.stderr)
            missing = [line for line in wanted if not any(line in o for o in ours.stderr.splitlines())]
            if (theirs.returncode, ours.returncode) != (expected, expected) or missing:
                problems.append(
                    f"{name}: keepalived -t {theirs.returncode} (expected {expected}), ours "
                    f"{ours.returncode}; lines missing {missing}\n"
                    f"  keepalived: {theirs.stderr.strip()!r}\n  ours: {ours.stderr.strip()!r}")
        self.assertEqual(problems, [], "\n".join(problems))
