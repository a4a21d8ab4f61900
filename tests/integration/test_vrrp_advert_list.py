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
import select
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
    V3_IPV4_FAST,
    V3_IPV6_FAST,
    Flavour,
    Node,
    assertHoldersStay,
    configText,
    holders,
    receiveErrors,
    waitFor,
)

CRAFTED_PRIORITY = 254


def craft(host: Host, flavour: Flavour, addresses: list[str], *, period: float = 0.25,
          priority: int = CRAFTED_PRIORITY) -> subprocess.Popen:
    """
    Send well-formed adverts for VRID 51 (the flavour's interval) carrying
    C{addresses} from C{host}, one every C{period} seconds, in the
    background until L{finish} (at most a minute).
    """
    args = ["send", "--family", str(flavour.family), "--version", str(flavour.version),
            "--vrid", "51", "--priority", str(priority), "--count", str(int(60 / period)),
            "--period", str(period), "--timeout", "70", "--interval", flavour.advertInt]
    if flavour.family == 4:
        args += ["--source", host.ipv4]
    if flavour.auth:
        args += ["--auth", flavour.auth, "--password", "s3cr3t"]
    for address in addresses:
        args += ["--vip", address]
    proc = host.spawn(sys.executable, "-m", "tests.integration.vrrp_port_tool", *args,
                      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the first advert has left when the tool says so
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if line != "SENDING\n":
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"crafting adverts did not start: {line}{out} {err}")
    return proc


