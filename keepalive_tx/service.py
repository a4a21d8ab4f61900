"""
L{KeepalivedService}: the embeddable root service.

It is a plain L{IService}: it installs no signal handlers, starts no global
logging and daemonizes nothing; L{keepalive_tx.tap.makeService} does those.
Subsystems (VRRP instances, checkers, alerts) are children added from the
configuration model.

Hosts that call C{privilegedStartService} (twistd, before it sheds
privileges) get the sockets opened there; hosts that only call
C{startService} (C{twist}, most applications) get them opened at that
point, in the same order.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger


class ReloadError(Exception):
    """
    A reload could not be applied; the running configuration stays.
    """


def routerIdFor(globalDefs: Any) -> str:
    """
    C{router_id}, defaulting to the host name (keepalived uses the canonical
    name; we avoid a resolver call at start-up).
    """
    return globalDefs.routerId or socket.gethostname()


def buildAlerts(globalDefs: Any, reactor: Any) -> tuple[Any, Any]:
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


class KeepalivedService(MultiService):
    """
    The root of a keepalive_tx process, built from a configuration model.

    @ivar model: the immutable configuration model in force.
    @ivar reactor: the reactor every child uses.
    """

    log = Logger()

    def __init__(
        self,
        model: Any,
        reactor: Any = None,
        *,
        vrrp: bool = True,
        checkers: bool = True,
        bfd: bool = True,
        logDetail: bool = False,
        vrrpPlatform: Any = None,
        staticPlatform: Any = None,
        statusListen: str | None = None,
        releaseVrrp: bool = True,
        releaseIpvs: bool = True,
        firewallChannel: Any = None,
    ) -> None:
        """
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

            reactor = _reactor
        self.model = model
        self.reactor = reactor
        self._startup: Deferred[None] | None = None
        self._privileged = False
        #: every child has started (see L{whenStarted})
        self.started = False
        self._startedWaiters: list[Deferred[None]] = []
        #: reloads applied (SIGHUP)
        self.reloads = 0
        self.runVrrp = vrrp
        self.runCheckers = checkers
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
        self.staticService = self._buildStatic(model)
        if self.staticService is not None:
            self.staticService.setServiceParent(self)
        # The no_accept firewall: before VRRP (stale tables deleted before
        # the instances start; its tables deleted after they have stopped).
        self.firewall = self._buildFirewall(model)
        if self.firewall is not None:
            self.firewall.setServiceParent(self)
        # BFD before its clients (VRRP tracking, BFD_CHECK): it stops last
        self.bfdService = self._buildBfd(model)
        if self.bfdService is not None:
            self.bfdService.setServiceParent(self)
        self.vrrpService = self._buildVrrp(model)
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
        self.lvsService = self._buildLvs(model)
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

    def _buildStatic(self, model: Any) -> Any:
        if not self.runVrrp or not any(getattr(model, name, ()) for name in
                                       ("staticIpaddresses", "staticRoutes", "staticRules")):
            return None
        from keepalive_tx.net.static import StaticService

        return StaticService(model, platform=self.staticPlatform, reactor=self.reactor)

    def _buildBfd(self, model: Any) -> Any:
        if not self.runBfd or not getattr(model, "bfdInstances", ()):
            return None
        from keepalive_tx.bfd.service import BfdService

        return BfdService(model, self.reactor, logDetail=self.logDetail)

    def _buildVrrp(self, model: Any, resume: frozenset[str] = frozenset()) -> Any:
        if not self.runVrrp or not getattr(model, "vrrpInstances", ()):
            return None
        from keepalive_tx.alert.vrrp import InstanceAlerts
        from keepalive_tx.vrrp.service import VrrpService

        service = VrrpService(model, self.reactor, platform=self.vrrpPlatform,
                              alerts=self.alerts, resume=resume, firewall=self.firewall,
                              bfd=self.bfdService)
        service.releaseOnStop = self.releaseVrrp
        service.observers.append(InstanceAlerts(self.alerts))
        service.observers.append(self.transitions)
        return service

    def _buildFirewall(self, model: Any) -> Any:
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

    def _reloadFirewall(self, model: Any) -> None:
        """
        The firewall outlives reloads (its table name cannot change, as in
        keepalived); one is started when a reload first needs it.
        """
        if self.firewall is not None:
            from keepalive_tx.net.firewall import firewallSettingsFor

            settings, _ = firewallSettingsFor(model)
            if settings is not None and settings.table != self.firewall.settings.table:
                self.log.info("Cannot change nftables table name at a reload - please restart"
                              " keepalived")
            return
        self.firewall = self._buildFirewall(model)
        if self.firewall is not None:
            self.firewall.setServiceParent(self)
            self.services.remove(self.firewall)
            where = (self.services.index(self.vrrpService) if self.vrrpService in self.services
                     else self._insertionPoint("vrrpService"))
            self.services.insert(where, self.firewall)

    def _buildLvs(self, model: Any, previous: Any = None) -> Any:
        if not self.runCheckers or not getattr(model, "virtualServers", ()):
            return None
        from keepalive_tx.lvs.service import LvsService

        service = LvsService(model, self.reactor, alerts=self.alerts, previous=previous,
                             bfd=self.bfdService)
        service.releaseOnStop = self.releaseIpvs
        return service

    # -- reload --------------------------------------------------------------

    def reload(self, model: Any) -> Deferred[None]:
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
        from keepalive_tx.alert.security import forgetUsers

        forgetUsers()
        old = self.model
        bfdChanged = getattr(old, "bfdInstances", ()) != getattr(model, "bfdInstances", ())
        # a BFD service appearing now must exist before the VRRP and checker
        # services that follow it are built (it starts only if all can)
        newBfd = self._buildBfd(model) if self.bfdService is None else None
        if newBfd is not None:
            self.bfdService = newBfd
        vrrpChanged = _vrrpPart(old) != _vrrpPart(model)
        lvsChanged = _lvsPart(old) != _lvsPart(model)
        staticChanged = _staticPart(old) != _staticPart(model)
        # First build and prepare the successors (sockets, netlink, IPVS
        # handle): if one cannot start, nothing has been touched yet.
        vrrp = lvs = None
        resume: frozenset[str] = frozenset()
        if vrrpChanged:
            self._reloadFirewall(model)
            if self.vrrpService is not None:
                resume = frozenset(self.vrrpService.successorsResuming(model))
            vrrp = self._buildVrrp(model, resume)
            if vrrp is not None and self.syncd is not None:
                vrrp.observers.append(self.syncd)
        if lvsChanged:
            lvs = self._buildLvs(model, self.lvsService)
        prepared = []
        for successor, what in ((vrrp, "VRRP"), (lvs, "checkers")):
            if not self._prepare(successor, what):
                for done in prepared:
                    done.stopService()
                if newBfd is not None:
                    self.bfdService = None
                raise ReloadError(f"the new {what} configuration cannot start")
            if successor is not None:
                prepared.append(successor)
        self._reloadBfd(model, newBfd)
        changed = ["bfd"] if bfdChanged else []
        stopping = []
        if staticChanged:
            changed.append("static")
            stopping.append(self._replace(self.staticService, self._buildStatic(model),
                                          "staticService"))
        if vrrpChanged:
            changed.append("vrrp")
            if self.vrrpService is not None:
                self.vrrpService.handover(model)
            stopping.append(self._replace(self.vrrpService, vrrp, "vrrpService", prepared=True))
        if lvsChanged:
            changed.append("checkers")
            if self.lvsService is not None:
                self.lvsService.handover()
            stopping.append(self._replace(self.lvsService, lvs, "lvsService", prepared=True))
        self.model = model
        self.reloads += 1
        if not changed:
            self.log.info("Reloaded: configuration unchanged")
        else:
            self.log.info("Reloaded: {parts} changed", parts=", ".join(changed))
        return DeferredList(stopping, consumeErrors=True).addCallback(lambda _: None)

    def reloadStarting(self) -> None:
        """
        A reload is about to hold the reactor up (reading the file,
        rebuilding services, the heap refreeze): every BFD session sends one
        packet now, so its peer has a whole detection time to hear from us
        again.  (A L{keepalive_tx.reload.ReloadSignal} listener.)
        """
        if self.bfdService is not None:
            self.bfdService.transmitNow()

    def reloadEnded(self, refusal: str | None) -> None:
        if self.bfdService is not None:
            self.bfdService.transmitNow()

    def _reloadBfd(self, model: Any, service: Any) -> None:
        """
        Reconfigure the BFD sessions in place, or start C{service}, the BFD
        service the new configuration brings.
        """
        if service is None:
            if self.bfdService is not None:
                self.bfdService.reconfigure(model)
            return
        # before VRRP and the checkers, so that it stops after them
        index = self._insertionPoint("bfdService")
        service.setServiceParent(self)
        self.services.remove(service)
        self.services.insert(min(index, len(self.services)), service)

    def _prepare(self, successor: Any, what: str) -> bool:
        """
        Run the successor's C{privilegedStartService}; a failure leaves the
        running service as it is.
        """
        if successor is None or not self.running:
            return True
        try:
            successor.privilegedStartService()
        except Exception:
            self.log.failure("Reload: the new {what} configuration cannot start", what=what)
            try:
                successor.stopService()
            except Exception:
                self.log.failure("Reload: cleaning up the new {what} failed", what=what)
            return False
        return True

    def _replace(self, old: Any, new: Any, attribute: str, prepared: bool = False) -> Deferred[None]:
        """
        Swap a child, keeping its place among the children (the stop order
        depends on it).

        @param prepared: C{new} has had its C{privilegedStartService}
            already (only C{startService} is left).
        @return: a Deferred firing when C{old} has stopped.
        """
        index = self.services.index(old) if old is not None else None
        stopped: Deferred[None] = succeed(None)
        if old is not None:
            d = old.disownServiceParent()
            if isinstance(d, Deferred):
                stopped = d.addErrback(lambda f: self.log.failure(
                    "Stopping the old {what} failed", f, what=attribute))
        setattr(self, attribute, new)
        if new is None:
            return stopped
        if index is None:
            index = self._insertionPoint(attribute)
        index = min(index, len(self.services))
        if prepared and self.running:
            # what addService does, minus a second privilegedStartService
            new.parent = self
            if new.name is not None:
                self.namedServices[new.name] = new
            self.services.insert(index, new)
            new.startService()
            return stopped
        new.setServiceParent(self)
        self.services.remove(new)
        self.services.insert(index, new)
        return stopped

    def _insertionPoint(self, attribute: str) -> int:
        """
        Where a child that did not exist before goes: static before VRRP
        before checkers, all after the mailer.
        """
        order = ["staticService", "bfdService", "vrrpService", "lvsService"]
        later = [getattr(self, a) for a in order[order.index(attribute) + 1:]]
        for i, child in enumerate(self.services):
            if child in later and child is not None:
                return i
        return len(self.services)

    def snapshot(self) -> dict[str, Any]:
        """
        The status of everything, as plain data (see
        L{keepalive_tx.status.snapshot.buildSnapshot}).
        """
        from keepalive_tx.status.snapshot import buildSnapshot

        return buildSnapshot(self)

    def privilegedStartService(self) -> None:
        self._privileged = True
        super().privilegedStartService()
        if self.syncd is not None:
            self.syncd.start()

    def whenStarted(self) -> Deferred[None]:
        """
        A Deferred firing once every child has started (after
        C{startup_script} when there is one): the entry point tells systemd
        it is ready then.  It never fires if the service stops first.
        """
        if self.started:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._startedWaiters.append(d)
        return d

    def _allStarted(self) -> None:
        self.started = True
        waiters, self._startedWaiters = self._startedWaiters, []
        for d in waiters:
            d.callback(None)

    def startService(self) -> None:
        if not self._privileged:
            # the host never called privilegedStartService (twist): open
            # the sockets now, as twistd would have done just before
            self.privilegedStartService()
        self.log.info("Starting keepalive_tx")
        self.auditScripts()
        g = self.model.globalDefs
        script = getattr(g, "startupScript", None)
        if script is None:
            super().startService()
            self._allStarted()
            return
        # keepalived runs startup_script once, before its children start.
        Service.startService(self)
        d = self._runGlobalScript(script, g.startupScriptTimeout, "startup")
        self._startup = d
        d.addCallback(self._startChildren)

    def _startChildren(self, _: object = None) -> None:
        self._startup = None
        if not self.running:
            return
        for service in self:
            service.startService()
        self._allStarted()

    def makeScriptRunner(self, script: Any, timeout: float) -> Any:
        """
        The runner of C{startup_script} / C{shutdown_script} (a
        L{keepalive_tx.alert.scripts.ScriptRunner} under the configured
        script security; tests replace this method).
        """
        from keepalive_tx.alert.scripts import ScriptRunner
        from keepalive_tx.alert.security import ScriptPolicy

        policy = ScriptPolicy.fromGlobals(self.model.globalDefs)
        return ScriptRunner(self.reactor, script.argv, script.user, policy=policy,
                            timeout=timeout, shellTests=True)

    def _runGlobalScript(self, script: Any, timeout: float, what: str) -> Deferred[None]:
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

        def ended(result: Any) -> None:
            if not result.ok:
                self.log.warn("{what} script [{command}] {how}", what=what.capitalize(),
                              command=script.command, how=result.describe())

        d = runner.run()
        d.addCallback(ended)
        d.addErrback(lambda f: self.log.failure("{what} script failed", f, what=what))
        return d

    def auditScripts(self) -> list[str]:
        """
        Log keepalived's start-up lines about scripts (missing, not
        executable, unsafe or disabled scripts, the missing default user,
        C{SECURITY VIOLATION}).

        @return: the lines logged.
        """
        from keepalive_tx.alert.security import ScriptPolicy, auditMessages

        policy = ScriptPolicy.fromGlobals(self.model.globalDefs)
        try:
            lines = auditMessages(self.model, policy)
        except Exception:
            self.log.failure("Cannot check script security")
            return []
        for line in lines:
            self.log.warn("{line}", line=line)
        return lines

    def stopService(self):
        self.log.info("Stopping keepalive_tx")
        self._privileged = self.started = False
        self._startedWaiters = []
        startup, self._startup = self._startup, None
        d = super().stopService()
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


