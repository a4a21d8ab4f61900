"""
L{keepalive_tx.status.dumps}: keepalived's dump files (layouts, paths,
atomic writes), the signal wiring and C{--signum}.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import tap
from keepalive_tx.config import parseText
from keepalive_tx.status import dumps
from keepalive_tx.status.dumps import (
    DumpSignals,
    StateDumper,
    dataDumpPaths,
    formatCheckData,
    formatJson,
    formatStats,
    formatVrrpData,
    signalNumber,
    tmpDir,
    writeAtomically,
)
from keepalive_tx.status.web import StatusService
from tests.fakes.status import EPOCH, STATUS_CONFIG, FakeSignalReactor, StatusFixture

#: The "data" keys of keepalived 2.2.7's keepalived.json for an instance
#: with a notify_master script, VIPs, eVIPs and PASS authentication, in its
#: order (captured from Debian's keepalived 2.2.7 on SIGRTMIN+2).
KEEPALIVED_DATA_KEYS = [
    "iname", "dont_track_primary", "skip_check_adv_addr", "strict_mode", "vmac_ifname",
    "ifp_ifname", "master_priority", "last_transition", "garp_delay", "garp_refresh", "garp_rep",
    "garp_refresh_rep", "garp_lower_prio_delay", "garp_lower_prio_rep", "lower_prio_no_advert",
    "higher_prio_send_advert", "vrid", "base_priority", "effective_priority", "vipset",
    "promote_secondaries", "adver_int", "master_adver_int", "accept", "nopreempt",
    "preempt_delay", "state", "wantstate", "version", "smtp_alert", "notify_deleted",
    "script_master", "vips", "evips", "auth_type", "auth_data",
]
KEEPALIVED_STATS_KEYS = [
    "advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
    "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err",
    "invalid_authtype", "authtype_mismatch", "auth_failure", "pri_zero_rcvd", "pri_zero_sent",
]


def model(globalDefs: str = "", top: str = ""):
    result = parseText(f"{top}global_defs {{\n{globalDefs}\n}}\n")
    assert result.model is not None
    return result.model


class PathTests(SynchronousTestCase):
    def test_tmpDir(self) -> None:
        """
        C{$TMPDIR} only when it is an absolute directory; else C{/tmp}.
        """
        here = os.path.abspath(self.mktemp())
        os.mkdir(here)
        self.assertEqual(tmpDir({"TMPDIR": here}), here)
        self.assertEqual(tmpDir({}), "/tmp")
        self.assertEqual(tmpDir({"TMPDIR": "relative/dir"}), "/tmp")
        self.assertEqual(tmpDir({"TMPDIR": here + "/missing"}), "/tmp")
        plain = os.path.join(here, "file")
        Path(plain).write_text("")
        self.assertEqual(tmpDir({"TMPDIR": plain}), "/tmp")

    def test_dataPaths(self) -> None:
        env = {}
        self.assertEqual(dataDumpPaths(model(), env),
                         ("/tmp/keepalived.data", "/tmp/keepalived_check.data"))
        self.assertEqual(dataDumpPaths(model("state_dump_file /var/run/ka/state.txt"), env),
                         ("/var/run/ka/state.txt", "/var/run/ka/state_check.txt"))
        self.assertEqual(dataDumpPaths(model("state_dump_file /var/run/ka/"), env),
                         ("/var/run/ka/keepalived.data", "/var/run/ka/keepalived_check.data"))

    def test_dataUseInstance(self) -> None:
        """
        With C{data_use_instance}, C{.INSTANCE} (or C{.NETNS_INSTANCE})
        goes before the extension, as keepalived 2.2.7 writes
        C{keepalived.myinst.data}; without an instance nothing changes.
        """
        env = {}
        self.assertEqual(
            dataDumpPaths(model("data_use_instance", top="instance myinst\n"), env)[0],
            "/tmp/keepalived.myinst.data")
        self.assertEqual(
            dataDumpPaths(model("data_use_instance", top="instance i\nnet_namespace blue\n"),
                          env),
            ("/tmp/keepalived.blue_i.data", "/tmp/keepalived.blue_i_check.data"))
        self.assertEqual(dataDumpPaths(model(top="instance myinst\n"), env)[0],
                         "/tmp/keepalived.data")
        self.assertEqual(dataDumpPaths(model("data_use_instance"), env)[0],
                         "/tmp/keepalived.data")


class WriteTests(SynchronousTestCase):
    def test_atomicMode0600(self) -> None:
        """
        The file is replaced whole, is mode 0600, and no temporary is left.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "keepalived.stats")
        Path(path).write_text("old\n")
        os.chmod(path, 0o644)
        writeAtomically(path, "new\n")
        self.assertEqual(Path(path).read_text(), "new\n")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(os.listdir(directory), ["keepalived.stats"])

    def test_missingDirectory(self) -> None:
        self.assertRaises(OSError, writeAtomically, self.mktemp() + "/x/y", "z")


