"""
What a MASTER resumed by a SIGHUP puts on the wire: ours (h1, MASTER)
beside Debian keepalived 2.2.7 (h2, BACKUP, priority 100), VRRPv2 with
1 s adverts, everything captured on the lab's bridge.

  - L{ScriptStateTests}: ours tracks two C{vrrp_script}s that run every
    5 s, one of weight 0 that takes 2 s and one of weight 60 that takes
    3 s (base priority 80, so 140 while it succeeds).  Each reload hands their
    results to the new configuration, as keepalived does ("considered
    successful on reload"): no advert gap longer than the advert interval
    (plus scheduling slack), never an advert at the base priority,
    keepalived never sees a lower priority nor takes over.  (Before:
    every reload held the resumed MASTER silent until the weight-0 script
    had run again, and advertised 80 until the weighted one had.)
  - L{AnnouncementTests}: a reload that adds no address sends no
    gratuitous ARP and runs no notify script again; one that adds an
    address sends one burst (C{garp_master_repeat} rounds for every
    address), without the second burst of a new MASTER
    (C{garp_master_delay} later, 1 s here) -- keepalived 2.2.7's rule.
    (Before: the full MASTER burst, its second burst and
    C{notify_master} on every reload.)

The reloads change C{router_id}, which restarts the VRRP part (a
configuration that did not change at all leaves it untouched).
"""

from __future__ import annotations

import os
import signal
import time

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import (
    KEEPALIVED,
    OURS,
    V2_PASS,
    VIP4,
    VrrpLabMixin,
    configText,
    report,
    waitFor,
)
from tests.integration.wire import FrameRecorder, adverts, garps, largestGap

SCRIPTS = """vrrp_script chk_hold {
    script "/bin/sleep 2"
    interval 5
    timeout 4
}
vrrp_script chk_weight {
    script "/bin/sleep 3"
    interval 5
    timeout 4
    weight 60
}
"""
EXTRA = "192.0.2.101"


class _ResumedMaster(VrrpLabMixin):
    timeout = 120

    def setUp(self) -> None:
        self.h1, self.h2 = self.makeNodes([OURS, KEEPALIVED])

    def config(self, routerId: str, priority: int, *, scripts: bool = False,
               extra: bool = False, notify: str | None = None,
               garpDelay: int | None = None) -> str:
        host = self.h1.host
        text = configText(V2_PASS, host, priority).replace(
            f"router_id h{host.index}", f"router_id {routerId}")
        inside = ""
        if scripts:
            text = text.replace("vrrp_instance", SCRIPTS + "vrrp_instance", 1)
            inside += "    track_script {\n        chk_hold\n        chk_weight\n    }\n"
        if notify is not None:
            inside += f"    notify {notify}\n    notify_master \"{notify} master\"\n"
        if garpDelay is not None:
            inside += f"    garp_master_delay {garpDelay}\n"
        if extra:
            inside += f"    virtual_ipaddress_excluded {{\n        {EXTRA}/24 dev eth0\n    }}\n"
        return text.replace("    virtual_ipaddress {", inside + "    virtual_ipaddress {")

    def startPair(self, ours: str) -> None:
        self.h1.start(ours)
        self.startNode(self.h2, V2_PASS, 100)
        self.waitHolders(VIP4, [1], timeout=30)
        self.h2.waitStarted()

    def reload(self, text: str) -> float:
        with open(self.h1.confPath, "w") as f:
            f.write(text)
        before = self.h1.logText().count("Reloaded: vrrp")
        sent = self.h1.sendSignal(signal.SIGHUP)
        waitFor(lambda: self.h1.logText().count("Reloaded: vrrp") > before, 10,
                "the reload", self.nodes)
        return sent

    def record(self) -> FrameRecorder:
        recorder = FrameRecorder(self.lab.brns)
        self.addCleanup(recorder.stop)
        return recorder


class ScriptStateTests(_ResumedMaster, TestCase):
    def test_reloadKeepsScriptResults(self) -> None:
        self.startPair(self.config("h1", 80, scripts=True))
        peerLog = len(self.h2.logText())
        recorder = self.record()
        time.sleep(1.5)
        for n in range(2):
            self.reload(self.config(f"h1-{n}", 80, scripts=True))
            time.sleep(5)
        frames = recorder.stop()
        ours = adverts(frames, self.h1.host.ipv4)
        why = report(self.nodes, "adverts of a resumed MASTER")
        gap = largestGap([a.time for a in ours], frames[0][0], frames[-1][0])
        self.assertEqual(({a.priority for a in ours}, gap < 1.5), ({140}, True), f"{gap}\n{why}")
        self.assertEqual(self.h1.logText().count(
            "VRRP_Script(chk_weight) considered successful on reload"), 2, why)
        peer = self.h2.logText()[peerLog:]
        self.assertNotIn("received lower priority", peer)
        self.assertNotIn("Entering MASTER STATE", peer)
        self.assertEqual([h.index for h in self.lab.hosts if h.hasAddress(VIP4)], [1])


class AnnouncementTests(_ResumedMaster, TestCase):
    #: a new MASTER's second burst comes this long after the first
    GARP_DELAY = 1

    def test_garpsOnlyForAddedAddresses(self) -> None:
        out = os.path.abspath(self.mktemp())
        os.makedirs(out)
        notify = os.path.join(out, "notify.sh")
        calls = os.path.join(out, "calls")
        with open(notify, "w") as f:
            f.write(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
        os.chmod(notify, 0o755)
        delay = self.GARP_DELAY
        self.startPair(self.config("h1", 150, notify=notify, garpDelay=delay))
        # after the new MASTER's second burst
        waitFor(lambda: self.h1.logText().count("Sending gratuitous ARP") >= 10, 15,
                "the second GARP burst", self.nodes)
        time.sleep(0.5)
        with open(calls) as f:
            notified = f.read()
        recorder = self.record()
        sent = self.reload(self.config("h1-a", 150, notify=notify, garpDelay=delay))
        time.sleep(2)
        added = self.reload(self.config("h1-b", 150, notify=notify, extra=True, garpDelay=delay))
        # long enough for a second burst to show
        time.sleep(delay + 2)
        frames = recorder.stop()
        why = report(self.nodes, "GARPs across reloads")
        unchanged = [g for g in garps(frames) if g.time < added]
        self.assertEqual(unchanged, [], why)
        burst = [g for g in garps(frames) if g.time >= added]
        self.assertEqual(sorted(g.address for g in burst), sorted([VIP4, EXTRA] * 5), why)
        self.assertLess(max(g.time for g in burst) - added, 2, why)
        self.assertGreater(sent, 0)
        with open(calls) as f:
            self.assertEqual(f.read(), notified)
        self.assertEqual([h.index for h in self.lab.hosts if h.hasAddress(VIP4)], [1])
        self.assertTrue(self.h1.host.hasAddress(EXTRA))
