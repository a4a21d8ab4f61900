# -*- test-case-name: tests.unit.test_lvs_service -*-
"""
L{LvsService}: the health-checker half of keepalived (its "checker child").

It wires the pieces together:

  - one L{Pool} per C{virtual_server} decides the IPVS table;
  - one L{CheckerRun} per configured checker (built by
    L{keepalive_tx.check.factory}) reports checker results and events; with
    the C{checker_share_identical} extension (off by default), identical
    checks of several real servers run once and drive all of them;
  - a real server is alive when I{all} its checkers are up (keepalived's
    C{ipwrapper.c}); every checker event updates the pool, whose decision is
    carried out by an L{IPVSTable} and whose events become keepalived's log
    lines, C{notify_up}/C{notify_down}/C{quorum_up}/C{quorum_down} scripts,
    notify FIFO lines (L{LvsFifos}) and mails (through the
    L{AlertDispatcher}).

Lifecycle:

  - L{privilegedStartService} opens the IPVS backend (the kernel's, or a
    dry run with one clear message where the kernel has none) and, when a
    virtual server has C{ha_suspend}, the address monitor;
  - L{startService} starts every pool, reconciles the kernel's table with
    the union of what the pools want (services of others are never
    touched; services a previous run recorded as ours are removed when no
    longer configured) and starts the checkers;
  - L{stopService} stops the checkers, removes what the pools added (with
    C{omega}: C{quorum_down}/C{notify_down} and the C{Shutting down} mails)
    and then every service we still own; it waits (a bounded time) for the
    shutdown scripts.
"""

from __future__ import annotations

import os
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from keepalive_tx.alert.messages import checkerBody, checkerMails
from keepalive_tx.check.base import CheckerEvent, CheckResult
from keepalive_tx.check.factory import BuiltChecker, UnsupportedChecker, buildChecker, shareKey
from keepalive_tx.lvs.backend import DryRunBackend, IPVSTable
from keepalive_tx.lvs.fifo import LvsFifos
from keepalive_tx.lvs.pool import (
    Decision,
    DestKey,
    Pool,
    QuorumChange,
    RealServerChange,
    WeightChange,
)
from keepalive_tx.lvs.runs import CheckerRun
from keepalive_tx.lvs.wording import describeActions, describeDecision, describeDest, describeServer

__all__ = ["DEFAULT_RECORD_DIR", "LvsService"]

#: Where the services we own are recorded (survives a crash, not a reboot).
DEFAULT_RECORD_DIR = "/run/keepalive_tx"
RECORD_FILE = "ipvs-owned.json"


def recordFileName(nsPath: str = "/proc/self/ns/net") -> str:
    """
    The ownership record's file name: IPVS tables are per network namespace,
    so daemons in different namespaces of one host keep separate records
    (C{ipvs-owned.net<inode>.json}).
    """
    try:
        inode = os.stat(nsPath).st_ino
    except OSError:
        return RECORD_FILE
    return f"ipvs-owned.net{inode}.json"

#: Seconds L{LvsService.stopService} waits for the shutdown scripts.
STOP_SCRIPT_GRACE = 5.0


@dataclass(eq=False)
class _Checker:
    """
    One checker of a real server (its check runs in C{run}, possibly
    shared with other real servers).
    """

    server: _Server
    built: BuiltChecker
    run: CheckerRun | None = None
    up: bool = True
    reported: bool = False
    last: CheckResult | None = None
    weightDelta: int = 0
    #: the checker's configuration (to recognise it across a reload)
    config: Any = None


def _hashable(config: Any) -> Any:
    try:
        hash(config)
    except TypeError:
        return repr(config)
    return config


@dataclass(eq=False)
class _Server:
    """
    One real server of a virtual server.
    """

    virtual: _Virtual
    config: Any
    key: DestKey
    name: str
    checkers: list[_Checker] = field(default_factory=list)

    def alive(self) -> bool:
        return all(c.up for c in self.checkers)

    def effectiveWeight(self) -> int | None:
        deltas = [c.weightDelta for c in self.checkers]
        if not any(deltas):
            return None
        return self.config.weight + sum(deltas)