class FormatTests(StatusFixture, SynchronousTestCase):
    def running(self, text: str = STATUS_CONFIG):
        self.buildRoot(text.replace("VI_2\n", ""))
        self.start()
        self.clock.advance(3)
        self.advert(52, 200, ttl=64)
        self.advert(52, 200)  # VI_2 stays BACKUP
        self.clock.advance(1)  # VI_1 becomes MASTER
        return self.root

    def test_statsLayout(self) -> None:
        """
        C{keepalived.stats}: keepalived's exact labels and indentation.
        """
        root = self.running()
        vi2 = root.vrrpService.instances["VI_2"]
        text = formatStats([vi2])
        self.assertEqual(text, (
            "VRRP Instance: VI_2\n"
            "  Advertisements:\n"
            "    Received: 1\n"
            "    Sent: 0\n"
            "  Became master: 0\n"
            "  Released master: 0\n"
            "  Packet Errors:\n"
            "    Length: 0\n"
            "    TTL: 1\n"
            "    Invalid Type: 0\n"
            "    Advertisement Interval: 0\n"
            "    Address List: 0\n"
            "  Authentication Errors:\n"
            "    Invalid Type: 0\n"
            "    Type Mismatch: 0\n"
            "    Failure: 0\n"
            "  Priority Zero:\n"
            "    Received: 0\n"
            "    Sent: 0\n"))
        vi1 = root.vrrpService.instances["VI_1"]
        self.assertIn("VRRP Instance: VI_1\n  Advertisements:\n    Received: 0\n    Sent: 1\n"
                      "  Became master: 1\n", formatStats([vi1, vi2]))

    def test_jsonVersion1(self) -> None:
        """
        C{keepalived.json} version 1: an array of C{{"data", "stats"}} with
        keepalived's keys in its order; the password is masked.
        """
        root = self.running()
        text = formatJson(root.vrrpService.instances.values(), root.transitions)
        self.assertTrue(text.endswith("]\n"))
        self.assertNotIn("\n", text[:-1])
        self.assertNotIn('": ', text)
        self.assertNotIn(', "', text)
        doc = json.loads(text)
        self.assertEqual([e["data"]["iname"] for e in doc], ["VI_1", "VI_2", "VI_3"])
        vi1, vi2 = doc[0], doc[1]
        self.assertEqual(list(vi1["data"]), KEEPALIVED_DATA_KEYS)
        self.assertEqual(list(vi1["stats"]), KEEPALIVED_STATS_KEYS)
        d = vi1["data"]
        self.assertEqual((d["state"], d["wantstate"], d["vipset"]), (2, 2, True))
        self.assertEqual(d["last_transition"], EPOCH + 4)
        self.assertEqual(d["script_master"], "'/bin/echo' 'master'")
        self.assertEqual(d["vips"], ["192.0.2.100/24 dev eth0 scope global set",
                                     "192.0.2.101 dev eth0 scope global set"])
        self.assertEqual(d["evips"], ["198.51.100.5/24 dev eth0 scope global set"])
        self.assertEqual((d["auth_type"], d["auth_data"]), (1, "********"))
        self.assertNotIn("s3cr3t", text)
        self.assertEqual((d["adver_int"], d["garp_delay"], d["accept"]), (1, 5, 1))
        self.assertEqual(vi1["stats"]["become_master"], 1)
        self.assertEqual(vi2["data"]["master_priority"], 200)
        self.assertEqual((vi2["data"]["state"], vi2["data"]["vipset"]), (1, False))
        self.assertEqual(vi2["data"]["vips"], ["192.0.2.102/24 dev eth0 scope global"])
        self.assertNotIn("evips", vi2["data"])
        self.assertNotIn("auth_data", vi2["data"])
        self.assertEqual(vi2["data"]["auth_type"], 0)
        self.assertEqual(vi2["stats"]["ip_ttl_err"], 1)
        self.assertEqual(doc[2]["data"]["track_ifp"], ["eth1"])

    def test_jsonVersion2(self) -> None:
        root = self.running()
        doc = json.loads(formatJson(root.vrrpService.instances.values(), root.transitions, 2))
        self.assertEqual(list(doc), ["vrrp", "track_process"])
        self.assertEqual(len(doc["vrrp"]), 3)
        self.assertEqual(doc["track_process"], [])

    def test_vrrpData(self) -> None:
        """
        C{keepalived.data}: keepalived's section headers and C{Key = value}
        lines.
        """
        root = self.running()
        text = formatVrrpData(root.model, root.vrrpService, root.transitions, "lb1")
        lines = text.splitlines()
        self.assertEqual(lines[0], "------< Global definitions >------")
        self.assertIn(" Router ID = lb1", lines)
        self.assertIn("------< VRRP Topology >------", lines)
        start = lines.index(" VRRP Instance = VI_1")
        block = lines[start:lines.index(" VRRP Instance = VI_2")]
        for expected in ("   State = MASTER", "   Wantstate = MASTER", "   Interface = eth0",
                         "   Virtual Router ID = 51", "   Priority = 150",
                         "   Effective priority = 150", "   Advert interval = 1 sec",
                         "   Authentication type = SIMPLE_PASSWORD", "   Password = ********",
                         "   Virtual IP (2):", "     192.0.2.100/24 dev eth0 scope global set",
                         "   Virtual IP Excluded :", "   Using src_ip = 192.0.2.11",
                         "   Multicast address 224.0.0.18",
                         "   Master state transition script = '/bin/echo' 'master'"):
            self.assertIn(expected, block)
        last = [line for line in block if line.startswith("   Last transition = ")]
        self.assertEqual(len(last), 1)
        self.assertTrue(last[0].startswith(f"   Last transition = {int(EPOCH) + 4}.250000 ("))
        self.assertIn(" VRRP Instance = VI_3", lines)
        self.assertNotIn("s3cr3t", text)

    def test_syncGroupsInData(self) -> None:
        self.buildRoot()
        self.start()
        text = formatVrrpData(self.root.model, self.root.vrrpService, self.root.transitions)
        self.assertIn("------< VRRP Sync groups >------\n"
                      " VRRP Sync Group = G1, BACKUP\n"
                      "   VRRP member instances :\n"
                      "     VI_1\n"
                      "     VI_2\n", text)

    def test_checkData(self) -> None:
        self.buildRoot()
        self.start()
        self.checkers["192.0.2.12"].ok = False
        self.clock.pump([0.5] * 10)
        text = formatCheckData(self.root.model, self.root.lvsService, "lb1")
        self.assertIn("------< LVS Topology >------\n"
                      " Virtual Server = [192.0.2.200]:tcp:80\n"
                      "   Scheduler = wrr\n"
                      "   Quorum = 2, hysteresis = 0\n"
                      "   Quorum state = DOWN\n"
                      "   Live weight = 1\n"
                      "   Sorry server = [192.0.2.99]:80 (active)\n"
                      "   Real Server = [192.0.2.11]:tcp:80\n"
                      "     Alive = yes\n", text)
        self.assertIn("   Real Server = [192.0.2.12]:tcp:80\n"
                      "     Alive = no\n"
                      "     Weight = 2 (configured 2)\n"
                      "     Inhibit on failure = yes\n"
                      "     Checker = TCP_CHECK [192.0.2.12]:tcp:80, state DOWN, "
                      "last result failed (TCP connection failed)\n", text)


