"""
Tests for the fakes of L{tests.fakes} that stand in for an interface:
they behave as the real thing would where the tests rely on it.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.fakes.net import FakeAddressManager, FakeRouteManager, route, v4


class FakeAddressManagerTests(SynchronousTestCase):
    def test_fake(self) -> None:
        """
        The fake records calls, is idempotent and fails on unknown interfaces.
        """
        fake = FakeAddressManager(interfaces={"eth0"})
        vip = v4()
        self.assertTrue(fake.add(vip))
        self.assertTrue(fake.add(vip))
        self.assertTrue(fake.present(vip))
        self.assertFalse(fake.add(v4(ifname="eth9")))
        self.assertEqual(fake.removeStale([vip, v4(address="192.0.2.9/24")]), [vip])
        self.assertFalse(fake.present(vip))
        fake.failing.add("eth0")
        self.assertFalse(fake.add(vip))
        self.assertEqual([c[0] for c in fake.log], ["add", "add", "add", "remove", "add"])


class FakeRouteManagerTests(SynchronousTestCase):
    def test_fakeRoutes(self) -> None:
        """
        The fake keeps what was added, refuses unknown interfaces and can be
        made to fail.
        """
        fake = FakeRouteManager(interfaces={"eth0"})
        good, bad = route("203.0.113.0/24 dev eth0"), route("203.0.113.0/24 dev eth1")
        self.assertTrue(fake.add(good))
        self.assertTrue(fake.add(good))
        self.assertFalse(fake.add(bad))
        self.assertEqual(fake.installed, [good])
        self.assertTrue(fake.remove(good))
        self.assertFalse(fake.present(good))
        fake.failing = True
        self.assertFalse(fake.add(good))
        self.assertEqual([c[0] for c in fake.calls], ["add", "add", "add", "remove", "add"])
