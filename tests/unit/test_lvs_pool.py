"""
Tests for L{keepalive_tx.lvs.pool}: pure pool decisions.
"""

from __future__ import annotations

from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config.model_lvs import (
    AddressRange,
    ForwardingMethod,
    FwmarkEntry,
    RealServer,
    SorryServer,
    VirtualServer,
    VirtualServerGroup,
)
from keepalive_tx.lvs.pool import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    Pool,
    QuorumChange,
    RealServerChange,
    ServiceEntry,
    ServiceKey,
    ServiceSpec,
    WeightChange,
    diffTables,
    expandServices,
    flagBits,
    flagNames,
    reconcile,
)

A = ip_address
VIP = A("192.0.2.100")
KEY = ServiceKey(4, "TCP", VIP, 80)


def rs(last: int, weight: int = 1, **kw) -> RealServer:
    return RealServer(address=A(f"192.0.2.{last}"), port=8080, weight=weight, **kw)


def key(last: int) -> DestKey:
    return DestKey(A(f"192.0.2.{last}"), 8080)


def vs(*servers: RealServer, **kw) -> VirtualServer:
    kw.setdefault("address", VIP)
    kw.setdefault("port", 80)
    return VirtualServer(realServers=servers, **kw)


def dests(pool: Pool, service: ServiceKey = KEY) -> dict[str, int]:
    """
    The destinations the pool has applied: address → weight.
    """
    entry = pool.applied().get(service)
    return {} if entry is None else {str(k.address): d.weight for k, d in entry.destinations.items()}


class StartTests(SynchronousTestCase):
    def test_startAddsServiceAndAliveServers(self) -> None:
        """
        Without alpha, every real server starts alive: one service, one
        destination each with its configured weight and method.
        """
        pool = Pool(vs(rs(11, 2), rs(12, 3, method=ForwardingMethod("DR")), scheduler="rr"))
        decision = pool.start()
        self.assertEqual(
            decision.actions,
            (
                AddService(ServiceSpec(KEY, "rr")),
                AddDest(KEY, DestSpec(key(11), 2, "NAT")),
                AddDest(KEY, DestSpec(key(12), 3, "DR")),
            ),
        )
        self.assertEqual(decision.events, (QuorumChange(pool.name, True, 1, 0, 5, initial=True),))
        self.assertEqual(decision.events[0].message, "Starting with quorum up for VS [192.0.2.100]:tcp:80")

    def test_alphaStartsDown(self) -> None:
        """
        With alpha the servers start dead: no destinations, quorum down.
        An inhibited alpha server is present with weight 0.
        """
        pool = Pool(vs(rs(11, alpha=True), rs(12, alpha=True, inhibitOnFailure=True)))
        decision = pool.start()
        self.assertEqual(dests(pool), {"192.0.2.12": 0})
        self.assertFalse(decision.events[0].up)
        self.assertEqual(decision.events[0].message, "Starting with quorum down for VS [192.0.2.100]:tcp:80")

    def test_alphaFirstReportAlwaysNotifies(self) -> None:
        """
        The first result of an alpha server fires an event even when it
        is "down"; later repeats do not.
        """
        pool = Pool(vs(rs(11, alpha=True)))
        pool.start()
        first = pool.setAlive(key(11), False)
        self.assertEqual(first.events, (RealServerChange(pool.name, key(11), False),))
        self.assertEqual(first.actions, ())
        self.assertEqual(pool.setAlive(key(11), False).events, ())

    def test_nonAlphaRepeatSilent(self) -> None:
        """
        Without alpha, a first success is no news.
        """
        pool = Pool(vs(rs(11)))
        pool.start()
        self.assertEqual(pool.setAlive(key(11), True), type(pool.setAlive(key(11), True))())

    def test_persistenceAndFlags(self) -> None:
        """
        The service carries scheduler, flags and persistence.
        """
        pool = Pool(
            vs(
                rs(11),
                scheduler="sh",
                schedulerFlags=frozenset({"sh-port"}),
                persistenceTimeout=300,
                persistenceGranularity=24,
            )
        )
        action = pool.start().actions[0]
        self.assertEqual(action, AddService(ServiceSpec(KEY, "sh", frozenset({"sh-port"}), 300, 24)))


