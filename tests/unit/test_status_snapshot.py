"""
L{keepalive_tx.status.snapshot}: the plain-data view of real running
components -- a L{KeepalivedService} whose VRRP instances run on a fake
platform and a L{Clock}, and a real L{LvsService} on an in-memory IPVS
table with checkers whose results the test sets.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.service import KeepalivedService
from keepalive_tx.status.snapshot import (
    TransitionLog,
    buildSnapshot,
    clearVrrpStats,
    formatVip,
    stateName,
)
from keepalive_tx.vrrp.machine import State
from tests.fakes.status import EPOCH, STATUS_CONFIG, StatusFixture


class SnapshotTests(StatusFixture, SynchronousTestCase):
    def test_beforeStart(self) -> None:
        """
        Before the services start there are no instances or virtual
        servers yet; the snapshot says so instead of failing.
        """
        snap = buildSnapshot(self.buildRoot())
        self.assertEqual(snap["router_id"], "lb1")
        self.assertEqual(snap["time"], EPOCH)
        self.assertEqual(snap["started"], EPOCH)
        self.assertEqual(snap["vrrp"], {"instances": [], "sync_groups": [],
                                        "trackers": {"scripts": [], "processes": []}})
        self.assertEqual(snap["reloads"], 0)
        self.assertEqual(snap["lvs"], {"virtual_servers": [], "checks_running": 0, "ipvs": None})
        self.assertIsNone(snap["smtp"])

    def test_subsystemsNotRunning(self) -> None:
        """
        A subsystem that does not run is C{None}.
        """
        result = parseText("global_defs {\n router_id x\n}\n")
        root = KeepalivedService(result.model, Clock(), vrrp=False, checkers=False)
        snap = root.snapshot()
        self.assertIsNone(snap["vrrp"])
        self.assertIsNone(snap["lvs"])

    def test_vrrpInstances(self) -> None:
        """
        Each instance reports state, wantstate, priorities, VIPs, the
        master's address and its last transition (time and reason from the
        L{TransitionLog} the service installs); sync groups list members.
        """
        self.buildRoot()
        self.start()
        # VI_2 keeps hearing a higher-priority master; VI_1's down timer
        # expires but the group holds it in BACKUP (VI_2 does not want MASTER).
        for _ in range(5):
            self.clock.advance(1)
            self.advert(52, 200)
        snap = self.root.snapshot()
        instances = {i["name"]: i for i in snap["vrrp"]["instances"]}
        self.assertEqual(list(instances), ["VI_1", "VI_2", "VI_3"])
        vi1, vi2, vi3 = instances["VI_1"], instances["VI_2"], instances["VI_3"]
        self.assertEqual((vi1["state"], vi1["wantstate"]), ("BACKUP", "MASTER"))
        self.assertEqual((vi2["state"], vi2["wantstate"]), ("BACKUP", "BACKUP"))
        self.assertEqual(vi2["master_address"], "192.0.2.12")
        self.assertEqual(vi2["master_priority"], 200)
        self.assertEqual(vi1["vrid"], 51)
        self.assertEqual(vi1["interface"], "eth0")
        self.assertEqual(vi1["base_priority"], 150)
        self.assertEqual(vi1["effective_priority"], 150)
        self.assertEqual(vi1["auth_type"], "PASS")
        self.assertEqual(vi1["vips"], [{"address": "192.0.2.100/24", "dev": "eth0"},
                                       {"address": "192.0.2.101/32", "dev": "eth0"}])
        self.assertEqual(vi1["evips"], [{"address": "198.51.100.5/24", "dev": "eth0"}])
        self.assertFalse(vi1["vips_set"])
        self.assertEqual(vi1["sync_group"], "G1")
        self.assertEqual(vi1["last_transition"], EPOCH)
        self.assertEqual(vi1["last_transition_reason"], "init")
        self.assertEqual(vi1["transitions"], 1)
        self.assertEqual(snap["vrrp"]["sync_groups"],
                         [{"name": "G1", "state": "BACKUP", "members": ["VI_1", "VI_2"]}])
        self.assertEqual(vi3["state"], "MASTER")
        self.assertIsNone(vi3["sync_group"])
        self.assertNotIn("s3cr3t", json.dumps(snap))

    def test_masterTransition(self) -> None:
        """
        An instance entering MASTER records the time and reason, its VIPs
        are set and it is its own master.
        """
        self.buildRoot(STATUS_CONFIG.replace("VI_2\n", ""))
        self.start()
        self.clock.advance(3)
        self.assertEqual(self.root.snapshot()["vrrp"]["instances"][0]["state"], "BACKUP")
        self.clock.advance(0.5)  # Master_Down_Interval 3.41 s for priority 150
        vi1 = self.root.snapshot()["vrrp"]["instances"][0]
        self.assertEqual(vi1["state"], "MASTER")
        self.assertTrue(vi1["vips_set"])
        self.assertEqual(vi1["master_address"], "192.0.2.11")
        self.assertEqual(vi1["last_transition_reason"], "master down timer expired")
        self.assertEqual(vi1["last_transition"], EPOCH + 3.5)
        self.assertEqual(vi1["transitions"], 2)
        self.assertEqual(vi1["stats"]["become_master"], 1)
        self.assertGreaterEqual(vi1["stats"]["advert_sent"], 1)

    def test_faults(self) -> None:
        """
        An instance whose interface is down is in FAULT and names the fault.
        """
        self.buildRoot(down=("eth1",))
        self.start()
        vi3 = self.root.snapshot()["vrrp"]["instances"][2]
        self.assertEqual(vi3["state"], "FAULT")
        self.assertEqual(vi3["faults"], ["interface eth1"])

    def test_receiveStats(self) -> None:
        """
        Receive errors are counted under keepalived's names; the snapshot
        also carries the SNMP-only counters.
        """
        self.buildRoot()
        self.start()
        self.advert(52, 200, ttl=64)
        self.advert(52, 200, ttl=64)
        self.advert(52, 200)
        stats = self.root.snapshot()["vrrp"]["instances"][1]["stats"]
        self.assertEqual(stats["ip_ttl_err"], 2)
        self.assertEqual(stats["advert_rcvd"], 1)
        self.assertEqual(stats["vers_err"], 0)
        self.assertIn("chk_err", stats)

    def test_clearStats(self) -> None:
        """
        L{clearVrrpStats} zeroes the receive counters, the send counters
        and the machine's counters.
        """
        self.buildRoot(STATUS_CONFIG.replace("VI_2\n", ""))
        self.start()
        self.advert(52, 200, ttl=64)
        self.clock.advance(5)
        instances = list(self.root.vrrpService.instances.values())
        self.assertGreater(instances[0].stats["advert_sent"], 0)
        clearVrrpStats(instances)
        for snap in self.root.snapshot()["vrrp"]["instances"]:
            self.assertEqual(set(snap["stats"].values()), {0}, snap["name"])
        for instance in instances:
            self.assertEqual(instance.machine.stats.becomeMaster, 0)
            self.assertEqual(instance.machine.stats.advertsReceived, 0)
            self.assertEqual(instance.counters["ip_ttl_err"], 0)

    def test_virtualServers(self) -> None:
        """
        Virtual servers report quorum, live weight, sorry server and each
        real server's alive state, weight and checkers.
        """
        self.buildRoot()
        self.start()
        self.checkers["192.0.2.12"].ok = False
        self.clock.pump([0.5] * 10)
        lvs = self.root.snapshot()["lvs"]
        self.assertEqual(lvs["checks_running"], 2)
        [vs] = lvs["virtual_servers"]
        self.assertEqual(vs["name"], "[192.0.2.200]:tcp:80")
        self.assertEqual((vs["quorum"], vs["hysteresis"]), (2, 0))
        self.assertFalse(vs["quorum_up"])
        self.assertEqual(vs["live_weight"], 1)
        self.assertEqual(vs["sorry_server"], {"address": "192.0.2.99", "port": 80,
                                              "active": True})
        rs11, rs12 = vs["real_servers"]
        self.assertEqual((rs11["name"], rs11["alive"], rs11["weight"]),
                         ("[192.0.2.11]:tcp:80", True, 1))
        self.assertEqual((rs12["alive"], rs12["configured_weight"], rs12["inhibit_on_failure"]),
                         (False, 2, True))
        [chk] = rs12["checkers"]
        self.assertEqual(chk["kind"], "TCP_CHECK")
        self.assertEqual(chk["target"], "[192.0.2.12]:tcp:80")
        self.assertFalse(chk["up"])
        self.assertFalse(chk["last_ok"])
        self.assertEqual(chk["last_reason"], "TCP connection failed")
        self.assertTrue(rs11["checkers"][0]["last_ok"])
        # the services owned (the kernel's table itself is not read)
        self.assertEqual(lvs["ipvs"], {"dry_run": False, "owned": ["[192.0.2.200]:tcp:80"]})
        json.dumps(lvs)

    def test_mailer(self) -> None:
        """
        The mailer's counters are reported as they are.
        """
        class Mailer:
            def stats(self):
                return {"sent": 3, "failed_attempts": 1, "dropped": 0, "queued": 2}

        root = self.buildRoot()
        root.mailer = Mailer()
        self.assertEqual(root.snapshot()["smtp"],
                         {"sent": 3, "failed_attempts": 1, "dropped": 0, "queued": 2})


class HelperTests(SynchronousTestCase):
    def test_stateName(self) -> None:
        self.assertEqual([stateName(s) for s in State],
                         ["INIT", "BACKUP", "MASTER", "FAULT", "STOP"])
        self.assertEqual(stateName(7), "UNKNOWN(7)")

    def test_transitionLog(self) -> None:
        clock = Clock()
        clock.advance(10)
        log = TransitionLog(clock)
        instance = type("I", (), {"name": "VI_1"})()
        clock.advance(2)
        log.instanceStateChanged(instance, State.INIT, State.BACKUP, "init")
        clock.advance(3)
        log.instanceStateChanged(instance, State.BACKUP, State.MASTER, "x")
        last = log.lastFor("VI_1")
        self.assertEqual((last.time, last.old, last.new, last.reason),
                         (15, State.BACKUP, State.MASTER, "x"))
        self.assertEqual(log.counts["VI_1"], 2)
        self.assertEqual(log.started, 10)
        self.assertIsNone(log.lastFor("nope"))

    def test_formatVip(self) -> None:
        """
        keepalived's wording: host prefix left out, C{dev}, C{scope},
        IPv6 C{preferred_lft}, C{set} while installed.
        """
        model = parseText(
            "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n"
            " virtual_ipaddress {\n 192.0.2.1/24 dev eth1 label eth1:1\n 192.0.2.2\n }\n}\n"
            "vrrp_instance W {\n interface eth0\n virtual_router_id 2\n native_ipv6\n"
            " virtual_ipaddress {\n 2001:db8::1/64\n 2001:db8::2/64 home -nodad noprefixroute\n"
            " }\n}\n").model
        a, b = model.vrrpInstances[0].virtualIpaddresses
        c, d = model.vrrpInstances[1].virtualIpaddresses
        self.assertEqual(formatVip(a, "eth0", True),
                         "192.0.2.1/24 dev eth1 scope global label eth1:1 set")
        self.assertEqual(formatVip(b, "eth0"), "192.0.2.2 dev eth0 scope global")
        self.assertEqual(formatVip(c, "eth0", True),
                         "2001:db8::1/64 dev eth0 scope global preferred_lft forever set")
        self.assertEqual(formatVip(d, "eth0"), "2001:db8::2/64 dev eth0 scope global home -nodad"
                                               " noprefixroute preferred_lft forever")


class TrackersSnapshotTests(SynchronousTestCase):
    def test_scriptsAndProcesses(self) -> None:
        """
        Tracked scripts show their state and last exit status (or why they
        are disabled); tracked processes their state and how many run.
        """
        from types import SimpleNamespace

        from twisted.internet.task import Clock

        from keepalive_tx.config import parseText
        from keepalive_tx.scripts.runner import ScriptResult
        from keepalive_tx.status.snapshot import trackersSnapshot
        from keepalive_tx.vrrp.processes import ProcessTracker
        from keepalive_tx.vrrp.scripts import VrrpScriptService

        model = parseText(
            'vrrp_script chk {\n script "/bin/chk"\n}\n'
            'vrrp_script bad {\n script "/bin/bad"\n}\n'
            "vrrp_track_process web {\n process nginx\n}\n").model

        class Runner:
            def __init__(self, config) -> None:
                self.error = "Unsafe permissions" if config.name == "bad" else None

            def run(self, extraArgs=(), timeout=None):
                from twisted.internet.defer import succeed

                return succeed(ScriptResult(exitCode=3))

        clock = Clock()
        scripts = VrrpScriptService(clock, model.vrrpScripts, runnerFactory=Runner)
        scripts.startService()
        processes = ProcessTracker(clock, model.trackProcesses,
                                   {7: ("nginx", b"nginx\0")}.get)
        processes.scan([7])
        snap = trackersSnapshot(SimpleNamespace(scripts=scripts, processes=processes))
        self.assertEqual(snap, {
            "scripts": [{"name": "chk", "state": "KO", "last_status": 3, "phase": "idle"},
                        {"name": "bad", "state": "disabled", "reason": "Unsafe permissions"}],
            "processes": [{"name": "web", "state": "UP", "running": 1}],
        })
        scripts.stopService()
        self.assertEqual(trackersSnapshot(None), {"scripts": [], "processes": []})
