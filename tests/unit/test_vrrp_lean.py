"""
The lean paths of the VRRP stack give the same answers as the plain ones:

  - L{IPv4AdvertTemplate} (adverts built once, IP ID / checksum / AH
    patched per send) against L{buildIPv4Advert};
  - L{VrrpInstance.sendAdvert} against adverts built from scratch;
  - L{AdvertChecker} (memo of the last verdict) against L{checkAdvert};
  - L{peekVrid} against a full header decode;
  - imports deferred until a configuration needs them (pyroute2's package
    C{__init__} under the daemon's entry point, the SMTP client, virtual
    routes), checked in a fresh interpreter.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import FrozenInstanceError, replace
from ipaddress import IPv4Address, IPv6Address

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.vrrp.instance import VrrpInstance
from keepalive_tx.vrrp.packet import (
    AH_HEADER_LEN,
    IPPROTO_AH,
    VRRP_HEADER_LEN,
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    AuthType,
    IPv4AdvertTemplate,
    IPv4Header,
    PacketError,
    ReceivedMeta,
    VrrpAdvert,
    buildIPv4Advert,
    encodeVrrp,
    nextIpId,
)
from keepalive_tx.vrrp.service import LinuxPlatform
from keepalive_tx.vrrp.validate import AdvertChecker, ReceivePolicy, checkAdvert, peekVrid
from tests.fakes.net import FakeAddressManager
from tests.fakes.vrrp import instanceConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")
VIPS = (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101"))


def advertFor(version: int, auth: AuthType, priority: int = 150) -> VrrpAdvert:
    if version == 2:
        return VrrpAdvert(version=2, vrid=51, priority=priority, addresses=VIPS,
                          authType=auth, advertIntSeconds=1)
    return VrrpAdvert(version=3, vrid=51, priority=priority, addresses=VIPS, maxAdvertIntCs=100)


class AdvertTemplateTests(SynchronousTestCase):
    def test_sameBytesAsBuildIPv4Advert(self) -> None:
        """
        For every combination of version, authentication, destination, TTL,
        password and checksum flavour, and IP IDs / AH sequence numbers
        including the wrap-arounds, the template's packet is the one
        L{buildIPv4Advert} builds.
        """
        cases = itertools.product(
            [(2, AuthType.NONE), (2, AuthType.PASS), (2, AuthType.AH), (3, AuthType.NONE)],
            [VRRP_MCAST_V4, PEER],
            [255, 7],
            [b"", b"s3cr3t", "longer than eight"],
            [False, True],
            [None, VRRP_MCAST_V4],
        )
        checked = 0
        for (version, auth), dst, ttl, password, asV2, csumDst in cases:
            advert = advertFor(version, auth)
            kw = dict(ttl=ttl, password=password, v3ChecksumAsV2=asV2,
                      checksumDestination=csumDst)
            template = IPv4AdvertTemplate(advert, SOURCE, dst, **kw)
            self.assertEqual(template.ah, auth == AuthType.AH)
            for ident, seq in [(1, 1), (2, 7), (0x1234, 0xFFFFFFFF), (0xFFFF, 0), (0, 12345),
                               (0x10001, 0x100000001)]:
                self.assertEqual(
                    template.packet(ident, seq),
                    buildIPv4Advert(advert, SOURCE, dst, identification=ident,
                                    ahSequence=seq, **kw),
                    (version, auth, dst, ttl, password, asV2, csumDst, ident, seq))
                checked += 1
        self.assertEqual(checked, 4 * 2 * 2 * 3 * 2 * 2 * 6)

    def test_stringAddresses(self) -> None:
        """
        Addresses may be given as text, as to L{buildIPv4Advert}.
        """
        advert = advertFor(2, AuthType.PASS)
        template = IPv4AdvertTemplate(advert, "192.0.2.11", "192.0.2.12", password="pw")
        self.assertEqual(template.packet(9),
                         buildIPv4Advert(advert, SOURCE, PEER, identification=9, password="pw"))


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, object]] = []

    def send(self, packet: bytes, destination) -> bool:
        self.sent.append((packet, destination))
        return True


class InstanceSendTests(SynchronousTestCase):
    """
    What L{VrrpInstance.sendAdvert} sends is what building each advert from
    scratch gives: IP IDs 1, 2, ... per instance, one AH sequence number
    per advert, one copy per unicast peer, the priority asked for.
    """

    def build(self, body: str = "", source=SOURCE, **kw) -> tuple[VrrpInstance, Recorder]:
        sender = Recorder()
        instance = VrrpInstance(instanceConfig(body, **kw), clock=Clock(), sender=sender,
                                addresses=FakeAddressManager(), announcer=None,
                                sourceAddress=source)
        return instance, sender

    def expected(self, instance: VrrpInstance, priorities: list[int], *, auth: AuthType,
                 version: int = 2, destinations=(VRRP_MCAST_V4,), ttl: int = 255,
                 password: bytes = b"s3cr3t") -> list[tuple[bytes, object]]:
        out = []
        ident = 0
        for n, priority in enumerate(priorities, start=1):
            advert = VrrpAdvert(version=version, vrid=51, priority=priority,
                                addresses=(IPv4Address("192.0.2.100"),),
                                authType=auth if version == 2 else AuthType.NONE,
                                advertIntSeconds=1 if version == 2 else 0,
                                maxAdvertIntCs=0 if version == 2 else 100)
            for dst in destinations:
                ident = nextIpId(ident)
                out.append((buildIPv4Advert(advert, SOURCE, dst, identification=ident,
                                            ttl=ttl, password=password, ahSequence=n), dst))
        return out

    def sendAll(self, instance: VrrpInstance, priorities: list[int]) -> None:
        for p in priorities:
            instance.sendAdvert(p)

    def test_pass(self) -> None:
        instance, sender = self.build()
        priorities = [150, 150, 200, 150, 0, 150] + [255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 150]
        self.sendAll(instance, priorities)
        self.assertEqual(sender.sent, self.expected(instance, priorities, auth=AuthType.PASS))

    def test_ah(self) -> None:
        instance, sender = self.build(auth="AH")
        priorities = [150, 150, 100, 0]
        self.sendAll(instance, priorities)
        self.assertEqual(sender.sent, self.expected(instance, priorities, auth=AuthType.AH))
        self.assertEqual(instance.policy.ahLastSequence, 4)

    def test_v3(self) -> None:
        instance, sender = self.build(version=3, auth=None)
        self.sendAll(instance, [150, 0])
        self.assertEqual(sender.sent,
                         self.expected(instance, [150, 0], auth=AuthType.NONE, version=3))

    def test_unicastPeersAndTtl(self) -> None:
        peers = (IPv4Address("192.0.2.12"), IPv4Address("192.0.2.13"))
        body = (" unicast_src_ip 192.0.2.11\n unicast_ttl 9\n unicast_peer {\n"
                + "".join(f"  {p}\n" for p in peers) + " }\n")
        instance, sender = self.build(body, auth="AH")
        self.sendAll(instance, [150, 150, 120])
        self.assertEqual(sender.sent, self.expected(
            instance, [150, 150, 120], auth=AuthType.AH, destinations=peers, ttl=9))

    def test_ipIdWraps(self) -> None:
        instance, sender = self.build()
        instance._ipId = 0xFFFE
        self.sendAll(instance, [150, 150])
        ids = [IPv4Header.decode(p).identification for p, _ in sender.sent]
        self.assertEqual(ids, [0xFFFF, 1])

    def test_ipv6(self) -> None:
        instance, sender = self.build(family=6, version=3, auth=None,
                                      source=IPv6Address("fe80::11"))
        self.sendAll(instance, [150, 0, 150])
        messages = [encodeVrrp(VrrpAdvert(version=3, vrid=51, priority=p,
                                          addresses=(IPv6Address("2001:db8::100"),),
                                          maxAdvertIntCs=100), 6, computeChecksum=False)
                    for p in (150, 0, 150)]
        self.assertEqual(sender.sent, [(m, VRRP_MCAST_V6) for m in messages])

    def test_statsCounted(self) -> None:
        instance, sender = self.build()
        self.sendAll(instance, [150, 0])
        self.assertEqual((instance.stats["advert_sent"], instance.stats["pri_zero_sent"]), (2, 1))


class AdvertCheckerTests(SynchronousTestCase):
    """
    L{AdvertChecker.check} answers exactly as L{checkAdvert}, and skips the
    work only for a repeat of the previous datagram.
    """

    policy = ReceivePolicy(family=4, vrid=51, authType=AuthType.PASS, password=b"s3cr3t",
                           vips=(IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101")))
    meta = ReceivedMeta(family=4, source=PEER, destination=VRRP_MCAST_V4, ttl=255, ifindex=2)

    def packet(self, ident: int = 1, priority: int = 100, **kw) -> bytes:
        advert = advertFor(2, kw.pop("auth", AuthType.PASS), priority)
        return buildIPv4Advert(advert, PEER, identification=ident,
                               password=kw.pop("password", b"s3cr3t"), **kw)

    def assertSame(self, checker: AdvertChecker, data: bytes, meta=None, policy=None):
        meta = meta or self.meta
        policy = policy or self.policy
        result = checker.check(data, meta, policy)
        self.assertEqual(result, checkAdvert(data, meta, policy))
        return result

    def test_repeatReusesVerdict(self) -> None:
        """
        The same advert with another IP ID (and so another header checksum)
        gets the very same result object.
        """
        checker = AdvertChecker()
        first = self.assertSame(checker, self.packet(1))
        self.assertTrue(first.accepted)
        self.assertIs(checker.check(self.packet(2), self.meta, self.policy), first)
        self.assertIs(checker.check(bytearray(self.packet(3)), self.meta, self.policy), first)

    def test_changesAreChecked(self) -> None:
        """
        Another priority, password, policy or meta is checked afresh.
        """
        checker = AdvertChecker()
        first = self.assertSame(checker, self.packet(1))
        second = self.assertSame(checker, self.packet(2, priority=0))
        self.assertIsNot(second, first)
        self.assertIn("pri_zero_rcvd", second.counters)
        bad = self.assertSame(checker, self.packet(3, password=b"wrong"))
        self.assertFalse(bad.accepted)
        self.assertTrue(self.assertSame(checker, self.packet(4)).accepted)
        other = replace(self.policy, vips=(IPv4Address("192.0.2.100"),))
        self.assertEqual(self.assertSame(checker, self.packet(5), policy=other).reason.value,
                         "vip_count")
        truncated = replace(self.meta, truncated=True)
        self.assertFalse(self.assertSame(checker, self.packet(6), meta=truncated).accepted)
        self.assertFalse(self.assertSame(checker, self.packet(7, ttl=9)).accepted)

    def test_ahAlwaysChecked(self) -> None:
        """
        AH packets are never answered from memory (their replay check
        depends on the sequence number).
        """
        policy = replace(self.policy, authType=AuthType.AH, ahLastSequence=5)
        checker = AdvertChecker()
        data = self.packet(1, auth=AuthType.AH, ahSequence=6)
        first = self.assertSame(checker, data, policy=policy)
        self.assertTrue(first.accepted)
        again = self.assertSame(checker, data, policy=replace(policy, ahLastSequence=6))
        self.assertFalse(again.accepted)

    def test_garbage(self) -> None:
        checker = AdvertChecker()
        for data in (b"", b"\x45" * 10, self.packet()[:25], b"\x00" * 40):
            self.assertFalse(self.assertSame(checker, data).accepted)
            self.assertFalse(self.assertSame(checker, data).accepted)

    def test_ipv6(self) -> None:
        policy = ReceivePolicy(family=6, vrid=51, version=3,
                               vips=(IPv6Address("2001:db8::100"),), advertInterval=1.0)
        meta = ReceivedMeta(family=6, source=IPv6Address("fe80::12"), destination=VRRP_MCAST_V6,
                            ttl=255, ifindex=2)
        data = encodeVrrp(VrrpAdvert(version=3, vrid=51, priority=100,
                                     addresses=(IPv6Address("2001:db8::100"),),
                                     maxAdvertIntCs=100), 6, computeChecksum=False)
        checker = AdvertChecker()
        first = self.assertSame(checker, data, meta, policy)
        self.assertTrue(first.accepted)
        self.assertIs(checker.check(data, meta, policy), first)
        hop = replace(meta, ttl=1)
        self.assertFalse(self.assertSame(checker, data, hop, policy).accepted)


class PolicyEvolveTests(SynchronousTestCase):
    def test_likeReplace(self) -> None:
        """
        L{ReceivePolicy.evolve} gives what C{dataclasses.replace} gives: an
        equal, equally hashed, still frozen policy; unknown names are refused.
        """
        policy = AdvertCheckerTests.policy
        evolved = policy.evolve(ahLastSequence=7, effectivePriority=99)
        reference = replace(policy, ahLastSequence=7, effectivePriority=99)
        self.assertEqual(evolved, reference)
        self.assertEqual(hash(evolved), hash(reference))
        self.assertEqual(repr(evolved), repr(reference))
        self.assertEqual((policy.ahLastSequence, policy.effectivePriority), (0, 100))
        self.assertRaises(FrozenInstanceError, setattr, evolved, "vrid", 1)
        self.assertRaises(TypeError, policy.evolve, vird=1)


def _referencePeekVrid(data: bytes, family: int) -> int | None:
    try:
        if family == 4:
            ip = IPv4Header.decode(data)
            offset = ip.headerLength + (AH_HEADER_LEN if ip.protocol == IPPROTO_AH else 0)
        else:
            offset = 0
        if len(data) < offset + VRRP_HEADER_LEN:
            return None
        return data[offset + 1]
    except PacketError:
        return None


class PeekVridTests(SynchronousTestCase):
    def test_sameAsHeaderDecode(self) -> None:
        """
        Every prefix of real packets (with and without AH, with IP options)
        and some mangled headers give what a full header decode gives.
        """
        plain = buildIPv4Advert(advertFor(2, AuthType.PASS), SOURCE, password="x")
        ah = buildIPv4Advert(advertFor(2, AuthType.AH), SOURCE, password="x")
        withOptions = bytes([0x46]) + plain[1:20] + b"\x01\x01\x01\x00" + plain[20:]
        samples = []
        for packet in (plain, ah, withOptions):
            samples += [packet[:n] for n in range(len(packet) + 1)]
        for ihl in range(16):
            samples.append(bytes([0x40 | ihl]) + plain[1:])
        samples.append(plain[:9] + bytes([IPPROTO_AH]) + plain[10:])
        for data in samples:
            self.assertEqual(peekVrid(data, 4), _referencePeekVrid(data, 4), data.hex())
        for data in (b"", b"\x31\x33", b"\x31\x33\x64\x01\x00\x64\x00\x00"):
            self.assertEqual(peekVrid(data, 6), _referencePeekVrid(data, 6))
        self.assertEqual(peekVrid(plain, 4), 51)
        self.assertEqual(peekVrid(ah, 4), 51)


class PlatformTests(SynchronousTestCase):
    def test_routeManagersOnDemand(self) -> None:
        """
        L{LinuxPlatform} builds its route and rule managers when first asked
        for, on its netlink channel; before it is opened there are none.
        """
        platform = LinuxPlatform(Clock())
        self.assertIsNone(platform.routes)
        self.assertIsNone(platform.rules)

        class Channel:
            pass

        platform._channel = Channel()
        routes, rules = platform.routes, platform.rules
        self.assertEqual([type(routes).__name__, type(rules).__name__],
                         ["NetlinkRouteManager", "NetlinkRuleManager"])
        self.assertIs(platform.routes, routes)
        self.assertIs(routes.channel, platform._channel)
        self.assertIs(rules.channel, platform._channel)
        platform.routes = None
        self.assertIsNot(platform.routes, routes)


_PROBE = textwrap.dedent("""
    import json, sys
    from keepalive_tx.processwide import lazyPackage
    lazyPackage("pyroute2")  # as the daemon's entry point does
    from keepalive_tx.config import parseText
    from keepalive_tx.service import KeepalivedService
    text = sys.stdin.read()
    model = parseText(text).model
    service = KeepalivedService(model, reactor=None)
    watched = ["pyroute2.ndb", "pyroute2.iproute", "unittest.mock", "twisted.mail.smtp",
               "keepalive_tx.alert.mail", "keepalive_tx.net.routespec",
               "keepalive_tx.net.routes", "keepalive_tx.lvs.service"]
    out = {m: m in sys.modules for m in watched}
    import pyroute2
    out["IPRoute"] = pyroute2.IPRoute.__name__
    print(json.dumps(out))
