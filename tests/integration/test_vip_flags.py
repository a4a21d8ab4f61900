"""
IPv6 VIP flags in the kernel, ours beside Debian keepalived 2.2.7 (each
MASTER of its own VRID in its own lab host): keepalived adds an IPv6 VIP
with C{IFA_F_NODAD} (C{ip addr} shows C{nodad}) unless the VIP line says
C{-nodad}, which asks for Duplicate Address Detection; before the fix ours
did the opposite.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import KEEPALIVED, OURS, VrrpLabMixin, waitFor

CONFIG = """global_defs {{
    router_id h{index}
}}
vrrp_instance VI_6 {{
    state MASTER
    interface eth0
    virtual_router_id {vrid}
    priority 150
    advert_int 1
    native_ipv6
    virtual_ipaddress {{
        2001:db8::{index}:100/64
        2001:db8::{index}:101/64 -nodad
    }}
}}
"""


def flags(node, address: str) -> set[str]:
    """
    The words after C{scope global} on C{address}'s C{ip -6 addr} line.
    """
    out = node.host.run("ip", "-6", "-o", "addr", "show", "dev", "eth0").stdout
    for line in out.splitlines():
        words = line.split()
        if f"{address}/64" in words:
            tail = words[words.index("global") + 1:]
            return set(tail[:tail.index("\\")] if "\\" in tail else tail)
    raise AssertionError(f"{address} not on {node.name}:\n{out}")


class Ipv6NodadTests(VrrpLabMixin, TestCase):
    timeout = 60

    def test_nodadUnlessMinusNodad(self) -> None:
        nodes = self.makeNodes([OURS, KEEPALIVED])
        for node in nodes:
            index = node.host.index
            node.start(CONFIG.format(index=index, vrid=60 + index))
        seen = {}
        for node in nodes:
            index = node.host.index
            default, dad = f"2001:db8::{index}:100", f"2001:db8::{index}:101"
            waitFor(lambda node=node, a=default, b=dad: node.host.hasAddress(a)
                    and node.host.hasAddress(b), 20, f"{node.name}'s VIPs", nodes)
            seen[node.kind] = (flags(node, default), flags(node, dad))
        self.assertEqual(seen[OURS], seen[KEEPALIVED])
        self.assertEqual(("nodad" in seen[OURS][0], "nodad" in seen[OURS][1]), (True, False))
