"""
The advert's address list on the wire, ours beside Debian keepalived 2.2.7:

  - adverts whose address count or list differs from ours, crafted in a
    second namespace at a higher priority, are dropped: they neither hold a
    BACKUP nor make a MASTER yield (VRRPv2, VRRPv3 over IPv4 and IPv6);
  - more VIPs than an advert can carry (255, or fewer when the interface
    MTU is the limit): both implementations advertise the same first ones,
    so a pair of them elects one master, whichever side is which.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.trial.unittest import TestCase

from tests.integration.netns import Host, makeLab, requireCommand
from tests.integration.vrrpnode import (
    KEEPALIVED,
    OURS,
    ROOT,
    V2_PASS,
    V3_IPV4,
    V3_IPV6,
    Flavour,
    Node,
    assertHoldersStay,
    configText,
    holders,
    waitFor,
)

CRAFTED_PRIORITY = 254


def craft(host: Host, flavour: Flavour, addresses: list[str], *, count: int,
          period: float = 0.25, priority: int = CRAFTED_PRIORITY) -> subprocess.Popen:
    """
    Send C{count} well-formed adverts for VRID 51 carrying C{addresses} from
    C{host}, one every C{period} seconds, in the background.
    """
    args = ["send", "--family", str(flavour.family), "--version", str(flavour.version),
            "--vrid", "51", "--priority", str(priority), "--count", str(count),
            "--period", str(period), "--timeout", str(count * period + 10)]
    if flavour.family == 4:
        args += ["--source", host.ipv4]
    if flavour.auth:
        args += ["--auth", flavour.auth, "--password", "s3cr3t"]
    for address in addresses:
        args += ["--vip", address]
    return host.spawn(sys.executable, "-m", "tests.integration.vrrp_port_tool", *args,
                      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"crafting adverts failed: {out} {err}")


class WrongAddressListTests(TestCase):
    """
    A daemon (h1) and a forger (h2) on one bridge (methods generated below).
    """

    timeout = 60

    def wrongListsDropped(self, kind: str, flavour: Flavour) -> None:
        if kind == KEEPALIVED:
            requireCommand("keepalived")
        lab = makeLab(self, 2)
        h1, forger = lab.hosts
        node = Node(h1, kind, os.path.abspath(self.mktemp()))
        self.addCleanup(node.stop)
        vip = flavour.vip
        other = "192.0.2.101" if flavour.family == 4 else "2001:db8::101"

        # BACKUP direction: from its start the daemon hears only adverts
        # of priority 254 carrying two addresses; they do not hold it.
        tooMany = craft(forger, flavour, [vip, other], count=40)
        self.addCleanup(lambda: tooMany.poll() is None and tooMany.kill())
        node.start(configText(flavour, h1, 100))
        waitFor(lambda: holders([h1], vip) == [1], flavour.masterDown(100) + 4,
                f"{vip} on h1 despite the forged adverts", [node])
        # MASTER direction: the same adverts do not make it yield ...
        assertHoldersStay([node], vip, [1], 2)
        finish(tooMany)
        # ... nor do adverts with the right count but another address.
        wrongAddress = craft(forger, flavour, [other], count=8)
        self.addCleanup(lambda: wrongAddress.poll() is None and wrongAddress.kill())
        assertHoldersStay([node], vip, [1], 2)
        finish(wrongAddress)
        log = node.logText()
        self.assertIn("received an unexpected ip number count 2, expected 1!", log)
        self.assertIn(f"ip address associated with VRID 51 not present in MASTER advert: {vip}",
                      log)
        self.assertNotIn("Entering BACKUP STATE\n", log.replace("(init)", ""))


def _wrongListTest(kind: str, flavour: Flavour):
    def test(self: WrongAddressListTests) -> None:
        self.wrongListsDropped(kind, flavour)

    test.__doc__ = (f"{flavour.name}: {kind} drops adverts with a wrong address count or list "
                    "(never held in BACKUP, never leaves MASTER).")
    return test


for _kind in (OURS, KEEPALIVED):
    for _flavour in (V2_PASS, V3_IPV4, V3_IPV6):
        setattr(WrongAddressListTests,
                f"test_{_kind}_{_flavour.name.replace('-', '_')}", _wrongListTest(_kind, _flavour))


class ReflectionFloodTests(TestCase):
    """
    Ours as MASTER under a flood of valid lower-priority adverts on real
    sockets: it answers, logs and announces at most once per advert
    interval (bench/reflection_flood.py compares it with keepalived).
    """

    timeout = 60

    def flood(self, flavour: Flavour, noAdvert: bool = False, rate: int = 3000,
              secs: float = 3.0) -> None:
        lab = makeLab(self, 2)
        h1, flooder = lab.hosts
        node = Node(h1, OURS, os.path.abspath(self.mktemp()))
        self.addCleanup(node.stop)
        config = configText(flavour, h1, 150)
        if noAdvert:
            config = config.replace("    priority 150\n", "    priority 150\n    lower_prio_no_advert\n")
        node.start(config)
        vip = flavour.vip
        waitFor(lambda: holders([h1], vip) == [1], flavour.masterDown(150) + 5, f"{vip} on h1",
                [node])
        before = node.logText().count("with lower priority")
        args = ["flood", "--family", str(flavour.family), "--version", str(flavour.version),
                "--vrid", "51", "--priority", "50", "--vip", vip, "--rate", str(rate),
                "--secs", str(secs), "--source", flooder.ipv4, "--watch", h1.ipv4,
                "--garp", vip]
        if flavour.auth:
            args += ["--auth", flavour.auth, "--password", "s3cr3t"]
        tool = flooder.spawn(sys.executable, "-m", "tests.integration.vrrp_port_tool", *args,
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = tool.communicate(timeout=secs + 20)
        self.assertEqual(tool.returncode, 0, err)
        result = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(result["sent"], rate * secs)
        adverts = [t for t, priority in result["arrivals"] if 0 <= t <= secs and priority]
        # Periodic adverts plus at most one answer a second (none with
        # lower_prio_no_advert); unlimited, it would be one per packet.
        perSecond = 1 if noAdvert else 2
        self.assertLessEqual(len(adverts), perSecond * (secs + 1), result["arrivals"])
        self.assertGreaterEqual(len(adverts), secs - 1, result["arrivals"])
        waitFor(lambda: node.logText().count("with lower priority") - before >= secs, 5,
                "the flood in h1's log", [node])
        logged = node.logText().count("with lower priority") - before
        self.assertLessEqual(logged, secs + 1)
        # garp_lower_prio_repeat (5) once per reaction, not per packet.
        self.assertLessEqual(result["garps"], 5 * (secs + 1) * 2)
        self.assertEqual(holders([h1], vip), [1])

    def test_v2Pass(self) -> None:
        """
        VRRPv2 with PASS authentication, 3,000 adverts a second for 3 s.
        """
        self.flood(V2_PASS)

    def test_v3LowerPrioNoAdvert(self) -> None:
        """
        VRRPv3 with lower_prio_no_advert: only the periodic adverts go out.
        """
        self.flood(V3_IPV4, noAdvert=True)