""")

_VRRP = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


class DeferredImportTests(SynchronousTestCase):
    """
    Building the service for a configuration imports only what it needs
    (in a fresh interpreter), and the deferred modules still load when
    used.
    """

    def probe(self, config: str) -> dict:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        out = subprocess.run([sys.executable, "-c", _PROBE], input=config, env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout.splitlines()[-1])

    def test_plainVrrp(self) -> None:
        found = self.probe(_VRRP)
        self.assertEqual(found, {
            "pyroute2.ndb": False, "pyroute2.iproute": False, "unittest.mock": False,
            "twisted.mail.smtp": False, "keepalive_tx.alert.mail": False,
            "keepalive_tx.net.routespec": False, "keepalive_tx.net.routes": False,
            "keepalive_tx.lvs.service": False,
            # the whole pyroute2 package is still there when asked for
            "IPRoute": "IPRoute"})

    def test_mailAndLvs(self) -> None:
        config = ("global_defs {\n notification_email {\n  a@example.org\n }\n"
                  " smtp_server 127.0.0.1\n}\n" + _VRRP
                  + "virtual_server 192.0.2.100 80 {\n protocol TCP\n"
                    " real_server 192.0.2.20 80 {\n  TCP_CHECK {\n  }\n }\n}\n")
        found = self.probe(config)
        self.assertTrue(found["keepalive_tx.alert.mail"])
        self.assertTrue(found["twisted.mail.smtp"])
        self.assertTrue(found["keepalive_tx.lvs.service"])