class RealServerTests(SynchronousTestCase):
    def test_downRemoves(self) -> None:
        """
        A dead server is removed from IPVS; alive again, re-added.
        """
        pool = Pool(vs(rs(11), rs(12)))
        pool.start()
        down = pool.setAlive(key(11), False)
        self.assertEqual(down.actions, (DeleteDest(KEY, key(11)),))
        self.assertEqual(down.events, (RealServerChange(pool.name, key(11), False),))
        up = pool.setAlive(key(11), True)
        self.assertEqual(up.actions, (AddDest(KEY, DestSpec(key(11), 1)),))
        self.assertTrue(up.events[0].alive)

    def test_inhibitOnFailure(self) -> None:
        """
        With inhibit_on_failure a dead server stays with weight 0.
        """
        pool = Pool(vs(rs(11, 5, inhibitOnFailure=True), rs(12)))
        pool.start()
        self.assertEqual(pool.setAlive(key(11), False).actions, (EditDest(KEY, DestSpec(key(11), 0)),))
        self.assertEqual(pool.setAlive(key(11), True).actions, (EditDest(KEY, DestSpec(key(11), 5)),))

    def test_unknownServerIgnored(self) -> None:
        """
        Reports about servers not in the pool change nothing.
        """
        pool = Pool(vs(rs(11)))
        pool.start()
        self.assertEqual(pool.setAlive(key(99), False).actions, ())
        self.assertEqual(pool.setWeight(key(99), 3).actions, ())

    def test_dynamicWeight(self) -> None:
        """
        A weight change edits the destination and is reported; C{None}
        restores the configured weight; weights are clamped to 0..INT32_MAX.
        """
        pool = Pool(vs(rs(11, 4)))
        pool.start()
        d = pool.setWeight(key(11), 7)
        self.assertEqual(d.actions, (EditDest(KEY, DestSpec(key(11), 7)),))
        self.assertEqual(d.events, (WeightChange(pool.name, key(11), 4, 7, True),))
        self.assertEqual(
            d.events[0].message,
            "Changing weight from 4 to 7 for active service [192.0.2.11]:8080 of VS [192.0.2.100]:tcp:80",
        )
        self.assertEqual(pool.setWeight(key(11), -5).actions, (EditDest(KEY, DestSpec(key(11), 0)),))
        self.assertEqual(pool.setWeight(key(11), 2**40).actions[0].dest.weight, 2**31 - 1)
        self.assertEqual(pool.setWeight(key(11), None).actions, (EditDest(KEY, DestSpec(key(11), 4)),))
        self.assertEqual(pool.setWeight(key(11), 4).actions, ())

    def test_weightOfDeadServer(self) -> None:
        """
        A dead server's weight changes are remembered without IPVS
        changes, and used when it comes back.
        """
        pool = Pool(vs(rs(11, 4), rs(12)))
        pool.start()
        pool.setAlive(key(11), False)
        d = pool.setWeight(key(11), 9)
        self.assertEqual(d.actions, ())
        self.assertFalse(d.events[0].active)
        self.assertEqual(pool.setAlive(key(11), True).actions, (AddDest(KEY, DestSpec(key(11), 9)),))

    def test_thresholdsAndTunnel(self) -> None:
        """
        Thresholds and the tunnel type reach the destination.
        """
        server = rs(11, uThreshold=100, lThreshold=10, method=ForwardingMethod("TUN", "gue", 5555, "csum"))
        pool = Pool(vs(server))
        pool.start()
        spec = pool.applied()[KEY].destinations[key(11)]
        self.assertEqual(spec, DestSpec(key(11), 1, "TUN", 100, 10, "gue", 5555, "csum"))


