# -*- test-case-name: tests.unit.test_service,tests.unit.test_embedding -*-
"""
L{KeepalivedService}: the embeddable root service (see C{docs/embedding.md}).

It is a plain L{IService}: it installs no signal handlers, starts no global
logging and daemonizes nothing; L{keepalive_tx.tap.makeService} does those.
Subsystems (VRRP instances, checkers, alerts) are children added from the
configuration model; they start in a fixed order (L{KeepalivedService.children})
and a reload replaces the changed ones in place (L{keepalive_tx.rebuild}).

Hosts that call C{privilegedStartService} (twistd, before it sheds
privileges) get the sockets opened there; hosts that only call
C{startService} (C{twist}, most applications) get them opened at that
point, in the same order.

The embedding API: L{KeepalivedService.fromFile} /
L{KeepalivedService.fromText}, L{KeepalivedService.addObserver}
(L{keepalive_tx.observers.IKeepalivedObserver}),
L{KeepalivedService.whenRunning}, L{KeepalivedService.reload} and
L{KeepalivedService.realServers}.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypedDict, cast

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from keepalive_tx.errors import ReloadError, StartError
from keepalive_tx.observers import ObserverHub, RealServerStatus
from keepalive_tx.rebuild import PART_ORDER, applyChanges
from keepalive_tx.reload import Reloader
from keepalive_tx.source import TEXT_NAME, ConfigSource

if TYPE_CHECKING:
    from typing import Unpack

    from keepalive_tx.alert.mail import Mailer
    from keepalive_tx.alert.messages import AlertDispatcher
    from keepalive_tx.bfd.service import BfdService
    from keepalive_tx.config import LoadResult
    from keepalive_tx.config.errors import Diagnostics
    from keepalive_tx.config.model import Config, GlobalDefs, Script
    from keepalive_tx.lvs.service import LvsService
    from keepalive_tx.net.firewall import Firewall
    from keepalive_tx.net.static import StaticService
    from keepalive_tx.scripts.runner import ScriptResult, ScriptRunner
    from keepalive_tx.vrrp.service import IVrrpPlatform, VrrpService

__all__ = ["KeepalivedService", "ReloadError", "ServiceOptions", "StartError"]


class ServiceOptions(TypedDict, total=False):
    """
    The keyword options of L{KeepalivedService} (also taken by
    L{KeepalivedService.fromFile} and L{KeepalivedService.fromText}).
    """

    vrrp: bool
    checkers: bool
    ipvs: bool
    bfd: bool
    logDetail: bool
    vrrpPlatform: IVrrpPlatform | None
    staticPlatform: object | None
    statusListen: str | None
    releaseVrrp: bool
    releaseIpvs: bool
    firewallChannel: object | None


def routerIdFor(globalDefs: GlobalDefs) -> str:
    """
    C{router_id}, defaulting to the host name (keepalived uses the canonical
    name; we avoid a resolver call at start-up).
    """
    return globalDefs.routerId or socket.gethostname()


def buildAlerts(globalDefs: GlobalDefs,
                reactor: IReactorTime) -> tuple[Mailer | None, AlertDispatcher]:
    """
    The mailer (C{None} unless C{smtp_server} and C{notification_email} are
    both configured, as in keepalived) and the L{AlertDispatcher}.
    """
    from keepalive_tx.alert.messages import AlertDispatcher

    g = globalDefs
    mailer = None
    routerId = routerIdFor(g)
    if g.smtpServer and g.notificationEmail:
        # Only then: the SMTP client stack (twisted.mail, TLS) costs ~2 MB.
        from keepalive_tx.alert.mail import Mailer, localFromAddress

        mailer = Mailer(
            reactor,
            (g.smtpServer, g.smtpPort),
            heloName=g.smtpHeloName or routerId,
            fromAddress=g.notificationEmailFrom or localFromAddress(),
            recipients=list(g.notificationEmail),
            connectTimeout=g.smtpConnectTimeout,
        )
        mailer.setName("mailer")
    dispatcher = AlertDispatcher(
        mailer, routerId, smtpAlert=g.smtpAlert, smtpAlertVrrp=g.smtpAlertVrrp,
        smtpAlertChecker=g.smtpAlertChecker, noEmailFaults=g.noEmailFaults,
        noCheckerEmails=g.noCheckerEmails)
    return mailer, dispatcher


def _noSource() -> LoadResult:
    """
    The loader of a service built from a model: nothing to read again.
    """
    raise ReloadError("no configuration source to read again")


def _partName(child: IService) -> str:
    return child.name or type(child).__name__


class KeepalivedService(MultiService):
    """
    The root of a keepalive_tx process, built from a configuration model.

    @ivar model: the immutable configuration model in force.
    @ivar reactor: the reactor every child uses.
    @ivar diagnostics: the problems of the configuration given to
        L{fromFile} / L{fromText} (logged as warnings too).
    @ivar reloader: the L{Reloader} behind L{reload} (and C{SIGHUP} under
        twistd).
    """

    log = Logger()

    def __init__(
        self,
        model: Config,
        reactor: IReactorTime | None = None,
        *,
        vrrp: bool = True,
        checkers: bool = True,
        ipvs: bool = True,
        bfd: bool = True,
        logDetail: bool = False,
        vrrpPlatform: IVrrpPlatform | None = None,
        staticPlatform: object | None = None,
        statusListen: str | None = None,
        releaseVrrp: bool = True,
        releaseIpvs: bool = True,
        firewallChannel: object | None = None,
    ) -> None:
        """
        @param reactor: the reactor (time, TCP, processes, file
            descriptors) every part uses; default the global one.
        @param vrrp: run the VRRP instances (C{False}: keepalived's C{-C}).
        @param checkers: run the checkers and IPVS (C{False}: C{-P}).
        @param ipvs: program the kernel's IPVS table (C{False}: health
            checks only; IPVS changes are only logged, as where the kernel
            has no IPVS).
        @param bfd: run the BFD sessions (C{False}: keepalived's C{-B}).
        @param statusListen: server endpoint of the status API and
            C{/metrics} (default: C{status_listen} from C{global_defs}).
        @param releaseVrrp: on stop, MASTERs send priority 0 and remove
            their addresses, routes and rules (C{False}: keepalived's C{-V},
            everything is left in place).
        @param releaseIpvs: on stop, the IPVS services are removed
            (C{False}: keepalived's C{-I}).
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = cast(IReactorTime, _reactor)
        self.model = model
        self.reactor = reactor
        self.diagnostics: Diagnostics | None = None
        self._startup: Deferred[None] | None = None
        self._privileged = False
        #: every child has started (see L{whenRunning})
        self.started = False
        #: what went wrong at start (L{None}: nothing, or not started yet)
        self._startError: StartError | None = None
        self._runningWaiters: list[Deferred[None]] = []
        self._observers = ObserverHub()
        # the service hears its reloads too (BFD packets around them)
        self.reloader = Reloader(self, _noSource, listeners=[self])
        #: reloads applied (SIGHUP)
        self.reloads = 0
        self.runVrrp = vrrp
        self.runCheckers = checkers
        self.runIpvs = ipvs
        self.runBfd = bfd
        self.logDetail = logDetail
        self.releaseVrrp = releaseVrrp
        self.releaseIpvs = releaseIpvs
        self.setName("keepalived")
        from keepalive_tx.status.snapshot import TransitionLog

        self.transitions = TransitionLog(reactor)
        # The mailer is added first so that it stops last: the STOP mails of
        # the other services still get out.
        self.mailer, self.alerts = buildAlerts(model.globalDefs, reactor)
        if self.mailer is not None:
            self.mailer.setServiceParent(self)
        self.vrrpPlatform = vrrpPlatform
        #: the nftables channel of the firewall (default: the kernel's, or
        #: the C{netfilterChannel} of C{vrrpPlatform}; a platform without
        #: one gets no firewall)
        self.firewallChannel = firewallChannel
        self.staticPlatform = staticPlatform
        # static_ipaddress/routes/rules: before VRRP, so they exist when the
        # instances start (and stay until the instances have stopped).
        self.staticService = self.buildStatic(model)
        if self.staticService is not None:
            self.staticService.setServiceParent(self)
        # The no_accept firewall: before VRRP (stale tables deleted before
        # the instances start; its tables deleted after they have stopped).
        self.firewall = self.buildFirewall(model)
        if self.firewall is not None:
            self.firewall.setServiceParent(self)
        # BFD before its clients (VRRP tracking, BFD_CHECK): it stops last
        self.bfdService = self.buildBfd(model)
        if self.bfdService is not None:
            self.bfdService.setServiceParent(self)
        self.vrrpService = self.buildVrrp(model)
        if self.vrrpService is not None:
            self.vrrpService.setServiceParent(self)
        # The IPVS connection-sync daemon follows its VRRP instance (keepalived
        # manages it from the VRRP process).
        self.syncd = None
        if self.vrrpService is not None and model.globalDefs.lvsSyncDaemon is not None:
            from keepalive_tx.lvs.syncd import SyncDaemonController

            self.syncd = SyncDaemonController.fromConfig(model)
            if self.syncd is not None:
                self.vrrpService.observers.append(self.syncd)
        self.lvsService = self.buildLvs(model)
        if self.lvsService is not None:
            self.lvsService.setServiceParent(self)
        statusListen = statusListen or getattr(model.globalDefs, "statusListen", None)
        if statusListen:
            from keepalive_tx.lvs.traffic import TrafficReader
            from keepalive_tx.status.web import StatusService

            # the IPVS counters of /metrics, from whichever checkers run now (reloads swap them)
            traffic = TrafficReader(reactor, lambda: getattr(self.lvsService, "table", None))
            StatusService(statusListen, self.snapshot, reactor,
                          traffic=traffic.read).setServiceParent(self)

    # -- children ------------------------------------------------------------

    def buildStatic(self, model: Config) -> StaticService | None:
        if not self.runVrrp or not any(getattr(model, name, ()) for name in
                                       ("staticIpaddresses", "staticRoutes", "staticRules")):
            return None
        from keepalive_tx.net.static import StaticService

        return StaticService(model, platform=self.staticPlatform, reactor=self.reactor)

    def buildBfd(self, model: Config) -> BfdService | None:
        if not self.runBfd or not getattr(model, "bfdInstances", ()):
            return None
        from keepalive_tx.bfd.service import BfdService

        return BfdService(model, self.reactor, logDetail=self.logDetail)

    def buildVrrp(self, model: Config,
                   resume: frozenset[str] = frozenset()) -> VrrpService | None:
        if not self.runVrrp or not getattr(model, "vrrpInstances", ()):
            return None
        from keepalive_tx.vrrp.alerts import InstanceAlerts
        from keepalive_tx.vrrp.service import VrrpService

        service = VrrpService(model, self.reactor, platform=self.vrrpPlatform,
                              alerts=self.alerts, resume=resume, firewall=self.firewall,
                              bfd=self.bfdService, previous=getattr(self, "vrrpService", None))
        service.releaseOnStop = self.releaseVrrp
        service.observers.append(InstanceAlerts(self.alerts))
        service.observers.append(self.transitions)
        # the embedding application's observers, on every successor too
        service.observers.append(self._observers)
        return service

    def buildFirewall(self, model: Config) -> Firewall | None:
        if not self.runVrrp or not getattr(model, "vrrpInstances", ()):
            return None
        from keepalive_tx.net.firewall import Firewall, firewallSettingsFor

        settings, defaulted = firewallSettingsFor(model)
        if settings is None:
            return None
        channel = self.firewallChannel or getattr(self.vrrpPlatform, "netfilterChannel", None)
        if channel is None and self.vrrpPlatform is not None:
            return None  # a platform of the host's own, without nftables
        return Firewall(settings, defaulted=defaulted, channel=channel)

    def buildLvs(self, model: Config, previous: LvsService | None = None) -> LvsService | None:
        if not self.runCheckers or not getattr(model, "virtualServers", ()):
            return None
        from keepalive_tx.lvs.service import LvsService

        if self.runIpvs:
            service = LvsService(model, self.reactor, alerts=self.alerts, previous=previous,
                                 bfd=self.bfdService)
        else:
            from keepalive_tx.lvs.backend import DryRunBackend

            service = LvsService(model, self.reactor, alerts=self.alerts, previous=previous,
                                 bfd=self.bfdService, backendFactory=DryRunBackend,
                                 recordDir=None)
        service.releaseOnStop = self.releaseIpvs
        service.observers.append(self._observers.poolEvent)
        return service

    # -- the embedding API ----------------------------------------------------

    @classmethod
    def fromFile(cls, path: str | os.PathLike[str], *, reactor: IReactorTime | None = None,
                 configId: str | None = None, allConfig: bool = False,
                 **options: Unpack[ServiceOptions]) -> KeepalivedService:
        """
        The service of a configuration file (keepalived's C{-f}).

        @param configId: selects C{@ID} lines (keepalived's C{-i}; default
            the short host name).
        @param allConfig: any missing included file is fatal (C{-e}).
        @param options: see L{ServiceOptions} and L{__init__}.
        @raise ConfigError: the configuration cannot be used (its
            C{diagnostics} say why, C{FILE:LINE: message}); other
            problems are logged as warnings and kept in C{diagnostics}.
        """
        source = ConfigSource.forFile(path, configId=configId, allConfig=allConfig)
        return cls._fromSource(source, reactor, options)

    @classmethod
    def fromText(cls, text: str, *, name: str = TEXT_NAME, baseDir: str | None = None,
                 reactor: IReactorTime | None = None, configId: str | None = None,
                 allConfig: bool = False,
                 **options: Unpack[ServiceOptions]) -> KeepalivedService:
        """
        The service of configuration text, as L{fromFile}.

        @param name: the file name its diagnostics give (C{<text>:12:
            ...}).
        @param baseDir: the directory relative C{include}s (and
            C{${_PWD}}) are resolved against; default: the current
            directory at this call.
        """
        source = ConfigSource.forText(text, name=name, baseDir=baseDir, configId=configId,
                                      allConfig=allConfig)
        return cls._fromSource(source, reactor, options)

    @classmethod
    def _fromSource(cls, source: ConfigSource, reactor: IReactorTime | None,
                    options: ServiceOptions) -> KeepalivedService:
        if options.get("vrrp", True) and options.get("vrrpPlatform") is None:
            # the host's interfaces, as keepalived's VRRP process checks them
            source = replace(source, checkInterfaces=True)
        result = source.loadUsable()
        for diagnostic in result.diagnostics:
            cls.log.warn("{diagnostic}", diagnostic=str(diagnostic))
        service = cls(result.model, reactor, **options)
        service.source = source
        service.diagnostics = result.diagnostics
        return service

    def addObserver(self, observer: object) -> None:
        """
        Tell C{observer} (an L{keepalive_tx.observers.IKeepalivedObserver}
        providing any subset of its methods) what happens, across reloads,
        until L{removeObserver}.
        """
        self._observers.addObserver(observer)

    def removeObserver(self, observer: object) -> None:
        self._observers.removeObserver(observer)

    def realServers(self) -> list[RealServerStatus]:
        """
        The real servers of the running checkers, in configuration order,
        and whether each is alive now (empty before the checkers start).
        """
        lvs = self.lvsService
        if lvs is None:
            return []
        return [RealServerStatus(virtual.config.name, str(key.address), key.port,
                                 bool(virtual.pool.isAlive(key)))
                for virtual in lvs.virtuals for key in virtual.servers]

    def whenRunning(self) -> Deferred[None]:
        """
        A Deferred firing (with L{None}) once every part has started (after
        C{startup_script} when there is one), or failing with a
        L{StartError} naming each part that could not start and why: a
        VRRP instance that cannot be set up, a socket that cannot be
        opened ...  (An instance waiting for its interface or an address
        is no failure: it starts when they appear.)  The parts that could start keep running (as
        keepalived's do); it is for the caller to stop the service.  It
        also fails when the service stops before it has started.
        """
        if self._startError is not None:
            return fail(self._startError)
        if self.started:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._runningWaiters.append(d)
        return d

    def reload(self, path: str | os.PathLike[str] | None = None, *, text: str | None = None,
               name: str = TEXT_NAME, baseDir: str | None = None) -> Deferred[None]:
        """
        Read the configuration again -- or the file C{path}, or C{text}
        (C{name} and C{baseDir} as for L{fromText}) -- and apply it
        without letting go of what did not change: the reload of
        C{SIGHUP} (see L{applyConfig}), coalescing with the other reloads
        asked for meanwhile (the newest source wins).  The source applied
        is the one the next reload reads.

        @return: a Deferred firing once the new configuration is in force
            and the parts it replaced have stopped; failing with
            L{ConfigError} (fatal diagnostics) or L{ReloadError} (the new
            configuration cannot start, no source to read, the service
            does not run) -- the running configuration then stays.
        """
        if path is not None and text is not None:
            raise TypeError("reload() takes a path or text=, not both")
        current = self.source if self.source is not None else ConfigSource()
        loader = None
        if path is not None:
            loader = current.withFile(path)
        elif text is not None:
            loader = current.withText(text, name=name, baseDir=baseDir)
        elif self.source is None:
            return fail(ReloadError("no configuration source to read again"))
        if not self.running:
            return fail(ReloadError("the service is not running"))
        if self.started or self._startError is not None:
            # (a part that raised at start leaves the reloader stopped:
            # refused as not running)
            return self._requestReload(loader)
        # started, not yet running (startup_script): after it
        d: Deferred[None] = Deferred()
        self._runningWaiters.append(d)
        return d.addBoth(lambda _: self._requestReload(loader))

    def _requestReload(self, loader: ConfigSource | None) -> Deferred[None]:
        reloader = self.reloader

        def check(applied: bool) -> None:
            if not applied:
                raise reloader.lastRefusal or ReloadError("refused")

        return reloader.reload(loader).addCallback(check)

    @property
    def source(self) -> ConfigSource | None:
        """
        Where the configuration in force was read (L{None} when the service
        was built from a model): what L{reload} reads again.
        """
        loader = self.reloader.loader
        return loader if isinstance(loader, ConfigSource) else None

    @source.setter
    def source(self, source: ConfigSource) -> None:
        self.reloader.loader = source

    # -- reload --------------------------------------------------------------

    def applyConfig(self, model: Config) -> Deferred[None]:
        """
        Apply a new configuration without letting go of what did not change
        (keepalived's SIGHUP, without its side effects):

          - an unchanged part keeps running untouched;
          - VRRP: every instance with a successor in C{model} (same VRID,
            family, interface, unicast source / multicast group) is handed
            over: a MASTER stays MASTER with no gap (its successor takes over
            at once, keeping the addresses both have, releasing the others),
            removed instances stop as on shutdown (priority 0, addresses
            released);
          - checkers: the IPVS table is reconciled in place (no flush) and
            real servers whose checks did not change keep their state;
          - static addresses/routes/rules: replaced when changed;
          - BFD: sessions are kept by name (new intervals announced with a
            Poll sequence), removed ones stop, new ones start.

        Global settings that shape the process (mail relay, status
        listener, the IPVS sync daemon) keep their values until a restart.

        The new configuration is in force when this returns; the replaced
        children may still be stopping (notify scripts of removed
        instances, checker scripts ...).

        @return: a Deferred firing (with C{None}) once the replaced
            children have stopped.
        @raise ReloadError: a new service could not start; nothing was
            changed.
        """
        from keepalive_tx.scripts.security import forgetUsers

        forgetUsers()
        changes, stopped = applyChanges(self, model)
        self.reloads += 1
        changed = changes.names()
        if not changed:
            self.log.info("Reloaded: configuration unchanged")
        else:
            self.log.info("Reloaded: {parts} changed", parts=", ".join(changed))
        self._observers.reloadApplied(changed)
        return stopped

    def reloadStarting(self) -> None:
        """
        A reload is about to hold the reactor up (reading the file,
        rebuilding services, the heap refreeze): every BFD session sends one
        packet now, so its peer has a whole detection time to hear from us
        again.  (A L{keepalive_tx.reload.Reloader} listener.)
        """
        if self.bfdService is not None:
            self.bfdService.transmitNow()

    def reloadEnded(self, refusal: str | None) -> None:
        if self.bfdService is not None:
            self.bfdService.transmitNow()

    def children(self) -> list[IService]:
        """
        The children in the order they start (and the reverse of the order
        they stop), whatever the order they joined in: the mailer (its STOP
        mails still get out), the parts (L{keepalive_tx.rebuild.PART_ORDER}:
        static addresses, firewall, BFD, VRRP, checkers), then the others
        as added (status, the entry point's).
        """
        parts: list[object] = [self.mailer, *(getattr(self, name, None) for name in PART_ORDER)]
        rank = {id(part): i for i, part in enumerate(parts) if part is not None}
        return sorted(self, key=lambda child: rank.get(id(child), len(parts)))

    def snapshot(self) -> dict[str, object]:
        """
        The status of everything, as plain data (see
        L{keepalive_tx.status.snapshot.buildSnapshot}).
        """
        from keepalive_tx.status.snapshot import buildSnapshot

        return buildSnapshot(self)

    def privilegedStartService(self) -> None:
        self._privileged = True
        Service.privilegedStartService(self)
        for child in self.children():
            self._startPart(child, child.privilegedStartService)
        if self.syncd is not None:
            self.syncd.start()

    def _startPart(self, child: IService, start: Callable[[], object]) -> None:
        """
        Start C{child} (C{start}: its C{privilegedStartService} or
        C{startService}); what it raises is also the failure of
        L{whenRunning}, naming it.
        """
        try:
            start()
        except Exception as e:
            self._failStart(StartError([(_partName(child), str(e) or type(e).__name__)]))
            raise

    def _failStart(self, error: StartError) -> None:
        if self._startError is None:
            self._startError = error
        waiters, self._runningWaiters = self._runningWaiters, []
        for d in waiters:
            d.errback(Failure(error))

    def _allStarted(self) -> None:
        self.started = True
        self.reloader.startService()
        failures = list(getattr(self.vrrpService, "startFailures", ()))
        if failures:
            error = StartError(failures)
            self.log.error("Some parts could not start: {why}", why=str(error))
            self._failStart(error)
            return
        waiters, self._runningWaiters = self._runningWaiters, []
        for d in waiters:
            d.callback(None)

    def startService(self) -> None:
        if not self._privileged:
            # the host never called privilegedStartService (twist): open
            # the sockets now, as twistd would have done just before
            self.privilegedStartService()
        self.log.info("Starting keepalive_tx")
        self.auditScripts()
        Service.startService(self)
        g = self.model.globalDefs
        script = getattr(g, "startupScript", None)
        if script is None:
            self._startChildren()
            return
        # keepalived runs startup_script once, before its children start.
        d = self._runGlobalScript(script, g.startupScriptTimeout, "startup")
        self._startup = d
        d.addCallback(self._startChildren)

    def _startChildren(self, _: object = None) -> None:
        self._startup = None
        if not self.running:
            return
        for service in self.children():
            self._startPart(service, service.startService)
        self._allStarted()

    def makeScriptRunner(self, script: Script, timeout: float) -> ScriptRunner:
        """
        The runner of C{startup_script} / C{shutdown_script} (a
        L{keepalive_tx.scripts.runner.ScriptRunner} under the configured
        script security; tests replace this method).
        """
        from keepalive_tx.scripts.runner import ScriptRunner
        from keepalive_tx.scripts.security import ScriptPolicy

        policy = ScriptPolicy.fromGlobals(self.model.globalDefs)
        return ScriptRunner(self.reactor, script.argv, script.user, policy=policy,
                            timeout=timeout, shellTests=True)

    def _runGlobalScript(self, script: Script, timeout: float, what: str) -> Deferred[None]:
        """
        Run C{startup_script} / C{shutdown_script} with its timeout; the
        Deferred fires (with L{None}) when it has ended, whatever happened.
        """
        runner = self.makeScriptRunner(script, float(timeout))
        if getattr(runner, "error", None) is not None:
            # disabled (missing, not executable, unsafe): keepalived drops
            # it; the start-up audit said why
            return succeed(None)
        self.log.info("Running {what} script [{command}]", what=what, command=script.command)

        def ended(result: ScriptResult) -> None:
            if not result.ok:
                self.log.warn("{what} script [{command}] {how}", what=what.capitalize(),
                              command=script.command, how=result.describe())

        d = runner.run().addCallback(ended)
        d.addErrback(lambda f: self.log.failure("{what} script failed", f, what=what))
        return d

    def auditScripts(self) -> list[str]:
        """
        Log keepalived's start-up lines about scripts (missing, not
        executable, unsafe or disabled scripts, the missing default user,
        C{SECURITY VIOLATION}).

        @return: the lines logged.
        """
        from keepalive_tx.scripts.security import ScriptPolicy, auditMessages

        policy = ScriptPolicy.fromGlobals(self.model.globalDefs)
        try:
            lines = auditMessages(self.model, policy)
        except Exception:
            self.log.failure("Cannot check script security")
            return []
        for line in lines:
            self.log.warn("{line}", line=line)
        return lines

    def stopService(self) -> Deferred[object]:
        self.log.info("Stopping keepalive_tx")
        self.reloader.stopService()
        if not self.started:
            self._failStart(StartError([("keepalived", "stopped before every part had started")]))
        self._privileged = self.started = False
        self._startError = None
        startup, self._startup = self._startup, None
        Service.stopService(self)
        d = cast("Deferred[object]", DeferredList(
            [maybeDeferred(child.stopService) for child in reversed(self.children())]))
        if startup is not None:
            # Stopped while startup_script runs: kill it; the children (never
            # started) have just released what they opened.
            startup.cancel()
        shutdown = getattr(self.model.globalDefs, "shutdownScript", None)
        if shutdown is not None:
            timeout = self.model.globalDefs.shutdownScriptTimeout

            def runShutdown(result: object) -> Deferred[object]:
                return self._runGlobalScript(shutdown, timeout, "shutdown").addCallback(
                    lambda _: result)

            d.addBoth(runShutdown)
        if self.syncd is not None:
            syncd = self.syncd

            def stopSyncd(result: object) -> object:
                syncd.stop()
                return result

            d.addBoth(stopSyncd)
        return d
