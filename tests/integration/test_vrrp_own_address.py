"""
Adverts forged with a MASTER's own address and priority (a host on the LAN,
or a second router configured with the same address), ours beside Debian
keepalived 2.2.7: each MASTER of its own VRID in its own lab host (which
accepts packets from its own address, C{accept_local}), a third host sends
30 such adverts to each.  Both stay MASTER and warn with keepalived's words;
keepalived logs the warning for every advert, ours once (before the fix: once
per advert too).
"""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import KEEPALIVED, OURS, ROOT, VrrpLabMixin, waitFor

CONFIG = """global_defs {{
    router_id h{index}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 100
    advert_int 1
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
}}
"""
WARNING = ("(VI_1) WARNING - equal priority advert received from remote host with our IP "
           "address.")
COUNT = 30


class OwnAddressTests(VrrpLabMixin, TestCase):
    timeout = 60

    def test_warnedOnce(self) -> None:
        ours, theirs, _ = self.makeNodes([OURS, KEEPALIVED, OURS])
        forger = self.lab.hosts[2]
        nodes = [ours, theirs]
        targets = []
        for node in nodes:
            index = node.host.index
            vrid, vip = 50 + index, f"192.0.2.{100 + index}"
            node.host.run("sysctl", "-qw", "net.ipv4.conf.eth0.accept_local=1")
            node.start(CONFIG.format(index=index, vrid=vrid, vip=vip))
            targets.append((node, vrid, vip))
        for node, _, vip in targets:
            waitFor(lambda node=node, vip=vip: node.host.hasAddress(vip), 20,
                    f"{node.name} to be MASTER", nodes)
        for node, vrid, vip in targets:
            subprocess.run(forger.argv(
                sys.executable, "-m", "tests.integration.vrrp_port_tool", "send", "--vrid",
                str(vrid), "--priority", "100", "--source", node.host.ipv4, "--vip", vip,
                "--count", str(COUNT), "--period", "0.02"), cwd=ROOT, check=True,
                capture_output=True, timeout=30)
        waitFor(lambda: theirs.logText().count(WARNING) >= COUNT, 10,
                "keepalived's warnings", nodes)
        self.assertEqual(ours.logText().count(WARNING), 1, ours.logTail())
        for node, _, vip in targets:
            self.assertTrue(node.host.hasAddress(vip))
            self.assertNotIn("Entering BACKUP STATE", node.logSinceStart().split(
                "Entering MASTER STATE", 1)[1])