class QuorumTests(SynchronousTestCase):
    def makePool(self, **kw) -> Pool:
        pool = Pool(vs(rs(11, 1), rs(12, 2), rs(13, 3), **kw))
        pool.start()
        return pool

    def test_hysteresis(self) -> None:
        """
        Quorum 4, hysteresis 1: lost below 3, regained at 5.
        """
        pool = self.makePool(quorum=4, hysteresis=1)
        self.assertEqual(pool.setAlive(key(11), False).events[1:], ())  # live 5
        d = pool.setAlive(key(12), False)  # live 3: not < 3
        self.assertEqual(len(d.events), 1)
        d = pool.setAlive(key(13), False)  # live 0
        self.assertEqual(d.events[1], QuorumChange(pool.name, False, 4, 1, 0))
        self.assertEqual(d.events[1].message, "Lost quorum 4-1=3 > 0 for VS [192.0.2.100]:tcp:80")
        self.assertEqual(pool.setAlive(key(13), True).events[1:], ())  # live 3
        self.assertEqual(pool.setAlive(key(11), True).events[1:], ())  # live 4 < 5
        d = pool.setAlive(key(12), True)  # live 6
        self.assertEqual(d.events[1], QuorumChange(pool.name, True, 4, 1, 6))
        self.assertEqual(d.events[1].message, "Gained quorum 4+1=5 <= 6 for VS [192.0.2.100]:tcp:80")

    def test_liveZeroLosesQuorum(self) -> None:
        """
        With no live weight quorum is lost even if quorum - hysteresis <= 0.
        """
        pool = self.makePool(quorum=1, hysteresis=0)
        for last in (11, 12):
            pool.setAlive(key(last), False)
        d = pool.setAlive(key(13), False)
        self.assertFalse(d.events[-1].up)

    def test_weightChangeMovesQuorum(self) -> None:
        """
        Dynamic weights count towards quorum.
        """
        pool = self.makePool(quorum=6)
        d = pool.setWeight(key(13), 1)
        self.assertEqual(d.events[-1], QuorumChange(pool.name, False, 6, 0, 4))

    def test_withoutSorryServerQuorumOnlyReports(self) -> None:
        """
        Without a sorry server losing quorum leaves the alive servers.
        """
        pool = self.makePool(quorum=6)
        pool.setAlive(key(11), False)
        self.assertEqual(dests(pool), {"192.0.2.12": 2, "192.0.2.13": 3})

    def test_sorryServer(self) -> None:
        """
        Quorum lost: alive servers leave, the sorry server (weight 1) comes
        in, inhibited servers stay at 0; quorum back: the reverse.
        """
        sorry = SorryServer(address=A("192.0.2.99"), port=8080)
        pool = Pool(vs(rs(11, 1), rs(12, 2, inhibitOnFailure=True), quorum=3, sorryServer=sorry))
        pool.start()
        d = pool.setAlive(key(11), False)
        self.assertEqual(
            d.actions,
            (DeleteDest(KEY, key(11)), EditDest(KEY, DestSpec(key(12), 0)), AddDest(KEY, DestSpec(key(99), 1))),
        )
        self.assertTrue(pool.sorryActive())
        d = pool.setAlive(key(11), True)
        self.assertEqual(
            d.actions,
            (DeleteDest(KEY, key(99)), EditDest(KEY, DestSpec(key(12), 2)), AddDest(KEY, DestSpec(key(11), 1))),
        )

    def test_sorryServerInhibit(self) -> None:
        """
        With sorry_server_inhibit the sorry server is always present, with
        weight 0 while quorum is up.
        """
        sorry = SorryServer(address=A("192.0.2.99"), port=8080, inhibit=True, method=ForwardingMethod("DR"))
        pool = Pool(vs(rs(11, 1), quorum=1, sorryServer=sorry))
        pool.start()
        self.assertEqual(dests(pool), {"192.0.2.11": 1, "192.0.2.99": 0})
        self.assertEqual(pool.applied()[KEY].destinations[key(99)].method, "DR")
        d = pool.setAlive(key(11), False)
        self.assertEqual(d.actions, (DeleteDest(KEY, key(11)), EditDest(KEY, DestSpec(key(99), 1, "DR"))))

    def test_sorryServerSharesRealServerEntry(self) -> None:
        """
        A sorry server equal to a real server shares its entry.
        """
        sorry = SorryServer(address=A("192.0.2.11"), port=8080)
        pool = Pool(vs(rs(11, 5), rs(12, 5), quorum=6, sorryServer=sorry))
        pool.start()
        d = pool.setAlive(key(12), False)
        self.assertEqual(d.actions, (DeleteDest(KEY, key(12)), EditDest(KEY, DestSpec(key(11), 1))))


class SuspendStopTests(SynchronousTestCase):
    def test_haSuspend(self) -> None:
        """
        With ha_suspend and the VIP absent nothing reaches IPVS, events
        still flow; when the VIP appears the accumulated difference is
        applied.
        """
        pool = Pool(vs(rs(11), rs(12), haSuspend=True), vipPresent=False)
        self.assertEqual(pool.start().actions, ())
        d = pool.setAlive(key(11), False)
        self.assertEqual(d.actions, ())
        self.assertEqual(len(d.events), 1)
        d = pool.setVipPresent(True)
        self.assertEqual(d.actions, (AddService(ServiceSpec(KEY)), AddDest(KEY, DestSpec(key(12), 1))))
        self.assertEqual(pool.setVipPresent(False).actions, ())
        self.assertEqual(pool.setAlive(key(12), False).actions, ())
        self.assertEqual(pool.setVipPresent(True).actions, (DeleteDest(KEY, key(12)),))

    def test_vipIgnoredWithoutHaSuspend(self) -> None:
        """
        Without ha_suspend the VIP's presence does not matter.
        """
        pool = Pool(vs(rs(11)), vipPresent=False)
        self.assertEqual(len(pool.start().actions), 2)

    def test_stopRemovesEverything(self) -> None:
        """
        Stop deletes each destination, then the service.
        """
        pool = Pool(vs(rs(11), rs(12)))
        pool.start()
        d = pool.stop()
        self.assertEqual(d.actions, (DeleteDest(KEY, key(11)), DeleteDest(KEY, key(12)), DeleteService(KEY)))
        self.assertEqual(d.events, ())
        self.assertEqual(pool.applied(), {})

    def test_omega(self) -> None:
        """
        With omega, stop reports quorum down and each alive server down.
        """
        pool = Pool(vs(rs(11), rs(12), omega=True))
        pool.start()
        pool.setAlive(key(12), False)
        d = pool.stop()
        self.assertEqual(
            d.events,
            (
                QuorumChange(pool.name, False, 1, 0, 1, shutdown=True),
                RealServerChange(pool.name, key(11), False, shutdown=True),
            ),
        )