class DumperTests(StatusFixture, SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.mkdir(self.directory)
        self.buildRoot()
        self.start()
        self.clock.advance(5)
        self.dumper = StateDumper(self.root, environ={"TMPDIR": self.directory}, pid=4242)

    def test_dumpData(self) -> None:
        """
        SIGUSR1 writes the VRRP and the checker data with keepalived's log
        lines.
        """
        with capturedLogs() as events:
            written = self.dumper.dumpData()
        self.assertEqual(written, [os.path.join(self.directory, "keepalived.data"),
                                   os.path.join(self.directory, "keepalived_check.data")])
        self.assertIn(" VRRP Instance = VI_1\n", Path(written[0]).read_text())
        self.assertIn(" Virtual Server = [192.0.2.200]:tcp:80\n", Path(written[1]).read_text())
        lines = [formatEvent(e) for e in events]
        self.assertIn("Printing VRRP data for process(4242) on signal", lines)
        self.assertIn("Printing checker data for process(4242) on signal", lines)

    def test_dumpJson(self) -> None:
        path = self.dumper.dumpJson()
        self.assertEqual(path, os.path.join(self.directory, "keepalived.json"))
        self.assertEqual(len(json.loads(Path(path).read_text())), 3)

    def test_statsClear(self) -> None:
        """
        STATS_CLEAR writes the counters, then zeroes them.
        """
        with capturedLogs() as events:
            path = self.dumper.dumpStats(clear=True)
        self.assertIn("Became master: 1\n", Path(path).read_text())
        self.assertIn("Printing and clearing VRRP stats for process(4242) on signal",
                      [formatEvent(e) for e in events])
        self.dumper.dumpStats()
        self.assertNotIn("Became master: 1\n", Path(path).read_text())
        self.assertIn("Became master: 0\n", Path(path).read_text())

    def test_writeFailureLogged(self) -> None:
        """
        A dump that cannot be written is logged, never raised.
        """
        dumper = StateDumper(self.root, environ={}, pid=1)

        def refuse(path: str, text: str) -> None:
            raise PermissionError(13, "denied")

        self.patch(dumps, "writeAtomically", refuse)
        with capturedLogs() as events:
            self.assertIsNone(dumper.dumpJson())
        self.assertIn("Cannot write VRRP json to /tmp/keepalived.json: denied",
                      [formatEvent(e) for e in events])

    def test_noVrrp(self) -> None:
        """
        Without a VRRP subsystem, the stats and JSON dumps write nothing.
        """
        self.root.vrrpService = None
        self.assertIsNone(self.dumper.dumpStats())
        self.assertIsNone(self.dumper.dumpJson())
        self.assertEqual(self.dumper.dumpData(),
                         [os.path.join(self.directory, "keepalived_check.data")])


class SignalTests(SynchronousTestCase):
    def test_signalNumbers(self) -> None:
        """
        keepalived 2.2.7's C{--signum} answers on Linux.
        """
        self.assertEqual(
            {n: signalNumber(n) for n in ("STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR",
                                          "JSON")},
            {"STOP": 15, "RELOAD": 1, "DATA": 10, "STATS": 12,
             "STATS_CLEAR": int(signal.SIGRTMAX) - 1, "JSON": int(signal.SIGRTMIN) + 2})
        self.assertIsNone(signalNumber("TDUMP"))
        self.assertIsNone(signalNumber("data"))

    def dumps(self):
        done: list[str] = []

        class Dumper:
            def actions(self):
                return {name: (lambda name=name: done.append(name))
                        for name in ("DATA", "STATS", "STATS_CLEAR", "JSON")}

        return Dumper(), done

    def test_installAndRestore(self) -> None:
        """
        Starting installs a handler for each dump signal that only
        schedules the dump on the reactor; stopping restores the previous
        handlers.
        """
        installed: dict[int, object] = {}

        def install(signum, handler):
            old = installed.get(signum, f"old-{signum}")
            installed[signum] = handler
            return old

        reactor = FakeSignalReactor()
        dumper, done = self.dumps()
        service = DumpSignals(reactor, dumper, install=install)
        service.startService()
        self.assertEqual(sorted(installed), sorted([10, 12, signalNumber("STATS_CLEAR"),
                                                    signalNumber("JSON")]))
        installed[signal.SIGUSR2](signal.SIGUSR2, None)
        installed[signalNumber("JSON")](signalNumber("JSON"), None)
        self.assertEqual(done, [])
        reactor.run()
        self.assertEqual(done, ["STATS", "JSON"])
        service.stopService()
        self.assertEqual(installed[signal.SIGUSR1], "old-10")

    def test_realSignal(self) -> None:
        """
        A real SIGUSR1 to this process reaches the dump through the reactor.
        """
        reactor = FakeSignalReactor()
        dumper, done = self.dumps()
        service = DumpSignals(reactor, dumper)
        previous = signal.getsignal(signal.SIGUSR1)
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        os.kill(os.getpid(), signal.SIGUSR1)
        reactor.run()
        self.assertEqual(done, ["DATA"])
        service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGUSR1), previous)

    def test_failingDumpLogged(self) -> None:
        class Dumper:
            def actions(self):
                return {n: (lambda: 1 / 0) for n in ("DATA", "STATS", "STATS_CLEAR", "JSON")}

        installed: dict = {}
        reactor = FakeSignalReactor()
        service = DumpSignals(reactor, Dumper(), install=lambda s, h: installed.setdefault(s, h))
        service.startService()
        installed[signal.SIGUSR1](signal.SIGUSR1, None)
        reactor.run()
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


