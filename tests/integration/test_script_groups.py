"""
The groups of a script run as another user, ours beside Debian keepalived
2.2.7: a C{notify_master} script run as C{frr} (Debian's frr package: group
C{frr}, also a member of C{frrvty}) records its ids and groups from
C{/proc/self/status}.  keepalived 2.2.7 gives it no supplementary group but
its own group; so must ours (before the fix Twisted's C{initgroups} gave it
C{frrvty} too).  With C{set_supplementary_groups} (keepalived after 2.2.7)
ours gives it every group of the user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import tempfile

from twisted.trial.unittest import TestCase

from tests.integration.netns import requireCommand, waitUntil
from tests.integration.vrrpnode import KEEPALIVED, OURS, Node, VrrpLabMixin

CONFIG = """global_defs {{
    router_id groups
{extra}}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    notify_master "{script}" frr
    virtual_ipaddress {{
        192.0.2.100/24 dev eth0
    }}
}}
"""
RECORDER = """#!/bin/sh
grep -E '^(Uid|Gid|Groups):' /proc/self/status > {out}.tmp
mv {out}.tmp {out}
"""


class ScriptGroupsTests(VrrpLabMixin, TestCase):
    timeout = 90

    def setUp(self) -> None:
        requireCommand("vtysh")  # the frr package, whose user is in two groups
        self.frr = pwd.getpwnam("frr")
        self.root = tempfile.mkdtemp(prefix="ktx-grp-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.root, True)
        os.chmod(self.root, 0o755)
        self.out = os.path.join(self.root, "out")
        os.mkdir(self.out)
        os.chmod(self.out, 0o1777)
        self.script = os.path.join(self.root, "record.sh")
        with open(self.script, "w") as f:
            f.write(RECORDER.format(out=os.path.join(self.out, "status")))
        os.chmod(self.script, 0o755)

    def recorded(self, node: Node, extra: str = "") -> dict[str, list[int]]:
        path = os.path.join(self.out, "status")
        if os.path.exists(path):
            os.unlink(path)
        node.start(CONFIG.format(script=self.script, extra=extra))
        try:
            waitUntil(lambda: os.path.exists(path), 20,
                      lambda: f"{node.name}'s notify_master\n{node.logTail()}")
        finally:
            node.stop()
        with open(path) as f:
            fields = dict(line.split(":", 1) for line in f.read().splitlines())
        return {k: sorted(int(v) for v in fields[k].split()) for k in ("Uid", "Gid", "Groups")}

    def test_onlyTheScriptsGroup(self) -> None:
        (ours,) = self.makeNodes([OURS])
        theirs = Node(ours.host, KEEPALIVED, self.directory)
        seen = {node.kind: self.recorded(node) for node in (theirs, ours)}
        self.assertEqual(seen[OURS], seen[KEEPALIVED])
        self.assertEqual(seen[OURS]["Groups"], [self.frr.pw_gid])
        self.assertEqual(set(seen[OURS]["Uid"]), {self.frr.pw_uid})

    def test_setSupplementaryGroups(self) -> None:
        (ours,) = self.makeNodes([OURS])
        seen = self.recorded(ours, "    set_supplementary_groups\n")
        wanted = {g.gr_gid for g in grp.getgrall() if "frr" in g.gr_mem} | {self.frr.pw_gid}
        self.assertEqual(set(seen["Groups"]), wanted)
        self.assertGreater(len(wanted), 1)