class GroupTests(SynchronousTestCase):
    def test_expandRangesAndFwmarks(self) -> None:
        """
        A group expands to one service per address of each range (with the
        entry's port) and per fwmark; every real server is in each.
        """
        group = VirtualServerGroup(
            "G",
            addressRanges=(
                AddressRange(A("192.0.2.1"), A("192.0.2.3"), 80),
                AddressRange(A("2001:db8::1"), A("2001:db8::1"), None),
            ),
            fwmarks=(FwmarkEntry(7), FwmarkEntry(8, 6)),
        )
        server = vs(rs(11), address=None, group="G", port=443, protocol="UDP")
        keys = [s.key for s in expandServices(server, [group])]
        self.assertEqual(
            keys,
            [
                ServiceKey(4, "UDP", A("192.0.2.1"), 80),
                ServiceKey(4, "UDP", A("192.0.2.2"), 80),
                ServiceKey(4, "UDP", A("192.0.2.3"), 80),
                ServiceKey(6, "UDP", A("2001:db8::1"), 443),
                ServiceKey(4, fwmark=7),
                ServiceKey(6, fwmark=8),
            ],
        )
        pool = Pool(server, {"G": group})
        pool.start()
        self.assertEqual(len(pool.applied()), 6)
        self.assertTrue(all(key(11) in e.destinations for e in pool.applied().values()))

    def test_unknownGroup(self) -> None:
        """
        An unknown group gives no service.
        """
        self.assertEqual(expandServices(vs(address=None, group="nope")), [])

    def test_fwmark(self) -> None:
        """
        A fwmark virtual server gives a fwmark service of its family.
        """
        server = vs(address=None, fwmark=3, family=6, protocol=None)
        self.assertEqual([s.key for s in expandServices(server)], [ServiceKey(6, fwmark=3)])


class DiffTests(SynchronousTestCase):
    def entry(self, *weights: tuple[int, int], scheduler: str = "rr", k: ServiceKey = KEY) -> ServiceEntry:
        return ServiceEntry(ServiceSpec(k, scheduler), {key(n): DestSpec(key(n), w) for n, w in weights})

    def test_reconcileLeavesForeign(self) -> None:
        """
        Kernel services not wanted and not owned are left alone; owned
        ones are deleted (destinations first); wanted ones are corrected.
        """
        foreign = ServiceKey(4, "TCP", A("203.0.113.5"), 80)
        stale = ServiceKey(4, "UDP", A("198.51.100.7"), 53)
        kernel = {
            foreign: self.entry((1, 1), k=foreign),
            stale: self.entry((2, 1), k=stale),
            KEY: self.entry((11, 1), (50, 9), scheduler="wlc"),
        }
        wanted = {KEY: self.entry((11, 2), (12, 1))}
        self.assertEqual(
            reconcile(wanted, kernel, owned={stale}),
            [
                DeleteDest(stale, key(2)),
                DeleteService(stale),
                EditService(ServiceSpec(KEY, "rr")),
                DeleteDest(KEY, key(50)),
                EditDest(KEY, DestSpec(key(11), 2)),
                AddDest(KEY, DestSpec(key(12), 1)),
            ],
        )

    def test_noChange(self) -> None:
        """
        Equal tables need nothing; the kernel's HASHED flag and default
        netmask do not count as differences.
        """
        kernel = {KEY: ServiceEntry(ServiceSpec(KEY, "rr", frozenset(), 0, 32), {})}
        wanted = {KEY: ServiceEntry(ServiceSpec(KEY, "rr", frozenset({"hashed"})), {})}
        self.assertEqual(diffTables(kernel, wanted), [])

    def test_flags(self) -> None:
        """
        Flag keywords map to IPVS bits and back with the scheduler's names.
        """
        self.assertEqual(flagBits({"ops", "sh-port", "flag-3"}), 0x4 | 0x10 | 0x20)
        self.assertEqual(flagNames("sh", 0x8 | 0x10), {"sh-fallback", "sh-port"})
        self.assertEqual(flagNames("rr", 0x8 | 0x2), {"flag-1"})
        self.assertEqual(ServiceSpec(KEY, "sh", frozenset({"flag-2"})).normalized().flags, {"sh-port"})