GOOD = """\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


class TapTests(SynchronousTestCase):
    def setUp(self) -> None:
        from tests.fakes.service import hostInterfaces

        hostInterfaces(self)

    def parse(self, *argv: str):
        options = tap.Options()
        options.stdout, options.stderr = io.StringIO(), io.StringIO()
        code = None
        try:
            options.parseOptions(list(argv))
        except SystemExit as e:
            code = e.code
        return options, code, options.stdout.getvalue(), options.stderr.getvalue()

    def test_signum(self) -> None:
        """
        C{--signum NAME} prints the number like keepalived and exits 0; an
        unknown name says C{Unknown sigfunc NAME} and exits 1.
        """
        self.assertEqual(self.parse("--signum", "JSON")[1:],
                         (0, f"{int(signal.SIGRTMIN) + 2}\n", ""))
        self.assertEqual(self.parse("--signum=DATA")[1:], (0, "10\n", ""))
        self.assertEqual(self.parse("--signum", "FOO")[1:], (1, "", "Unknown sigfunc FOO\n"))

    def test_makeServiceAddsDumpsAndStatus(self) -> None:
        """
        makeService adds the dump-signal service (process level) and, with
        C{--status}, the status listener.
        """
        path = self.mktemp()
        Path(path).write_text(GOOD)
        options, _, _, _ = self.parse("-c", path, "-P", "--status", "tcp:0:interface=127.0.0.1")
        service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertIsInstance(service.getServiceNamed("dump-signals"), DumpSignals)
        status = service.getServiceNamed("status")
        self.assertIsInstance(status, StatusService)
        self.assertEqual(status.description, "tcp:0:interface=127.0.0.1")
        options, _, _, _ = self.parse("-c", path, "-P")
        service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertRaises(KeyError, service.getServiceNamed, "status")