def waitAdverts(host: Host, flavour: Flavour, count: int) -> None:
    """
    Wait until C{count} adverts for VRID 51 have reached C{host}.
    """
    args = ["recv", "--family", str(flavour.family), "--version", str(flavour.version),
            "--vrid", "51", "--count", str(count), "--timeout", "30"]
    out = subprocess.run(host.argv(sys.executable, "-m", "tests.integration.vrrp_port_tool", *args),
                         cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    got = [line for line in out.splitlines() if line.startswith("{")]
    if len(got) < count:
        raise AssertionError(f"{len(got)} adverts reached h{host.index}, not {count}: {out}")


def finish(proc: subprocess.Popen) -> None:
    """
    Stop sending (SIGTERM: the tool stops its reactor and reports).
    """
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines or not json.loads(lines[-1])["sent"]:
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
        tooMany = craft(forger, flavour, [vip, other])
        self.addCleanup(lambda: tooMany.poll() is None and tooMany.kill())
        node.start(configText(flavour, h1, 100))
        node.waitStarted()  # the daemon's own start may take seconds on a loaded machine
        waitFor(lambda: holders([h1], vip) == [1], flavour.masterDown(100) + 4,
                f"{vip} on h1 despite the forged adverts", [node])
        # MASTER direction: the same adverts do not make it yield ...
        assertHoldersStay([node], vip, [1], 2)
        finish(tooMany)
        # ... nor do adverts with the right count but another address.
        self.assertIn("received an unexpected ip number count 2, expected 1!", node.logText())
        wrongAddress = craft(forger, flavour, [other])
        self.addCleanup(lambda: wrongAddress.poll() is None and wrongAddress.kill())
        notPresent = f"ip address associated with VRID 51 not present in MASTER advert: {vip}"
        waitFor(lambda: notPresent in node.logText(), 10, "the first advert with another address",
                [node])
        assertHoldersStay([node], vip, [1], 2)
        finish(wrongAddress)
        log = node.logText()
        self.assertNotIn("Entering BACKUP STATE\n", log.replace("(init)", ""))


def _wrongListTest(kind: str, flavour: Flavour):
    def test(self: WrongAddressListTests) -> None:
        self.wrongListsDropped(kind, flavour)

    test.__doc__ = (f"{flavour.name}: {kind} drops adverts with a wrong address count or list "
                    "(never held in BACKUP, never leaves MASTER).")
    return test


# VRRPv3 with half-second adverts: the address checks do not depend on the interval
for _kind in (OURS, KEEPALIVED):
    for _flavour in (V2_PASS, V3_IPV4_FAST, V3_IPV6_FAST):
        setattr(WrongAddressListTests,
                f"test_{_kind}_{_flavour.name.replace('-', '_')}", _wrongListTest(_kind, _flavour))


def manyVips(flavour: Flavour, config: str, count: int) -> str:
    """
    C{config} (from L{configText}) with C{count} VIPs: L{Flavour.vip} and
    then addresses from the documentation prefixes.
    """
    if flavour.family == 4:
        extra = [f"198.51.100.{i}/32" for i in range(1, 251)] + [
            f"203.0.113.{i}/32" for i in range(1, 251)]
    else:
        extra = [f"2001:db8:1::{i:x}/128" for i in range(1, 256)]
    first = f"        {flavour.vip}/{flavour.prefix} dev eth0\n"
    lines = "".join(f"        {a} dev eth0\n" for a in extra[:count - 1])
    assert first in config
    # One gratuitous ARP / NA per address on becoming MASTER: keepalived
    # sends no advert while it works through thousands of them.
    quiet = "    garp_master_repeat 1\n    garp_master_delay 0\n    garp_lower_prio_repeat 0\n"
    return config.replace(first, first + lines).replace("    advert_int", quiet + "    advert_int")


class ManyVipsTests(TestCase):
    """
    More VIPs than one advert carries, the same configuration on both
    sides: keepalived and ours advertise the same first ones, so one
    master is elected whichever implementation has the higher priority
    (before, ours sent 300 VIPs with a count of 44 and a keepalived backup
    rejected every advert: two masters).
    """

    timeout = 120

    def pair(self, kinds: list[str], flavour: Flavour, count: int, advertised: int) -> None:
        if KEEPALIVED in kinds:
            requireCommand("keepalived")
        lab = makeLab(self, 2)
        directory = os.path.abspath(self.mktemp())
        nodes = [Node(h, k, directory) for h, k in zip(lab.hosts, kinds, strict=True)]
        for node in nodes:
            self.addCleanup(node.stop)
        master, backup = nodes
        h1, h2 = master.host, backup.host
        vip = flavour.vip
        master.start(manyVips(flavour, configText(flavour, h1, 150), count))
        waitFor(lambda: len(h1.addresses(flavour.family)) >= count, 30, f"{count} VIPs on h1",
                nodes)
        # keepalived sends no advert while it adds and announces that many
        # addresses (its own backups time out then too): the backup joins
        # a settled master, one whose adverts reach h2 again.
        waitAdverts(h2, flavour, 2)
        backup.start(manyVips(flavour, configText(flavour, h2, 100), count))
        backup.waitStarted()
        # Longer than the backup's Master_Down_Interval: it hears the
        # master's adverts and accepts them.
        assertHoldersStay(nodes, vip, [1], flavour.masterDown(100) + 2)
        self.assertEqual(len(h2.addresses(flavour.family)), 1 + (flavour.family == 6))
        warning = (f"Number of VIPs ({count}) exceeds maximum/space available in packet "
                   f"(max {advertised} addresses) - excess moved to eVIPs")
        for node in nodes:
            self.assertIn(warning, node.logText())
            self.assertEqual(receiveErrors(node), [])


def _manyVipsTest(kinds: list[str], flavour: Flavour, count: int, advertised: int):
    def test(self: ManyVipsTests) -> None:
        self.pair(kinds, flavour, count, advertised)

    test.__doc__ = (f"{flavour.name}, {count} VIPs ({advertised} advertised): {kinds[0]} MASTER, "
                    f"{kinds[1]} BACKUP, one master.")
    return test


for _kinds in ([OURS, KEEPALIVED], [KEEPALIVED, OURS]):
    for _flavour, _count, _advertised in ((V2_PASS, 300, 255), (V3_IPV6_FAST, 100, 89)):
        setattr(ManyVipsTests,
                f"test_{_flavour.name.replace('-', '_')}_{_kinds[0]}Master",
                _manyVipsTest(_kinds, _flavour, _count, _advertised))


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
