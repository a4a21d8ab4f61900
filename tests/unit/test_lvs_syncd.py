"""
Tests for L{keepalive_tx.lvs.syncd} without a kernel: the daemon message
codec and the controller following an instance's state, over a fake
netlink channel.  The kernel side is in L{tests.integration.test_lvs_syncd}.
"""

from __future__ import annotations

import errno
import struct
from ipaddress import ip_address

from pyroute2.netlink.generic import ipvs as genl
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config.model import LvsSyncDaemon
from keepalive_tx.lvs.backend import IPVSError
from keepalive_tx.lvs.syncd import (
    BACKUP,
    MASTER,
    DaemonSpec,
    SyncDaemonController,
    SyncDaemons,
    daemonAttrs,
    daemonFromMessage,
    daemonMessage,
)
from keepalive_tx.vrrp.machine import State
from tests.fakes.lvs import FakeSyncdChannel, reparse


class Instance:
    def __init__(self, name: str) -> None:
        self.name = name


class CodecTests(SynchronousTestCase):
    def test_roundTrip(self) -> None:
        """
        Daemon specs decode to what was encoded, IPv4 and IPv6 groups.
        """
        specs = [
            DaemonSpec(MASTER, "eth0", 51),
            DaemonSpec(BACKUP, "eth1", 7, 1400, ip_address("239.1.2.3"), 9000, 2),
            DaemonSpec(MASTER, "eth1", 255, 0, ip_address("ff02::81"), 8848, 0),
        ]
        for spec in specs:
            msg = daemonMessage(genl.IPVS_CMD_NEW_DAEMON, daemonAttrs(spec))
            self.assertEqual(daemonFromMessage(reparse(msg)), spec)

    def test_optionalAttributesOnlyWhenSet(self) -> None:
        """
        Like libipvs, unset options are left out (the kernel's defaults
        apply); state, interface and sync id are always sent.
        """
        names = [n for n, _ in daemonAttrs(DaemonSpec(MASTER, "eth0", 51))]
        self.assertEqual(
            names,
            ["IPVS_DAEMON_ATTR_STATE", "IPVS_DAEMON_ATTR_MCAST_IFN", "IPVS_DAEMON_ATTR_SYNC_ID"],
        )

    def test_portIsHostOrder(self) -> None:
        """
        The port goes out as a native u16 (the kernel converts it), the
        IPv4 group in network order.
        """
        msg = daemonMessage(
            genl.IPVS_CMD_NEW_DAEMON,
            daemonAttrs(DaemonSpec(MASTER, "eth0", 1, group=ip_address("239.1.2.3"), port=9000)),
        )
        msg["header"]["type"] = 42
        msg.encode()
        data = bytes(msg.data)
        self.assertIn(struct.pack("=HHH", 6, 7, 9000), data)
        self.assertIn(struct.pack("=HH", 8, 5) + bytes([239, 1, 2, 3]), data)

    def test_garbage(self) -> None:
        self.assertIsNone(daemonFromMessage(object()))

    def test_describe(self) -> None:
        self.assertEqual(
            DaemonSpec(BACKUP, "eth0", 51, port=8848).describe(),
            "backup sync daemon (mcast=eth0, syncid=51, port=8848)",
        )


class SyncDaemonsTests(SynchronousTestCase):
    def test_requests(self) -> None:
        """
        start/stop/running send NEW/DEL/GET with the right attributes.
        """
        channel = FakeSyncdChannel()
        channel.daemons = [DaemonSpec(BACKUP, "eth0", 3)]
        d = SyncDaemons(channel)
        d.start(DaemonSpec(MASTER, "eth0", 3, ttl=4))
        d.stop(MASTER)
        self.assertEqual(d.running(), [DaemonSpec(BACKUP, "eth0", 3)])
        self.assertEqual(
            channel.requests[:2],
            [
                (
                    genl.IPVS_CMD_NEW_DAEMON,
                    {
                        "IPVS_DAEMON_ATTR_STATE": MASTER,
                        "IPVS_DAEMON_ATTR_MCAST_IFN": "eth0",
                        "IPVS_DAEMON_ATTR_SYNC_ID": 3,
                        "IPVS_DAEMON_ATTR_MCAST_TTL": 4,
                    },
                ),
                (genl.IPVS_CMD_DEL_DAEMON, {"IPVS_DAEMON_ATTR_STATE": MASTER}),
            ],
        )
        self.assertEqual(channel.requests[2][0], genl.IPVS_CMD_GET_DAEMON)


class ControllerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.channel = FakeSyncdChannel()
        self.channel.errors = {
            (genl.IPVS_CMD_DEL_DAEMON, MASTER): errno.ESRCH,
            (genl.IPVS_CMD_DEL_DAEMON, BACKUP): errno.ESRCH,
        }
        self.controller = SyncDaemonController(
            LvsSyncDaemon(interface="eth0", instance="VI_1"),
            vrid=51,
            daemons=SyncDaemons(self.channel),
        )
        self.vi = Instance("VI_1")

    def change(self, new: State, old: State = State.INIT, instance=None) -> None:
        self.controller.instanceStateChanged(instance or self.vi, old, new, "test")

    def test_startStopsLeftovers(self) -> None:
        """
        start() opens the socket and stops any master and backup daemon,
        without complaint when none runs.
        """
        with capturedLogs() as logs:
            self.controller.start()
        self.assertEqual(self.channel.opened, 1)
        self.assertEqual(self.channel.commands(), [("del", MASTER), ("del", BACKUP)])
        self.assertEqual([e for e in logs if e.get("log_level").name == "error"], [])

    def test_followsState(self) -> None:
        """
        BACKUP starts a backup daemon, MASTER swaps it for a master one,
        FAULT goes back to backup, STOP stops it; repeats change nothing.
        """
        self.controller.start()
        self.channel.requests.clear()
        self.channel.errors.clear()
        self.change(State.BACKUP)
        self.change(State.BACKUP)
        self.assertEqual(self.controller.running, BACKUP)
        self.change(State.MASTER, State.BACKUP)
        self.assertEqual(self.controller.running, MASTER)
        self.change(State.FAULT, State.MASTER)
        self.change(State.STOP, State.FAULT)
        self.assertIsNone(self.controller.running)
        self.assertEqual(
            self.channel.commands(),
            [
                ("del", MASTER),
                ("new", BACKUP),
                ("del", BACKUP),
                ("new", MASTER),
                ("del", MASTER),
                ("new", BACKUP),
                ("del", BACKUP),
            ],
        )
        new = self.channel.requests[1][1]
        self.assertEqual(new["IPVS_DAEMON_ATTR_SYNC_ID"], 51)  # the VRID
        self.assertEqual(new["IPVS_DAEMON_ATTR_MCAST_IFN"], "eth0")
        self.assertEqual(new["IPVS_DAEMON_ATTR_MCAST_PORT"], 8848)

    def test_otherInstancesIgnored(self) -> None:
        self.controller.start()
        self.channel.requests.clear()
        self.change(State.MASTER, instance=Instance("VI_2"))
        self.assertEqual(self.channel.requests, [])
        self.assertIsNone(self.controller.running)

    def test_notStartedIgnores(self) -> None:
        """
        Before start() (socket not open) state changes do nothing.
        """
        self.change(State.MASTER)
        self.assertEqual(self.channel.requests, [])

    def test_stop(self) -> None:
        """
        stop() stops the running daemon and closes the socket.
        """
        self.controller.start()
        self.change(State.MASTER)
        self.channel.requests.clear()
        self.controller.stop()
        self.assertEqual(self.channel.commands(), [("del", MASTER)])
        self.assertEqual(self.channel.closed, 1)
        self.assertIsNone(self.controller.running)

    def test_options(self) -> None:
        """
        id, maxlen, port, ttl and group reach the kernel.
        """
        c = SyncDaemonController(
            LvsSyncDaemon(
                interface="eth1",
                instance="VI_1",
                syncId=7,
                maxlen=1400,
                port=9000,
                ttl=2,
                group=ip_address("239.1.2.3"),
            ),
            vrid=51,
            daemons=SyncDaemons(self.channel),
        )
        c.start()
        c.instanceStateChanged(self.vi, State.INIT, State.MASTER, "")
        self.assertEqual(
            self.channel.requests[-1][1],
            {
                "IPVS_DAEMON_ATTR_STATE": MASTER,
                "IPVS_DAEMON_ATTR_MCAST_IFN": "eth1",
                "IPVS_DAEMON_ATTR_SYNC_ID": 7,
                "IPVS_DAEMON_ATTR_SYNC_MAXLEN": 1400,
                "IPVS_DAEMON_ATTR_MCAST_GROUP": "239.1.2.3",
                "IPVS_DAEMON_ATTR_MCAST_PORT": 9000,
                "IPVS_DAEMON_ATTR_MCAST_TTL": 2,
            },
        )

    def test_errorsAreLoggedNotRaised(self) -> None:
        """
        A kernel refusal (unknown interface) is logged; the controller
        stays usable.  EEXIST counts as running.
        """
        self.controller.start()
        self.channel.errors[(genl.IPVS_CMD_NEW_DAEMON, MASTER)] = errno.ENODEV
        with capturedLogs() as logs:
            self.change(State.MASTER)
        self.assertIsNone(self.controller.running)
        self.assertTrue(any("cannot start master sync daemon" in e["log_format"] or
                            "cannot start" in e["log_format"] for e in logs))
        self.channel.errors[(genl.IPVS_CMD_NEW_DAEMON, BACKUP)] = errno.EEXIST
        self.change(State.BACKUP, State.MASTER)
        self.assertEqual(self.controller.running, BACKUP)

    def test_noIpvs(self) -> None:
        """
        Without IPVS, start() logs and the controller does nothing after.
        """
        self.channel.openError = IPVSError(errno.ENOENT, "no IPVS")
        with capturedLogs() as logs:
            self.controller.start()
            self.change(State.MASTER)
        self.assertEqual(self.channel.requests, [])
        self.assertEqual(len([e for e in logs if "cannot reach IPVS" in e["log_format"]]), 1)