@dataclass(eq=False)
class _Virtual:
    config: Any
    pool: Pool
    servers: dict[DestKey, _Server] = field(default_factory=dict)
    vipPresent: bool = True


class LvsService(Service):
    """
    Health checkers, pools and IPVS for every C{virtual_server}.

    @ivar virtuals: one entry per virtual server (in configuration order).
    @ivar table: the L{IPVSTable} (after L{privilegedStartService}).
    @ivar observers: callables receiving every pool L{Event} (FIFO writers,
        status).
    @ivar runs: the running checks (fewer than the configured checkers when
        identical ones are shared).
    @ivar fifos: the L{LvsFifos} writer, or L{None}.
    @ivar releaseOnStop: C{False} (keepalived's C{-I}): stopping leaves the
        IPVS table as it is.
    """

    log = Logger()
    releaseOnStop = True

    def __init__(
        self,
        model: Any,
        reactor: Any = None,
        *,
        alerts: Any = None,
        backendFactory: Callable[[], Any] | None = None,
        recordDir: str | None = DEFAULT_RECORD_DIR,
        checkerBuilder: Callable[..., BuiltChecker] = buildChecker,
        scriptRunner: Callable[[Any], Any] | None = None,
        addressMonitorFactory: Callable[[Any], Any] | None = None,
        random: Callable[[], float] = _random.random,
        stopGrace: float = STOP_SCRIPT_GRACE,
        fifoFactory: Callable[[Any, Any], Any] | None = LvsFifos.fromConfig,
        previous: LvsService | None = None,
        bfd: Any = None,
    ) -> None:
        """
        @param model: the configuration (C{virtualServers},
            C{virtualServerGroups}, C{globalDefs}).
        @param alerts: the L{AlertDispatcher} (mails), or L{None}.
        @param backendFactory: returns the L{IIPVSBackend} (default
            L{keepalive_tx.lvs.ipvs.openBackend}).
        @param recordDir: directory of the ownership record (L{None}: no
            record).
        @param scriptRunner: C{script -> runner} with C{run()} returning a
            Deferred (default L{keepalive_tx.scripts.runner.ScriptRunner}).
        @param addressMonitorFactory: C{reactor -> monitor} for
            C{ha_suspend} (default L{keepalive_tx.net.links.LinkMonitor}).
        @param fifoFactory: C{(reactor, model) -> LvsFifos or None} for
            C{notify_fifo}/C{lvs_notify_fifo}; L{None}: no FIFOs.
        @param previous: the service this one replaces on a reload (after
            its L{handover}): the IPVS services it owned are reconciled, not
            flushed, and real servers whose checkers did not change keep
            their state (keepalived: "unchanged RS keep alive state").
        @param bfd: the process's BFD sessions, followed by C{BFD_CHECK}s
            (L{None}: they stay down).
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.model = model
        self.reactor = reactor
        self.alerts = alerts
        self.backendFactory = backendFactory
        self.recordDir = recordDir
        self.checkerBuilder = checkerBuilder
        self.scriptRunner = scriptRunner
        self.addressMonitorFactory = addressMonitorFactory
        self.random = random
        self.stopGrace = stopGrace
        self.fifoFactory = fifoFactory
        self.bfd = bfd
        self.globalDefs = getattr(model, "globalDefs", None)
        #: keepalive_tx's C{checker_share_identical} (not in keepalived)
        self.shareIdentical = bool(getattr(self.globalDefs, "checkerShareIdentical", False))
        self.runs: list[CheckerRun] = []
        self._shared: dict[Any, CheckerRun] = {}
        self.fifos: Any = None
        self.backend: Any = None
        self.table: IPVSTable | None = None
        self.monitor: Any = None
        self.virtuals: list[_Virtual] = []
        self._handingOver = False
        self._carried: dict[tuple[Any, ...], _Checker] = {}
        self._previousOwned: set[Any] = set()
        #: (virtual server name, real server) of the service replaced
        self._previousServers: set[tuple[str, DestKey]] = set()
        if previous is not None:
            for virtual in previous.virtuals:
                for server in virtual.servers.values():
                    self._previousServers.add((virtual.config.name, server.key))
                    for index, checker in enumerate(server.checkers):
                        key = (virtual.config.name, server.key, index, _hashable(checker.config))
                        self._carried[key] = checker
            if previous.table is not None:
                self._previousOwned = set(previous.table.owned)
        self.observers: list[Callable[[Any], object]] = []
        self._scripts: list[defer.Deferred] = []
        #: quorum and real-server notify runners (their files are inspected once)
        self._scriptRunners: dict[Any, Any] = {}
        self._stopping = False
        self.setName("checkers")

    # -- lifecycle ------------------------------------------------------------

    def privilegedStartService(self) -> None:
        if self.backend is None:
            if self.backendFactory is None:
                from keepalive_tx.lvs.ipvs import openBackend

                self.backend = openBackend()
            else:
                self.backend = self.backendFactory()
        if self.table is None:
            # a dry run owns nothing in the kernel: recording it would make
            # a later real run delete services of the same name
            dry = isinstance(self.backend, DryRunBackend)
            self.table = IPVSTable(self.backend, None if dry else self._recordPath())
        if self.monitor is None and any(
            vs.haSuspend and vs.address is not None for vs in self.model.virtualServers
        ):
            self._openMonitor()
        super().privilegedStartService()

    def _recordPath(self) -> str | None:
        if self.recordDir is None:
            return None
        try:
            os.makedirs(self.recordDir, mode=0o755, exist_ok=True)
        except OSError as e:
            self.log.warn(
                "Cannot create {dir} ({error}): services left by a crashed run will not be removed",
                dir=self.recordDir,
                error=e.strerror or e,
            )
            return None
        return os.path.join(self.recordDir, recordFileName())

    def _openMonitor(self) -> None:
        factory = self.addressMonitorFactory
        if factory is None:
            from keepalive_tx.net.links import LinkMonitor

            factory = LinkMonitor
        try:
            monitor = factory(self.reactor)
            monitor.startMonitoring()
        except OSError as e:
            self.log.error("ha_suspend: cannot watch addresses ({error}); not suspending", error=e)
            return
        self.monitor = monitor

    def startService(self) -> None:
        super().startService()
        if self.table is None:
            self.privilegedStartService()
        self._stopping = False
        self._openFifos()
        present = self._localAddresses()
        groups = getattr(self.model, "virtualServerGroups", ())
        self.virtuals = []
        self.runs = []
        self._shared = {}
        for vs in self.model.virtualServers:
            vip = present is None or vs.address is None or vs.address in present
            virtual = _Virtual(vs, Pool(vs, groups, vipPresent=vip), vipPresent=vip)
            self._buildServers(virtual)
            self.virtuals.append(virtual)
        wanted: dict = {}
        for virtual in self.virtuals:
            decision = virtual.pool.start()
            wanted.update(virtual.pool.applied())
            self._initNotifies(virtual)
            self._handleEvents(virtual, decision.events)
        assert self.table is not None
        actions = self.table.start(wanted, owned=self._previousOwned)
        self._carried = {}
        for line in describeActions(self.virtuals, actions):
            self.log.info("{line}", line=line)
        if self.monitor is not None:
            self.monitor.addObserver(self)
        for virtual in self.virtuals:
            for server in virtual.servers.values():
                for checker in server.checkers:
                    self.log.info(
                        "Activating healthchecker for service {rs} for VS {vs}",
                        rs=server.name,
                        vs=virtual.config.name,
                    )
                    assert checker.run is not None
                    # shared runs have one ha_suspend address: same answer
                    checker.run.setEnabled(virtual.vipPresent or not virtual.config.haSuspend)
        if self.shareIdentical:
            shared = [run for run in self.runs if len(run.subscribers) > 1]
            self.log.info(
                "checker_share_identical: {n} checkers shared by {m} real servers",
                n=len(shared),
                m=sum(len(run.subscribers) for run in shared),
            )
        for run in self.runs:
            run.start()

    def _initNotifies(self, virtual: _Virtual) -> None:
        """
        C{rs_init_notifies}: as keepalived, C{notify_up} (and the notify
        FIFO line) for every real server put in the pool as alive when it
        starts -- before any check, whatever the first check says later;
        not for servers a reload kept.  Never a mail: keepalived's mails
        come from its checkers.
        """
        if not getattr(self.globalDefs, "rsInitNotifies", False):
            return
        for server in virtual.servers.values():
            if (virtual.config.name, server.key) in self._previousServers:
                continue
            if not virtual.pool.isAlive(server.key):
                continue
            self._runScript(server.config.notifyUp, f"notify_up of {server.name}")
            if self.fifos is not None:
                self.fifos.realServerNotified(virtual.config, server.key, True)

    def _buildServers(self, virtual: _Virtual) -> None:
        vs = virtual.config
        for rs in vs.realServers:
            key = DestKey(rs.address, rs.port)
            if key in virtual.servers:
                continue
            server = _Server(virtual, rs, key, describeServer(vs, rs.address, rs.port))
            virtual.servers[key] = server
            for config in rs.checkers:
                try:
                    run = self._runFor(config, rs, vs)
                except UnsupportedChecker as e:
                    self.log.warn(
                        "{rs} of VS {vs}: {error}; this checker is ignored",
                        rs=server.name,
                        vs=vs.name,
                        error=str(e),
                    )
                    continue
                built = run.built
                bind = getattr(built.checker, "bind", None)
                if bind is not None:  # BFD_CHECK
                    bind(self.bfd, server.name)
                checker = _Checker(server, built, run, up=built.state.isUp, config=config)
                old = self._carried.get((vs.name, key, len(server.checkers), _hashable(config)))
                if old is not None:
                    # a reload: the same check of the same server goes on
                    built.state.isUp = old.built.state.isUp
                    # keepalived carries has_run: no "first result" again
                    # (no MISC_CHECK mail after every reload)
                    built.state.hasRun = old.built.state.hasRun
                    checker.up, checker.reported = old.up, old.reported
                    checker.weightDelta = old.weightDelta
                run.subscribers.append(checker)
                server.checkers.append(checker)
            if not server.alive() and virtual.pool.isAlive(key):
                # a checker starts down (its own alpha) while the RS does not
                virtual.pool.setAlive(key, False)

    def _runFor(self, config: Any, rs: Any, vs: Any) -> CheckerRun:
        """
        The run of checker C{config}: a new one, or, with
        C{checker_share_identical}, the run of an identical checker of
        another real server (whose virtual server is suspended by the same
        C{ha_suspend} address, if any).

        @raise UnsupportedChecker: the checker cannot be built.
        """
        key = None
        if self.shareIdentical:
            check = shareKey(config, rs, vs, self.model)
            if check is not None:
                key = (check, vs.address if vs.haSuspend else None)
                run = self._shared.get(key)
                if run is not None:
                    return run
        built = self.checkerBuilder(self.reactor, config, rs, vs, self.model)
        run = CheckerRun(built, self.reactor, self._result, self._event, self.random, vsName=vs.name)
        self.runs.append(run)
        if key is not None:
            self._shared[key] = run
        return run

    def _openFifos(self) -> None:
        if self.fifos is not None or self.fifoFactory is None:
            return
        try:
            self.fifos = self.fifoFactory(self.reactor, self.model)
        except Exception:
            self.log.failure("Cannot set up the notify FIFOs")
            return
        if self.fifos is not None:
            self.fifos.open()
            self.observers.append(self.fifos)

    def _closeFifos(self) -> None:
        fifos, self.fifos = self.fifos, None
        if fifos is None:
            return
        if fifos in self.observers:
            self.observers.remove(fifos)
        fifos.close()

    def handover(self) -> None:
        """
        A reload replaces this service: the next L{stopService} stops the
        checks and closes everything but leaves the kernel's IPVS table as it
        is, for the successor (built with C{previous=self}) to reconcile.
        """
        self._handingOver = True

    def stopService(self) -> defer.Deferred[None]:
        self._stopping = True
        super().stopService()
        # handing over (reload): the IPVS table stays for the successor
        keepTable = self._handingOver or not self.releaseOnStop
        if self.monitor is not None:
            self.monitor.removeObserver(self)
            self.monitor.stopMonitoring()
            self.monitor = None
        for run in self.runs:
            run.stop()
        if not keepTable:
            for virtual in self.virtuals:
                self._apply(virtual, virtual.pool.stop())
        self._closeFifos()
        if self.table is not None and not keepTable:
            actions = self.table.stop()
            for line in describeActions(self.virtuals, actions):
                self.log.info("{line}", line=line)
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        self.backend = None
        self.table = None
        if self._handingOver:
            self.log.info("Checkers handed over to the reloaded configuration")
        pending = [d for d in self._scripts if not d.called]
        self._scripts = []
        if not pending:
            return defer.succeed(None)
        # wait for them, a bounded time, without killing them
        result: defer.Deferred[None] = defer.Deferred()

        def finish(_: object = None) -> None:
            if timer.active():
                timer.cancel()
            if not result.called:
                result.callback(None)

        timer = self.reactor.callLater(self.stopGrace, finish)
        defer.DeferredList(pending, consumeErrors=True).addBoth(finish)
        return result

    # -- checker results and events -------------------------------------------

    def _result(self, checker: _Checker, result: CheckResult) -> None:
        checker.last = result
        delta = getattr(result, "weightDelta", None)
        if not result.ok or delta is None or delta == checker.weightDelta:
            return
        checker.weightDelta = delta
        server = checker.server
        if self._stopping:
            return
        self._apply(server.virtual, server.virtual.pool.setWeight(server.key, server.effectiveWeight()))

    def _event(self, checker: _Checker, event: CheckerEvent) -> None:
        if self._stopping:
            return
        server = checker.server
        virtual = server.virtual
        checker.reported = True
        checker.up = event.up
        alive = server.alive()
        decision = virtual.pool.setAlive(server.key, alive)
        aliveChanged = any(
            isinstance(e, RealServerChange) and e.server == server.key for e in decision.events
        )
        self._apply(virtual, decision)
        kind = checker.built.checker.kind
        if self.alerts is not None and checkerMails(kind, event.up, event.wasUp):
            last = checker.last
            reason = None
            if last is not None and not last.ok:
                reason = last.reason
            body = checkerBody(kind, event.up, reason, timedOut=reason == "timed out",
                               bfdName=getattr(checker.built.checker, "bfdName", ""))
            self.alerts.realServerChanged(
                server.name,
                virtual.config.name,
                alive,
                body,
                aliveChanged=aliveChanged,
                smtpAlert=server.config.smtpAlert,
            )

    # -- decisions -------------------------------------------------------------

    def _apply(self, virtual: _Virtual, decision: Decision) -> None:
        if decision.actions and self.table is not None:
            for line in describeDecision(virtual, decision.actions, decision.events):
                self.log.info("{line}", line=line)
            self.table.apply(decision.actions)
        self._handleEvents(virtual, decision.events)

    def _handleEvents(self, virtual: _Virtual, events: tuple) -> None:
        vs = virtual.config
        for event in events:
            for observer in list(self.observers):
                try:
                    observer(event)
                except Exception:
                    self.log.failure("LVS event observer {o!r} failed", o=observer)
            if isinstance(event, RealServerChange):
                server = virtual.servers.get(event.server)
                if server is None:
                    continue
                if event.shutdown:
                    self.log.info(
                        "Removing service {rs} from VS {vs} (shutting down)", rs=server.name, vs=vs.name
                    )
                    if self.alerts is not None:
                        self.alerts.realServerRemoved(
                            server.name, vs.name, shuttingDown=True, smtpAlert=server.config.smtpAlert
                        )
                script = server.config.notifyUp if event.alive else server.config.notifyDown
                self._runScript(script, f"notify_{'up' if event.alive else 'down'} of {server.name}")
            elif isinstance(event, QuorumChange):
                self.log.info("{line}", line=event.message)
                up = event.up
                threshold = event.quorum + event.hysteresis if up else event.quorum - event.hysteresis
                if self.alerts is not None:
                    self.alerts.quorumChanged(
                        vs.name,
                        up,
                        event.quorum,
                        event.hysteresis,
                        threshold,
                        event.live,
                        init=event.initial,
                        stopping=event.shutdown,
                        smtpAlert=vs.smtpAlert,
                    )
                script = vs.quorumUp if up else vs.quorumDown
                self._runScript(script, f"quorum_{'up' if up else 'down'} of VS {vs.name}")
            elif isinstance(event, WeightChange):
                old = describeDest(vs, event.server)
                self.log.info(
                    "Changing weight from {old} to {new} for {kind} service {rs} of VS {vs}",
                    old=event.old,
                    new=event.new,
                    kind="active" if event.active else "inactive",
                    rs=old,
                    vs=vs.name,
                )

    def _runScript(self, script: Any, what: str) -> None:
        if script is None:
            return
        factory = self.scriptRunner
        if factory is None:
            from keepalive_tx.scripts.runner import ScriptRunner
            from keepalive_tx.scripts.security import ScriptPolicy

            policy = ScriptPolicy.fromGlobals(self.globalDefs)

            def factory(s: Any) -> Any:
                return ScriptRunner.fromScript(self.reactor, s, policy=policy)

        try:
            runner = self._scriptRunners.get(script)
            if runner is None:
                runner = self._scriptRunners[script] = factory(script)
            if getattr(runner, "error", None) is not None:
                # disabled (missing, not executable, unsafe): keepalived
                # drops the script; the start-up audit said why
                return
            d = runner.run()
        except Exception:
            self.log.failure("Cannot run {what}", what=what)
            return
        self.log.info("Executing [{command}] for {what}", command=script.command, what=what)

        def ended(result: Any) -> None:
            if result is not None and not getattr(result, "ok", True):
                self.log.warn(
                    "{what} [{command}] {how}", what=what, command=script.command, how=result.describe()
                )
            if d in self._scripts:
                self._scripts.remove(d)

        d.addCallback(ended)
        d.addErrback(lambda f: self.log.failure("{what} failed", f, what=what))
        if not d.called:
            self._scripts.append(d)

    # -- ha_suspend --------------------------------------------------------------

    def _localAddresses(self) -> set | None:
        """
        The addresses configured here (for C{ha_suspend}), or L{None} when
        not watched.
        """
        if self.monitor is None:
            return None
        try:
            return {a.address for a in self.monitor.channel.addresses()}
        except Exception as e:  # netlink error: treat as present (no suspension)
            self.log.error("ha_suspend: cannot read addresses: {error}", error=e)
            return None

    def addressAdded(self, ifname: str, ifindex: int, address: Any) -> None:
        self._vipChanged(address.address, True)

    def addressRemoved(self, ifname: str, ifindex: int, address: Any) -> None:
        self._vipChanged(address.address, False)

    def _vipChanged(self, ip: Any, present: bool) -> None:
        if self._stopping:
            return
        if not present:
            remaining = self._localAddresses()
            if remaining is not None and ip in remaining:
                return  # still configured elsewhere
        for virtual in self.virtuals:
            vs = virtual.config
            if not vs.haSuspend or vs.address != ip or virtual.vipPresent == present:
                continue
            virtual.vipPresent = present
            self.log.info(
                "{what} healthcheckers of VS {vs} (address {state})",
                what="Resuming" if present else "Suspending",
                vs=vs.name,
                state="present" if present else "absent",
            )
            for server in virtual.servers.values():
                for checker in server.checkers:
                    if checker.run is not None:
                        checker.run.setEnabled(present)
            self._apply(virtual, virtual.pool.setVipPresent(present))
