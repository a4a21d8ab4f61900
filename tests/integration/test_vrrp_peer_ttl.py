"""
The per-peer TTL window of unicast VRRP (C{unicast_peer { IP min_ttl N
max_ttl M }} with C{check_unicast_src}), ours beside Debian keepalived
2.2.7: each side only accepts its peer's adverts with a TTL of 10 to 20,
and both send with TTL 255.  Each rejects every advert of the other (both
end up MASTER), logs keepalived's C{TTL/HL 255 not in range 10 - 20} and
counts it as a TTL error (C{keepalived.stats}, SIGUSR2).  Before the fix ours
rejected them without counting.
"""

from __future__ import annotations

import os
import signal

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import KEEPALIVED, OURS, VIP4, VrrpLabMixin, waitFor

CONFIG = """global_defs {{
    router_id h{index}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    check_unicast_src
    unicast_src_ip {ours}
    unicast_peer {{
        {peer} min_ttl 10 max_ttl 20
    }}
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
}}
"""


def ttlErrors(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.strip().startswith("TTL:"):
                return int(line.split(":")[1])
    raise AssertionError(f"no TTL line in {path}")


class PeerTtlTests(VrrpLabMixin, TestCase):
    timeout = 60

    def test_outOfWindowCountedAndLogged(self) -> None:
        nodes = self.makeNodes([OURS, KEEPALIVED])
        tmp = {}
        for node, other, priority in ((nodes[0], nodes[1], 150), (nodes[1], nodes[0], 100)):
            tmp[node.kind] = os.path.join(self.directory, f"tmp-{node.kind}")
            os.makedirs(tmp[node.kind])
            node.start(CONFIG.format(index=node.host.index, priority=priority,
                                     ours=node.host.ipv4, peer=other.host.ipv4, vip=VIP4),
                       env={"TMPDIR": tmp[node.kind]})
        # neither accepts the other's adverts: both take the VIP
        self.waitHolders(VIP4, [1, 2], timeout=20)
        wanted = "(VI_1) TTL/HL 255 not in range 10 - 20"
        for node in nodes:
            waitFor(lambda node=node: wanted in node.logText(), 10, f"{node.name}'s TTL line",
                    nodes)
        counts = {}
        for node in nodes:
            stats = os.path.join(tmp[node.kind], "keepalived.stats")
            node.sendSignal(signal.SIGUSR2)
            waitFor(lambda stats=stats: os.path.exists(stats) and "Priority Zero" in open(stats).read(),
                    10, f"{node.name}'s stats", nodes)
            counts[node.kind] = ttlErrors(stats)
        self.assertGreater(counts[OURS], 0, counts)
        self.assertGreater(counts[KEEPALIVED], 0, counts)
