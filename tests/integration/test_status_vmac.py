"""
The data dumps name a VMAC as it is in use, ours beside Debian keepalived
2.2.7 (same configuration, one lab host each): C{use_vmac vtaken} while a
non-VMAC interface C{vtaken} exists, so both make C{vrrp.51} instead.
keepalived.json's C{vmac_ifname}, keepalived.data's C{Use VMAC} and
C{Interface} lines and the VIP's device must say C{vrrp.51} on both sides
(before the fix ours said C{vtaken} and had no VMAC line).
"""

from __future__ import annotations

import json
import os
import signal

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import KEEPALIVED, OURS, VrrpLabMixin, waitFor

CONFIG = """global_defs {
    router_id vmac
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    use_vmac vtaken
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


class VmacNameInDumpsTests(VrrpLabMixin, TestCase):
    timeout = 60

    def test_nameInUse(self) -> None:
        nodes = self.makeNodes([OURS, KEEPALIVED])
        found = {}
        for node in nodes:
            tmp = os.path.join(self.directory, f"tmp-{node.kind}")
            os.makedirs(tmp)
            node.host.run("ip", "link", "add", "vtaken", "type", "veth", "peer", "name", "vtakenp")
            node.start(CONFIG, env={"TMPDIR": tmp})
            node.waitStarted()
            target = node.vrrpPid() if node.kind == KEEPALIVED else node.pid
            paths = {}
            for signum, name in ((signal.SIGUSR1, "keepalived.data"),
                                 (signal.SIGRTMIN + 2, "keepalived.json")):
                path = paths[name] = os.path.join(tmp, name)
                os.kill(target, signum)
                waitFor(lambda path=path: os.path.exists(path) and os.path.getsize(path) > 0, 10,
                        f"{node.name}'s {name}", nodes)
            with open(paths["keepalived.json"]) as f:
                data = json.load(f)[0]["data"]
            with open(paths["keepalived.data"]) as f:
                text = f.read()
            # the instance's block (keepalived lists its interfaces after it)
            block = text.split(" VRRP Instance = VI_1", 1)[1].split("------<", 1)[0]
            lines = [line.split(" set")[0] for line in block.splitlines()
                     if line.startswith(("   Use VMAC", "   Interface =", "     192.0.2.100"))]
            found[node.kind] = (data["vmac_ifname"], data["vips"][0].split(" set")[0], lines)
        self.maxDiff = None
        self.assertEqual(found[OURS], found[KEEPALIVED])
        self.assertEqual(found[OURS][0], "vrrp.51")
