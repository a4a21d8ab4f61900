"""
SIGHUP reload of our daemon (h1, MASTER at priority 150) beside Debian
keepalived 2.2.7 (h2, priority 100), in lab namespaces, VRRPv3 with half-second
adverts (a reload that stalled the daemon for a Master_Down_Interval, 1.8 s,
would let keepalived take over).

Hitless means the VIP is never deleted from h1 during the reload: an
C{ip monitor address} in h1's namespace records every address event while
it happens, so even a sub-millisecond removal would show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import (
    KEEPALIVED,
    OURS,
    V2_PASS,
    V3_IPV4_FAST,
    VIP4,
    VrrpLabMixin,
    assertHoldersStay,
    configText,
    receiveErrors,
    waitFor,
)

EXTRA = "192.0.2.101"


class ReloadTests(VrrpLabMixin, TestCase):
    timeout = 120

    def setUp(self) -> None:
        self.h1, self.h2 = self.makeNodes([OURS, KEEPALIVED])
        self.h1.start(configText(V3_IPV4_FAST, self.h1.host, 150))
        self.startNode(self.h2, V3_IPV4_FAST, 100)
        self.waitHolders(VIP4, [1], timeout=20)
        self.h2.waitStarted()

    def monitor(self) -> subprocess.Popen:
        proc = self.h1.host.spawn("ip", "monitor", "address", stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        time.sleep(0.3)  # let it subscribe
        return proc

    def events(self, proc: subprocess.Popen) -> str:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
        return out

    def reload(self, text: str | None) -> float:
        """
        Write C{text} as h1's configuration (C{None}: delete it), send
        SIGHUP and wait until h1 logs the reload; return when the signal
        was sent.
        """
        if text is None:
            os.unlink(self.h1.confPath)
        else:
            with open(self.h1.confPath, "w") as f:
                f.write(text)
        before = self.h1.logText().count("Reloading configuration")
        sent = self.h1.sendSignal(signal.SIGHUP)
        waitFor(lambda: self.h1.logText().count("Reloading configuration") > before, 5,
                "the reload", self.nodes)
        return sent

    def test_hitlessChange(self) -> None:
        """
        Raising the priority and adding an address: the MASTER stays
        MASTER, its VIP is never removed, the new address appears,
        keepalived never takes over.
        """
        watch = self.monitor()
        peerLog = len(self.h2.logText())
        # the extra address is excluded from adverts: keepalived drops adverts
        # whose address list differs from its own
        text = configText(V3_IPV4_FAST, self.h1.host, 160).replace(
            "    virtual_ipaddress {",
            f"    virtual_ipaddress_excluded {{\n        {EXTRA}/24 dev eth0\n    }}\n"
            "    virtual_ipaddress {")
        self.reload(text)
        self.waitHolders(EXTRA, [1], timeout=5)
        assertHoldersStay(self.nodes, VIP4, [1], 3)
        events = self.events(watch)
        self.assertNotIn("Deleted", events.replace(EXTRA, ""), events)
        self.assertIn("Reloaded: vrrp changed", self.h1.logText())
        self.assertNotIn("Entering MASTER STATE", self.h2.logText()[peerLog:])
        self.assertTrue(self.h1.running)
        self.assertEqual(receiveErrors(self.h1) + receiveErrors(self.h2), [])

    def test_brokenConfigKeepsRunning(self) -> None:
        """
        A reload whose file is gone is refused: the daemon keeps running
        the previous configuration (without this handler SIGHUP killed it).
        """
        self.reload(None)
        waitFor(lambda: "Reload refused" in self.h1.logText(), 5, "the refusal", self.nodes)
        assertHoldersStay(self.nodes, VIP4, [1], 4)
        self.assertTrue(self.h1.running)

    def test_unchangedAndRemoved(self) -> None:
        """
        The same file again changes nothing; a configuration without the
        instance releases the VIP with priority 0, so keepalived takes over
        at once.
        """
        watch = self.monitor()
        self.reload(configText(V3_IPV4_FAST, self.h1.host, 150))
        waitFor(lambda: "Reloaded: configuration unchanged" in self.h1.logText(), 5,
                "the reload", self.nodes)
        assertHoldersStay(self.nodes, VIP4, [1], 1)
        self.assertNotIn("Deleted", self.events(watch))
        sent = self.reload("global_defs {\n    router_id h1\n}\n")
        # sooner than keepalived could notice h1's silence
        self.waitHolders(VIP4, [2], timeout=V3_IPV4_FAST.priorityZeroBudget(100) - (time.monotonic() - sent))
        self.assertTrue(self.h1.running)


SHARED = VIP4
EXTRA_A, EXTRA_B = "192.0.2.101", "192.0.2.102"


def burstConfig(host, priority: int, extra: str) -> str:
    """
    Our MASTER's file in a reload burst: the shared VIP in the adverts, one
    extra address (excluded from adverts, which keepalived compares) that
    differs between the two files.
    """
    return configText(V2_PASS, host, priority).replace(
        "    virtual_ipaddress {",
        f"    virtual_ipaddress_excluded {{\n        {extra}/24 dev eth0\n    }}\n"
        "    virtual_ipaddress {")


class ReloadBurstTests(TestCase):
    """
    100 SIGHUPs back to back while the file alternates between two
    configurations of the same instance (priority and one extra address
    differ): the VIP both share is never deleted, a client pinging it
    every 10 ms loses at most one reply, keepalived (the BACKUP) never
    takes over, and the last file written is the one in force.
    """

    timeout = 180

    def setUp(self) -> None:
        from tests.integration.netns import makeLab, requireCommand
        from tests.integration.vrrpnode import Node

        requireCommand("keepalived")
        requireCommand("ping")
        self.lab = makeLab(self, 3)
        directory = os.path.abspath(self.mktemp())
        h1, h2, self.client = self.lab.hosts
        self.ours = Node(h1, OURS, directory)
        self.peer = Node(h2, KEEPALIVED, directory)
        self.nodes = [self.ours, self.peer]
        self.ours.start(burstConfig(h1, 150, EXTRA_A))
        self.peer.start(configText(V2_PASS, h2, 100))
        waitFor(lambda: h1.hasAddress(SHARED) and not h2.hasAddress(SHARED)
                and h1.hasAddress(EXTRA_A), 20, "h1 to be MASTER", self.nodes)
        waitFor(lambda: "Entering BACKUP STATE" in self.peer.logText(), 20,
                "keepalived to be BACKUP", self.nodes)

    def write(self, text: str) -> None:
        # as configuration tools do: the daemon never reads a half-written file
        tmp = self.ours.confPath + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.ours.confPath)

    def test_burst(self) -> None:
        h1 = self.ours.host
        monitor = h1.spawn("ip", "monitor", "address", stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: monitor.poll() is None and monitor.kill())
        ping = self.client.spawn("ping", "-n", "-i", "0.01", "-W", "1", "-w", "9", SHARED,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: ping.poll() is None and ping.kill())
        time.sleep(1)  # the monitor has subscribed, the client has resolved the VIP
        peerLog = len(self.peer.logText())
        files = [burstConfig(h1, 160, EXTRA_B), burstConfig(h1, 150, EXTRA_A)]
        for n in range(100):
            self.write(files[n % 2])
            self.ours.sendSignal(signal.SIGHUP)
            time.sleep(0.005 * (n % 5))
        # the last file written (priority 150, EXTRA_A) ends up in force
        waitFor(lambda: h1.hasAddress(EXTRA_A) and not h1.hasAddress(EXTRA_B), 10,
                "the last file to be in force", self.nodes)
        out, _ = ping.communicate(timeout=30)
        monitor.terminate()
        events, _ = monitor.communicate(timeout=5)
        with open(os.path.join(self.ours.directory, "burst.txt"), "w") as f:
            f.write(f"{out}\n---- ip monitor address (h1) ----\n{events}")
        log = self.ours.logText()
        deleted = [line for line in events.splitlines()
                   if line.startswith("Deleted") and f" {SHARED}/" in line]
        self.assertEqual(deleted, [], log[-3000:])
        [summary] = [line for line in out.splitlines() if "packets transmitted" in line]
        sent, received = (int(summary.split()[i]) for i in (0, 3))
        self.assertGreater(sent, 300, out)  # the client pinged throughout
        self.assertLessEqual(sent - received, 1, f"{summary}\n{log[-3000:]}")
        self.assertNotIn("Entering MASTER STATE", self.peer.logText()[peerLog:])
        self.assertNotIn("left by a previous run", log)
        self.assertTrue(self.ours.running)
        self.assertGreater(log.count("Reloaded: vrrp changed"), 0)
