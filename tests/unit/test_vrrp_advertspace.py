"""
At most 255 VIPs -- and no more than the interface MTU leaves room for --
go into an advert; the rest become excluded VIPs, with keepalived 2.2.7's
warning (C{-t} exit 5).  keepalived's own numbers for the limits, taken from
its C{-t} output, are in L{AddressCapacityTests}.
"""

from __future__ import annotations

import io
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap
from keepalive_tx.config import parseText
from keepalive_tx.config.errors import Severity
from keepalive_tx.vrrp.advertspace import (
    auditAdvertSpace,
    fitAdvert,
    interfaceMtu,
    maxAdvertAddresses,
)
from keepalive_tx.vrrp.packet import decodeIPv4Packet, decodeVrrp, expectedVrrpLength
from keepalive_tx.vrrp.service import VrrpService
from tests.fakes.vrrp import FakeVrrpPlatform

TOO_MANY = ("(VI_1) Number of VIPs ({n}) exceeds maximum/space available in packet "
            "(max {limit} addresses) - excess moved to eVIPs")


def v4(i: int) -> str:
    return str(IPv4Address("198.51.100.0") + i)


def v6(i: int) -> str:
    return str(IPv6Address("2001:db8::1000") + i)


def configText(vips: list[str], *, family: int = 4, version: int = 2, extra: str = "",
               evips: list[str] = (), interface: str | None = "eth0") -> str:
    lines = ["vrrp_instance VI_1 {", " state BACKUP", " virtual_router_id 51",
             " priority 150", " advert_int 1", f" version {version}"]
    if interface:
        lines.append(f" interface {interface}")
    if family == 6:
        lines.append(" native_ipv6")
    lines += [extra, " virtual_ipaddress {", *(f"  {a}" for a in vips), " }"]
    if evips:
        lines += [" virtual_ipaddress_excluded {", *(f"  {a}" for a in evips), " }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse(text: str):
    result = parseText(text, "k.conf")
    return result.model, result.diagnostics


class AddressCapacityTests(SynchronousTestCase):
    """
    How many addresses one advert carries: keepalived 2.2.7's arithmetic,
    checked against its C{-t} output.
    """

    def test_keepalivedLimits(self) -> None:
        """
        keepalived 2.2.7 reports "max 255" for IPv4 at MTU 1500, "max 89"
        for IPv6 at MTU 1500 and "max 131" for VRRPv2/IPv4 at MTU 576: it
        counts an Ethernet header, the IP and VRRP headers, and the auth
        data (and AH header) of VRRPv2 over IPv4 against the MTU.
        """
        self.assertEqual(maxAdvertAddresses(4, 2, 1500), 255)
        self.assertEqual(maxAdvertAddresses(4, 3, 1500), 255)
        self.assertEqual(maxAdvertAddresses(6, 3, 1500), 89)
        self.assertEqual(maxAdvertAddresses(6, 3), 89)
        self.assertEqual(maxAdvertAddresses(4, 2, 576), 131)
        self.assertEqual(maxAdvertAddresses(4, 2, 576, ah=True), 125)
        self.assertEqual(maxAdvertAddresses(4, 3, 576), 133)
        self.assertEqual(maxAdvertAddresses(6, 3, 1280), 76)
        self.assertEqual(maxAdvertAddresses(6, 3, 9000), 255)
        self.assertEqual(maxAdvertAddresses(4, 2, 60), 2)
        self.assertEqual(maxAdvertAddresses(4, 2, 20), 0)

    def test_fitsTheMtu(self) -> None:
        """
        An advert with as many addresses as allowed, plus the Ethernet
        header, fits the MTU; one more address would not (below 255).
        """
        for family, version, ah, mtu in [(4, 2, False, 576), (4, 2, True, 700), (4, 3, False, 600),
                                         (6, 3, False, 1500), (6, 3, False, 1280)]:
            n = maxAdvertAddresses(family, version, mtu, ah)
            ip = 20 + (24 if ah else 0) if family == 4 else 40
            size = 14 + ip + expectedVrrpLength(version, n, family)
            self.assertLessEqual(size, mtu)
            self.assertGreater(size + (4 if family == 4 else 16), mtu)


class ConfigTests(SynchronousTestCase):
    """
    The configuration step: the count byte allows 255.
    """

    def test_excessBecomesExcluded(self) -> None:
        """
        300 VIPs: the first 255 are advertised, the other 45 follow the
        configured excluded VIPs, with keepalived's warning at the first
        one moved (an error: C{-t} exits 5).
        """
        vips = [v4(i) for i in range(300)]
        model, diagnostics = parse(configText(vips, evips=["203.0.113.1"]))
        vi = model.vrrpInstances[0]
        self.assertEqual([str(a.address.ip) for a in vi.virtualIpaddresses], vips[:255])
        self.assertEqual([str(a.address.ip) for a in vi.virtualIpaddressesExcluded],
                         ["203.0.113.1"] + vips[255:])
        [diagnostic] = list(diagnostics)
        self.assertEqual(diagnostic.severity, Severity.ERROR)
        self.assertEqual(diagnostic.message, TOO_MANY.format(n=300, limit=255))
        self.assertEqual(diagnostic.location.line, 10 + 255)  # the 256th VIP
        self.assertEqual(diagnostics.exitCode(), 5)

    def test_255Fit(self) -> None:
        model, diagnostics = parse(configText([v4(i) for i in range(255)]))
        self.assertEqual(len(model.vrrpInstances[0].virtualIpaddresses), 255)
        self.assertEqual(list(diagnostics), [])


class InterfaceMtuTests(SynchronousTestCase):
    def test_loopbackAndMissing(self) -> None:
        """
        The MTU of an interface of this namespace; C{None} for names that
        are absent or cannot name an interface.
        """
        self.assertGreaterEqual(interfaceMtu("lo"), 1280)
        for name in ("", "no-such-if0", "x" * 16):
            self.assertIsNone(interfaceMtu(name))


class FitTests(SynchronousTestCase):
    """
    L{fitAdvert}: the interface MTU.
    """

    def test_ipv6AtMtu1500(self) -> None:
        """
        IPv6 at MTU 1500 (and without an interface: keepalived's default):
        89 advertised, 11 excluded.
        """
        model, _ = parse(configText([v6(i) for i in range(100)], family=6, version=3))
        vi = model.vrrpInstances[0]
        for mtu in (1500, None):
            fitted, problem = fitAdvert(vi, mtu)
            self.assertEqual(problem, TOO_MANY.format(n=100, limit=89))
            self.assertEqual(fitted.virtualIpaddresses, vi.virtualIpaddresses[:89])
            self.assertEqual(fitted.virtualIpaddressesExcluded, vi.virtualIpaddresses[89:])
        self.assertEqual(fitAdvert(vi, 9000), (vi, None))

    def test_ipv4SmallMtuAndAh(self) -> None:
        """
        VRRPv2 at MTU 576: 131 addresses fit, 125 with the AH header.
        """
        vips = [v4(i) for i in range(200)]
        for extra, limit in (("", 131),
                             ("authentication {\n auth_type AH\n auth_pass x\n}", 125)):
            model, _ = parse(configText(vips, extra=extra))
            fitted, problem = fitAdvert(model.vrrpInstances[0], 576)
            self.assertEqual(problem, TOO_MANY.format(n=200, limit=limit))
            self.assertEqual(len(fitted.virtualIpaddresses), limit)
            self.assertEqual(len(fitted.virtualIpaddressesExcluded), 200 - limit)

    def test_audit(self) -> None:
        """
        The C{-t} audit asks for each instance's interface MTU; an
        instance whose interface does not exist is left to the interface
        checks; one without C{interface} (unicast) is sized for the
        default interface it is given.
        """
        text = configText([v6(i) for i in range(100)], family=6, version=3)
        for mtus, expected in (({"eth0": 1500}, [TOO_MANY.format(n=100, limit=89)]),
                               ({"eth0": 9000}, []), ({}, [])):
            model, diagnostics = parse(text)
            auditAdvertSpace(model, diagnostics, mtus.get)
            self.assertEqual([d.message for d in diagnostics], expected)
        unicast = configText([v6(i) for i in range(100)], family=6, version=3, interface=None,
                             extra="unicast_src_ip 2001:db8::1\nunicast_peer {\n 2001:db8::2\n}")
        model, diagnostics = parse(unicast)
        auditAdvertSpace(model, diagnostics, {"eth0": 1500}.get)
        [diagnostic] = [d for d in diagnostics if "Number of VIPs" in d.message]
        self.assertEqual(diagnostic.message, TOO_MANY.format(n=100, limit=89))
        self.assertEqual(diagnostic.location.line, 13 + 89)  # the 90th VIP
        self.assertEqual(diagnostics.exitCode(), 5)

    def test_configTest(self) -> None:
        """
        C{--config-test} runs the audit with the interface's MTU.
        """
        from keepalive_tx.vrrp import advertspace

        self.patch(tap.Options, "interfaceNames", lambda options: {"eth0"})
        self.patch(advertspace, "interfaceMtu", {"eth0": 1500}.get)
        path = Path(self.mktemp())
        path.write_text(configText(
            [v6(i) for i in range(90)], family=6, version=3, interface=None,
            extra="unicast_src_ip 2001:db8::1\nunicast_peer {\n 2001:db8::2\n}"))
        options = tap.Options()
        options.stdout, options.stderr = io.StringIO(), io.StringIO()
        with self.assertRaises(SystemExit) as raised:
            options.parseOptions(["-t", "-c", str(path)])
        self.assertEqual(raised.exception.code, 5)
        self.assertIn(TOO_MANY.format(n=90, limit=89), options.stderr.getvalue())


class ServiceTests(SynchronousTestCase):
    """
    The running service sizes each instance's adverts for its interface.
    """

    def master(self, text: str, mtus: dict[str, int]) -> tuple[VrrpService, FakeVrrpPlatform]:
        model, _ = parse(text)
        platform = FakeVrrpPlatform(mtus=mtus)
        clock = Clock()
        service = VrrpService(model, clock, platform=platform)
        service.privilegedStartService()
        service.startService()
        clock.advance(4)
        self.addCleanup(service.stopService)
        return service, platform

    def test_ipv6AdvertFitsMtu(self) -> None:
        """
        100 IPv6 VIPs on an MTU-1500 interface: adverts carry the first 89
        (as keepalived's do), all 100 are added as MASTER, the warning is
        logged once.
        """
        logs = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        vips = [v6(i) for i in range(100)]
        service, platform = self.master(configText(vips, family=6, version=3), {"eth0": 1500})
        instance = service.instances["VI_1"]
        [port] = platform.ports
        advert = decodeVrrp(port.sent[0][0], 6)
        self.assertEqual(advert.addresses, tuple(ip_address(a) for a in vips[:89]))
        self.assertEqual(instance.policy.vips, advert.addresses)
        self.assertEqual(len(platform.addresses.installed()), 100)
        self.assertEqual([formatEvent(e) for e in logs if "Number of VIPs" in formatEvent(e)],
                         [TOO_MANY.format(n=100, limit=89)])

    def test_largeMtuKeepsAll(self) -> None:
        """
        On a jumbo-frame interface all 100 IPv6 VIPs are advertised.
        """
        service, platform = self.master(
            configText([v6(i) for i in range(100)], family=6, version=3), {"eth0": 9000})
        self.assertEqual(decodeVrrp(platform.ports[0].sent[0][0], 6).naddr, 100)

    def test_ipv4CountByte(self) -> None:
        """
        300 IPv4 VIPs: adverts say 255 and carry 255 (never 300 - 256 =
        44), all 300 are added.
        """
        service, platform = self.master(configText([v4(i) for i in range(300)]),
                                        {"eth0": 1500})
        advert = decodeIPv4Packet(platform.ports[0].sent[0][0]).vrrp
        self.assertEqual((advert.naddr, len(advert.addresses)), (255, 255))
        self.assertEqual(len(platform.addresses.installed()), 300)