_STATIC_FIELDS = ("staticIpaddresses", "staticRoutes", "staticRules")
_VRRP_FIELDS = ("vrrpInstances", "syncGroups", "vrrpScripts", "trackFiles", "trackProcesses",
                "garpGroups")
_LVS_FIELDS = ("virtualServers", "virtualServerGroups")


def _part(model: Any, fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(model, name, ()) for name in fields)


def _staticPart(model: Any) -> tuple[Any, ...]:
    return (*_part(model, _STATIC_FIELDS), getattr(model.globalDefs, "defaultInterface", None))


def _bfdTracking(model: Any, side: str) -> tuple[Any, ...]:
    """
    What VRRP tracking (C{side} "forVrrp") or the checkers ("forChecker")
    take from the C{bfd_instance}s: their names and default weights, not
    their timers (those the BFD service changes in place).
    """
    return tuple((b.name, b.weight, b.weightReverse) for b in
                 getattr(model, "bfdInstances", ()) if getattr(b, side))


def _vrrpPart(model: Any) -> tuple[Any, ...]:
    # global_defs carries VRRP settings (GARP timers, multicast groups,
    # script security ...): any change there restarts VRRP (hitless anyway)
    return (*_part(model, _VRRP_FIELDS), model.globalDefs, _bfdTracking(model, "forVrrp"))


def _lvsPart(model: Any) -> tuple[Any, ...]:
    return (*_part(model, _LVS_FIELDS), model.globalDefs, _bfdTracking(model, "forChecker"))