class FromConfigTests(SynchronousTestCase):
    def model(self, syncd, names=("VI_1",)):
        class Vi:
            def __init__(self, name, vrid):
                self.name = name
                self.virtualRouterId = vrid

        class G:
            lvsSyncDaemon = syncd

        class M:
            globalDefs = G()
            vrrpInstances = [Vi(n, 10 + i) for i, n in enumerate(names)]

        return M()

    def test_none(self) -> None:
        self.assertIsNone(SyncDaemonController.fromConfig(self.model(None)))

    def test_found(self) -> None:
        c = SyncDaemonController.fromConfig(
            self.model(LvsSyncDaemon(interface="eth0", instance="VI_2"), ("VI_1", "VI_2"))
        )
        self.assertEqual((c.instanceName, c.vrid, c.spec(MASTER).syncId), ("VI_2", 11, 11))

    def test_missingInstance(self) -> None:
        with capturedLogs() as logs:
            c = SyncDaemonController.fromConfig(
                self.model(LvsSyncDaemon(interface="eth0", instance="nope"))
            )
        self.assertIsNone(c)
        self.assertTrue(any("Unable to find vrrp instance" in e["log_format"] for e in logs))
        with capturedLogs() as logs:
            self.assertIsNone(
                SyncDaemonController.fromConfig(self.model(LvsSyncDaemon(interface="eth0")))
            )
        self.assertEqual(len(logs), 1)

    def test_fromParsedConfig(self) -> None:
        """
        The parsed C{lvs_sync_daemon IF INSTANCE id N} builds a controller
        for that instance.
        """
        from keepalive_tx.config import parseText

        text = (
            "global_defs {\n  lvs_sync_daemon eth1 VI_9 id 4 port 9000\n}\n"
            "vrrp_instance VI_9 {\n  interface eth0\n  virtual_router_id 77\n  priority 100\n"
            "  virtual_ipaddress {\n    192.0.2.9\n  }\n}\n"
        )
        c = SyncDaemonController.fromConfig(parseText(text).model)
        self.assertEqual(c.spec(BACKUP), DaemonSpec(BACKUP, "eth1", 4, port=9000))
        self.assertEqual(c.vrid, 77)


class InstanceKeywordTests(SynchronousTestCase):
    """
    The deprecated C{lvs_sync_daemon_interface} of a C{vrrp_instance}
    (keepalived 2.2.7 still acts on it).
    """

    def parse(self, text: str):
        from keepalive_tx.config import parseText

        return parseText(text)

    def instance(self, name: str, vrid: int, syncIf: str | None) -> str:
        line = f"  lvs_sync_daemon_interface {syncIf}\n" if syncIf else ""
        return (f"vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id {vrid}\n"
                f"  priority 100\n{line}  virtual_ipaddress {{\n    192.0.2.{vrid}\n  }}\n}}\n")

    def messages(self, result) -> list[tuple[int, str]]:
        return [(d.location.line, d.message) for d in result.diagnostics
                if "lvs_sync" in d.message or "Please use" in d.message]

    def test_firstInstanceRunsTheDaemon(self) -> None:
        """
        Without C{global_defs lvs_sync_daemon}, the first instance giving
        one runs it (sync id 0: keepalived uses the VRID only for an
        instance named in global_defs); keepalived's deprecation lines for
        each use, and "already specified" for the later ones.
        """
        result = self.parse(self.instance("VI_1", 51, None) + self.instance("VI_2", 52, "eth1")
                            + self.instance("VI_3", 53, "eth2"))
        c = SyncDaemonController.fromConfig(result.model)
        self.assertEqual((c.instanceName, c.spec(MASTER)), ("VI_2", DaemonSpec(MASTER, "eth1", 0,
                                                                              port=8848)))
        self.assertEqual(self.messages(result), [
            (13, "(VI_2) Specifying lvs_sync_daemon_interface against a vrrp is deprecated."),
            (13, "        Please use global lvs_sync_daemon"),
            (22, "(VI_3) Specifying lvs_sync_daemon_interface against a vrrp is deprecated."),
            (22, "        Please use global lvs_sync_daemon"),
            (22, "(VI_3) lvs_sync_daemon_interface has already been specified as eth1 - ignoring"),
        ])

    def test_globalWinsWherever(self) -> None:
        """
        C{global_defs lvs_sync_daemon} wins even when it comes after the
        instance (keepalived reads global_defs first).
        """
        result = self.parse(self.instance("VI_1", 51, "eth1")
                            + "global_defs {\n  lvs_sync_daemon eth3 VI_1 id 9\n}\n")
        c = SyncDaemonController.fromConfig(result.model)
        self.assertEqual(c.spec(BACKUP), DaemonSpec(BACKUP, "eth3", 9, port=8848))
        self.assertIn(
            (5, "(VI_1) lvs_sync_daemon_interface has already been specified as eth3 - ignoring"),
            self.messages(result))
