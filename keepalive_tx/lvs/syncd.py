# -*- test-case-name: tests.unit.test_lvs_syncd,tests.integration.test_lvs_syncd -*-
"""
The IPVS connection-synchronisation daemon (global_defs C{lvs_sync_daemon
IF INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]}), following one
VRRP instance like keepalived does (C{ipvs_syncd_master}, C{ipvs_syncd_backup}):

  - at start, any sync daemon left running (e.g. by a crashed run) is
    stopped, master and backup;
  - while the instance is MASTER the kernel runs a B{master} sync daemon
    (it multicasts connection state on C{IF}); in every other state
    (BACKUP, FAULT, and INIT once left) a B{backup} one (it receives);
    switching stops the other kind first;
  - at stop (instance stopped, or L{SyncDaemonController.stop}) the running
    daemon is stopped.

The sync id defaults to the instance's VRID; the multicast group (224.0.0.81)
and TTL (1) are the kernel's defaults unless configured; the port defaults
to 8848.

The kernel is driven over generic netlink (C{IPVS_CMD_NEW_DAEMON},
C{IPVS_CMD_DEL_DAEMON}, C{IPVS_CMD_GET_DAEMON}) on our own non-blocking
socket (L{GenlChannel}, as for services); pyroute2's C{ipvsmsg} leaves the
daemon attribute undecoded, so L{daemonmsg} declares it.  Requests are
answered inside C{sendmsg()}: they never wait on the reactor.  Failures are
logged, never raised into the VRRP instance.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from pyroute2.netlink import genlmsg, nla
from pyroute2.netlink.generic import ipvs as genl
from twisted.logger import Logger

from keepalive_tx.lvs.backend import IPVSError
from keepalive_tx.lvs.ipvs import GenlChannel

__all__ = [
    "BACKUP",
    "MASTER",
    "DaemonSpec",
    "SyncDaemonController",
    "SyncDaemons",
    "daemonmsg",
]

#: kernel daemon states (C{IP_VS_STATE_MASTER}, C{IP_VS_STATE_BACKUP})
MASTER = 1
BACKUP = 2
_STATE_NAMES = {MASTER: "master", BACKUP: "backup"}

#: keepalived's default sync port
DEFAULT_PORT = 8848


class daemonmsg(genlmsg):
    """
    An IPVS generic-netlink message whose C{IPVS_CMD_ATTR_DAEMON} is decoded
    (same attribute numbering as pyroute2's C{ipvsmsg}).
    """

    prefix = "IPVS_CMD_ATTR_"
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "hex"),
        ("IPVS_CMD_ATTR_DEST", "hex"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )

    class daemon(nla):
        prefix = "IPVS_DAEMON_ATTR_"
        nla_map = (
            ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
            ("IPVS_DAEMON_ATTR_STATE", "uint32"),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
            ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
            # host order: the kernel does the htons()
            ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
        )


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    """
    One sync daemon as the kernel knows it.

    @ivar state: L{MASTER} or L{BACKUP}.
    @ivar syncMaxlen: maximum sync message payload, 0 = kernel default.
    @ivar group: multicast group, L{None} = kernel default (224.0.0.81).
    @ivar port: UDP port, 0 = kernel default (8848).
    @ivar ttl: multicast TTL, 0 = kernel default (1).
    """

    state: int
    interface: str
    syncId: int
    syncMaxlen: int = 0
    group: IPv4Address | IPv6Address | None = None
    port: int = 0
    ttl: int = 0

    @property
    def stateName(self) -> str:
        return _STATE_NAMES.get(self.state, str(self.state))

    def describe(self) -> str:
        """
        @return: keepalived-like text, C{master sync daemon (mcast=eth0,
            syncid=51)}.
        """
        extra = "".join(
            f", {name}={value}"
            for name, value in (
                ("maxlen", self.syncMaxlen),
                ("group", self.group),
                ("port", self.port),
                ("ttl", self.ttl),
            )
            if value
        )
        return f"{self.stateName} sync daemon (mcast={self.interface}, syncid={self.syncId}{extra})"


def daemonAttrs(spec: DaemonSpec) -> list[tuple[str, object]]:
    """
    The attributes of C{IPVS_CMD_NEW_DAEMON} (optional ones only when set,
    like libipvs).
    """
    attrs: list[tuple[str, object]] = [
        ("IPVS_DAEMON_ATTR_STATE", spec.state),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", spec.interface),
        ("IPVS_DAEMON_ATTR_SYNC_ID", spec.syncId),
    ]
    if spec.syncMaxlen:
        attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", spec.syncMaxlen))
    if spec.group is not None:
        if spec.group.version == 6:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP6", str(spec.group)))
        else:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP", str(spec.group)))
    if spec.port:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", spec.port))
    if spec.ttl:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", spec.ttl))
    return attrs


def daemonMessage(cmd: int, attrs: list[tuple[str, object]] | None = None) -> daemonmsg:
    msg = daemonmsg()
    msg["cmd"] = cmd
    msg["version"] = genl.GENL_VERSION
    msg["attrs"] = [] if attrs is None else [("IPVS_CMD_ATTR_DAEMON", {"attrs": attrs})]
    return msg


def daemonFromMessage(msg: Any) -> DaemonSpec | None:
    """
    Decode one C{IPVS_CMD_GET_DAEMON} reply (L{None} if unusable).
    """
    try:
        d = msg.get_attr("IPVS_CMD_ATTR_DAEMON")
        group = d.get_attr("IPVS_DAEMON_ATTR_MCAST_GROUP6")
        if group in (None, "::"):
            group = d.get_attr("IPVS_DAEMON_ATTR_MCAST_GROUP")
        return DaemonSpec(
            int(d.get_attr("IPVS_DAEMON_ATTR_STATE")),
            str(d.get_attr("IPVS_DAEMON_ATTR_MCAST_IFN")),
            int(d.get_attr("IPVS_DAEMON_ATTR_SYNC_ID")),
            int(d.get_attr("IPVS_DAEMON_ATTR_SYNC_MAXLEN") or 0),
            ip_address(group) if group not in (None, "0.0.0.0", "::") else None,
            int(d.get_attr("IPVS_DAEMON_ATTR_MCAST_PORT") or 0),
            int(d.get_attr("IPVS_DAEMON_ATTR_MCAST_TTL") or 0),
        )
    except Exception:
        return None


class SyncDaemons:
    """
    Kernel sync daemons over generic netlink.

    @ivar channel: the L{GenlChannel} (C{"IPVS"} family, L{daemonmsg}).
    """

    def __init__(self, channel: GenlChannel | None = None) -> None:
        self.channel = (
            channel if channel is not None else GenlChannel(messageClass=daemonmsg)
        )

    def open(self) -> None:
        """
        @raise IPVSError: C{ENOENT} when the kernel has no IPVS.
        """
        self.channel.open()

    def close(self) -> None:
        self.channel.close()

    def start(self, spec: DaemonSpec) -> None:
        """
        @raise IPVSError: e.g. C{EEXIST} when one of that state runs,
            C{ENODEV} for an unknown interface.
        """
        self.channel.request(daemonMessage(genl.IPVS_CMD_NEW_DAEMON, daemonAttrs(spec)))

    def stop(self, state: int) -> None:
        """
        @raise IPVSError: C{ESRCH} when none of that state runs.
        """
        self.channel.request(
            daemonMessage(genl.IPVS_CMD_DEL_DAEMON, [("IPVS_DAEMON_ATTR_STATE", state)])
        )

    def running(self) -> list[DaemonSpec]:
        replies = self.channel.request(daemonMessage(genl.IPVS_CMD_GET_DAEMON), dump=True)
        found = (daemonFromMessage(m) for m in replies)
        return [d for d in found if d is not None]


class SyncDaemonController:
    """
    Runs the master or backup sync daemon as one VRRP instance's state
    says; an instance observer (C{instanceStateChanged}).

    @ivar instanceName: the followed instance.
    @ivar running: the state of the daemon we run (L{MASTER}, L{BACKUP})
        or L{None}.
    @ivar active: L{start} reached IPVS; state changes are acted upon.
    """

    log = Logger()

    def __init__(
        self,
        config: Any,
        vrid: int,
        daemons: SyncDaemons | None = None,
        daemonsFactory: Callable[[], SyncDaemons] = SyncDaemons,
    ) -> None:
        """
        @param config: a L{keepalive_tx.config.model.LvsSyncDaemon}
            (C{interface}, C{instance}, C{syncId}, C{maxlen}, C{port},
            C{ttl}, C{group}).
        @param vrid: the followed instance's VRID (the default sync id).
        @param daemons: the kernel side (default: made by C{daemonsFactory}
            at L{start}).
        """
        self.config = config
        self.instanceName = config.instance
        self.vrid = vrid
        self._daemons = daemons
        self._daemonsFactory = daemonsFactory
        self.running: int | None = None
        self.active = False

    @classmethod
    def fromConfig(cls, model: Any, **kw: Any) -> SyncDaemonController | None:
        """
        The controller for C{model.globalDefs.lvsSyncDaemon}, or L{None}
        when there is none or its instance does not exist (logged, like
        keepalived, which then ignores the setting).
        """
        g = getattr(model, "globalDefs", None)
        config = getattr(g, "lvsSyncDaemon", None)
        if config is None:
            return None
        if config.instance is None:
            cls.log.error(
                "lvs_sync_daemon {interface}: no VRRP instance given - ignoring",
                interface=config.interface,
            )
            return None
        for instance in getattr(model, "vrrpInstances", ()):
            if instance.name == config.instance:
                return cls(config, instance.virtualRouterId or 1, **kw)
        cls.log.error(
            "Unable to find vrrp instance {name} for lvs_sync_daemon - clearing "
            "lvs_sync_daemon config",
            name=config.instance,
        )
        return None

    def spec(self, state: int) -> DaemonSpec:
        c = self.config
        return DaemonSpec(
            state,
            c.interface,
            self.vrid if c.syncId is None else c.syncId,
            c.maxlen or 0,
            c.group,
            c.port if c.port is not None else DEFAULT_PORT,
            c.ttl or 0,
        )

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """
        Open the netlink socket (privileged) and stop any sync daemon left
        running by an earlier run.
        """
        if self.active:
            return
        try:
            if self._daemons is None:
                self._daemons = self._daemonsFactory()
            self._daemons.open()
        except IPVSError as e:
            self.log.error("lvs_sync_daemon: cannot reach IPVS: {error}", error=e)
            return
        self.active = True
        for state in (MASTER, BACKUP):
            self._stop(state, quiet=True)

    def stop(self) -> None:
        """
        Stop the daemon we run and close the socket.
        """
        if self.running is not None:
            self._stop(self.running)
            self.running = None
        if self._daemons is not None:
            self._daemons.close()
        self.active = False

    # -- IInstanceObserver ---------------------------------------------------

    def instanceStateChanged(self, instance: Any, old: Any, new: Any, reason: str) -> None:
        if not self.active or getattr(instance, "name", None) != self.instanceName:
            return
        name = getattr(new, "name", str(new))
        if name == "MASTER":
            self._switch(MASTER)
        elif name in ("BACKUP", "FAULT"):
            self._switch(BACKUP)
        elif name == "STOP" and self.running is not None:
            self._stop(self.running)
            self.running = None

    def _switch(self, state: int) -> None:
        if self.running == state:
            return
        other = BACKUP if state == MASTER else MASTER
        self._stop(other, quiet=self.running != other)
        spec = self.spec(state)
        try:
            self._daemons.start(spec)  # type: ignore[union-attr]
        except IPVSError as e:
            if e.code != errno.EEXIST:
                self.running = None
                self.log.error("lvs_sync_daemon: cannot start {what}: {error}",
                               what=spec.describe(), error=e)
                return
        self.running = state
        self.log.info("Starting IPVS {what}", what=spec.describe())

    def _stop(self, state: int, quiet: bool = False) -> None:
        if self._daemons is None:
            return
        try:
            self._daemons.stop(state)
        except IPVSError as e:
            if not (quiet and e.code == errno.ESRCH):
                self.log.error("lvs_sync_daemon: cannot stop the {what} sync daemon: {error}",
                               what=_STATE_NAMES[state], error=e)
            return
        if not quiet:
            self.log.info("Stopping IPVS {what} sync daemon", what=_STATE_NAMES[state])
