"""
The IPVS sync daemon controller against the real kernel, in a
User-Mode-Linux guest (L{tests.integration.uml}); the guest script
L{tests.integration.uml_guest_syncd} prints JSON, asserted on here.
"""

from __future__ import annotations

import json
import os
import sys

from twisted.trial.unittest import TestCase

from tests.integration.shared import sharedFixture
from tests.integration.uml import requireUML, runInGuest

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _runGuest(module: str = "tests.integration.uml_guest_syncd", timeout: float = 90) -> dict:
    result = runInGuest(
        [sys.executable, "-m", module],
        timeout=timeout,
        cwd=_CHECKOUT,
        modules=("veth",),
    )
    if result.returncode != 0:
        raise AssertionError(f"guest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise AssertionError(f"guest output is not JSON: {e}\n{result.stdout}\n{result.stderr}") from e


#: the guest's report: one guest boot per test run, shared by trial's workers
guestReport = sharedFixture("uml-syncd", _runGuest, requires=lambda: requireUML("ipvsadm"),
                            seconds=7)


class SyncDaemonInGuestTests(TestCase):
    def setUp(self) -> None:
        requireUML("ipvsadm")
        self.report = guestReport()
        self.assertEqual(self.report["errors"], [])

    def test_startClearsLeftovers(self) -> None:
        """
        A backup daemon left running is stopped when the controller starts.
        """
        self.assertEqual(len(self.report["leftover"]), 1)
        self.assertTrue(
            self.report["leftover"][0].startswith("backup sync daemon (mcast=sy1, syncid=9,")
        )
        self.assertEqual(self.report["afterStart"], [])

    def test_followsInstance(self) -> None:
        """
        BACKUP runs a backup daemon, MASTER a master one (the backup one
        stopped), FAULT a backup one again, and stop() leaves none; the
        sync id is the VRID.
        """
        r = self.report
        self.assertEqual(
            r["backup"],
            ["backup sync daemon (mcast=sy0, syncid=51, maxlen=1472, group=224.0.0.81, "
             "port=8848, ttl=1)"],
        )
        self.assertEqual(len(r["master"]), 1)
        self.assertTrue(r["master"][0].startswith("master sync daemon (mcast=sy0, syncid=51"), r)
        self.assertTrue(r["fault"][0].startswith("backup sync daemon (mcast=sy0, syncid=51"), r)
        self.assertEqual(r["stopped"], [])
        self.assertTrue(r["masterOurs"][0].startswith("master sync daemon (mcast=sy0, syncid=51"))

    def test_options(self) -> None:
        """
        id, maxlen, port, ttl and group reach the kernel as configured
        (seen by ipvsadm and by our own dump); STOP stops the daemon.
        """
        self.assertEqual(
            self.report["options"],
            ["master sync daemon (mcast=sy0, syncid=7, maxlen=1400, group=239.1.2.3, port=9000, ttl=2)"],
        )
        self.assertEqual(
            self.report["optionsOurs"],
            ["master sync daemon (mcast=sy0, syncid=7, maxlen=1400, group=239.1.2.3, port=9000, ttl=2)"],
        )
        self.assertEqual(self.report["optionsStopped"], [])

    def test_unknownInterface(self) -> None:
        """
        An unknown interface is refused by the kernel: logged, nothing runs.
        """
        self.assertIsNone(self.report["badRunning"])
        self.assertEqual(self.report["bad"], [])
        self.assertIn("lvs_sync_daemon", " ".join(self.report["log"]))


def _runInstanceGuest() -> dict:
    return _runGuest("tests.integration.uml_guest_syncd_instance", timeout=180)


#: keepalived 2.2.7 and ours with lvs_sync_daemon_interface, in one guest boot
instanceReport = sharedFixture("uml-syncd-instance", _runInstanceGuest,
                               requires=lambda: requireUML("ipvsadm"), seconds=16)


class InstanceKeywordInGuestTests(TestCase):
    """
    The deprecated C{lvs_sync_daemon_interface} of a C{vrrp_instance}:
    keepalived 2.2.7 still runs IPVS's sync daemon on that interface for
    that instance (backup while BACKUP, master while MASTER, none after
    stop); so must ours (before: reported as not implemented, no daemon).
    """

    def test_sameDaemonsAsKeepalived(self) -> None:
        requireUML("ipvsadm")
        report = instanceReport()
        self.assertEqual(report["errors"], [])
        theirs, ours = report["keepalived"], report["ours"]
        for key in ("backup", "master", "stopped"):
            self.assertEqual(ours[key], theirs[key], f"{key}: {report}")
        # keepalived's sync id is 0 here (the VRID only when global_defs names it)
        self.assertTrue(ours["backup"] and ours["backup"][0].startswith(
            "backup sync daemon (mcast=sy1, syncid=0,"), report)
        self.assertTrue(ours["master"] and ours["master"][0].startswith(
            "master sync daemon (mcast=sy1, syncid=0,"), report)
        self.assertEqual(ours["stopped"], [])
        deprecated = "(VI_1) Specifying lvs_sync_daemon_interface against a vrrp is deprecated."
        self.assertTrue(any(deprecated in line for line in theirs["log"]), report)
        self.assertTrue(any(deprecated in line for line in ours["log"]), report)
