# -*- test-case-name: tests.unit.test_reload -*-
"""
Reloading the configuration: L{Reloader}, behind both
L{keepalive_tx.service.KeepalivedService.reload} (the embedding API) and
C{SIGHUP} (keepalived's RELOAD signal function).

Every L{keepalive_tx.service.KeepalivedService} has one L{Reloader}; it
handles C{SIGHUP} only when the twistd entry point
(L{keepalive_tx.tap.makeService}) sets its C{install} (process-level, like
L{keepalive_tx.status.dumps.DumpSignals}; never the embeddable service
alone).  The signal handler only asks for a reload on the reactor thread
(L{Reloader.request}); the reload reads the configuration again, logs its
diagnostics and, unless the new configuration cannot be used at all (a
fatal problem: missing file, unreadable include ...; keepalived would stop
there), hands it to
L{keepalive_tx.service.KeepalivedService.applyConfig}.  Without this
handler SIGHUP would end the process on the spot, leaving its addresses
behind.

Reloads never overlap, and bursts coalesce: requests made while a reload
is waiting to run are served by it (it reads the configuration when it
runs, so it sees the newest file; a request naming a new source -- another
file, other text -- makes the waiting reload read that one); requests made
while one is being applied -- from reading the file until the parts it
replaced have stopped -- are served by B{one} more reload, run afterwards.
A hundred SIGHUPs in a row thus cost a few reloads, each complete before
the next begins, and the last file written is the one in force.  The
source a reload applied is the one later requests read again.

The file is read (and parsed, and checked) in a thread of the reactor's
pool when the reactor has one, so that timers and packets -- BFD at tens
of milliseconds, VRRPv3 centisecond adverts -- keep their pace while it is
read; applying the new configuration runs on the reactor thread.

Listeners (L{IReloadListener}, e.g. the systemd notifier) hear when a
reload starts and when it ends: applied (the replaced parts have stopped)
or refused.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

__all__ = ["IReloadListener", "ReloadSignal", "Reloader"]


class IReloadListener(Interface):
    """
    Hears about each reload that runs (requests that coalesced into it
    are not told apart).
    """

    def reloadStarting() -> None:
        """
        A reload begins: the configuration is read again.
        """

    def reloadEnded(refusal: str | None) -> None:
        """
        The reload ended: applied (C{refusal} is L{None}; the new
        configuration is in force and the parts it replaced have stopped),
        or refused (C{refusal} says why; the previous configuration keeps
        running).
        """


class Reloader(Service):
    """
    Runs the reloads of one service (see the module docstring); handles
    C{SIGHUP} while running when C{install} is set.

    @ivar reloads: applied reloads; @ivar refused: refused ones;
        @ivar requests: reloads asked for (more than C{reloads + refused}
        when requests coalesced).
    @ivar listeners: L{IReloadListener}s.
    @ivar applyTimeout: after this many seconds of waiting for the
        replaced parts to stop, a reload counts as applied anyway (logged),
        so that a stop that never ends cannot block reloads for good.
    @ivar readInThread: read the configuration in a thread of the
        reactor's pool when the reactor has one (else on the reactor
        thread, as with a L{twisted.internet.task.Clock}).
    @ivar lastRefusal: why the last reload was refused (a
        L{keepalive_tx.config.errors.ConfigError} with the diagnostics, a
        L{keepalive_tx.errors.ReloadError} ...), L{None} when it was applied.
    """

    log = Logger()
    name = "reload"
    applyTimeout = 60.0
    readInThread = True

    def __init__(self, service: Any, loader: Callable[[], Any],
                 install: Callable[[int, Any], Any] | None = None,
                 afterReload: Callable[[], object] | None = None,
                 listeners: Iterable[Any] = (),
                 refuses: Callable[[Any], bool] | None = None) -> None:
        """
        @param service: the L{keepalive_tx.service.KeepalivedService}.
        @param loader: reads the configuration again (returns a
            C{LoadResult} with C{model} and C{diagnostics}).
        @param install: C{signal.signal} to handle C{SIGHUP} (injectable
            for tests); L{None}: no signal handler.
        @param afterReload: called after a reload was applied (twistd's
            entry point lets the replaced objects be collected there).
        @param listeners: L{IReloadListener}s.
        @param refuses: whether a configuration's diagnostics make it one
            keepalived would refuse to run (default: their C{refusesStart});
            such a reload is refused and the running configuration stays,
            where keepalived would stop.
        """
        self.service = service
        self.loader = loader
        self.install = install
        self.afterReload = afterReload
        self.listeners: list[Any] = list(listeners)
        self.refuses: Callable[[Any], bool] = refuses or (lambda d: bool(d.refusesStart))
        self.reloads = 0
        self.refused = 0
        self.requests = 0
        self._previous: Any = None
        self._installed = False
        #: the call that will run the next reload, if one is due
        self._scheduled: Any = None
        #: a reload is running (file read, being applied)
        self._busy = False
        #: requests that came while busy: one more reload is owed
        self._again = False
        #: Deferreds of L{reload} callers the next run will answer
        self._waiting: list[Deferred[bool]] = []
        #: the loader a request named for the next run (else C{loader})
        self._nextLoader: Callable[[], Any] | None = None
        self.lastRefusal: Exception | None = None

    @property
    def reactor(self) -> Any:
        return self.service.reactor

    def startService(self) -> None:
        super().startService()
        if self.install is None:
            return
        try:
            self._previous = self.install(_signal.SIGHUP, self._handler)
            self._installed = True
        except (OSError, ValueError) as e:  # not the main thread
            self.log.warn("Cannot handle SIGHUP: {error}", error=e)

    def stopService(self) -> None:
        super().stopService()
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        self._scheduled = None
        self._again = False
        self._nextLoader = None
        waiting, self._waiting = self._waiting, []
        if waiting:
            from keepalive_tx.errors import ReloadError

            self.lastRefusal = ReloadError("the service stopped before the reload ran")
        for d in waiting:
            d.callback(False)
        if self._installed:
            self._installed = False
            try:
                self.install(_signal.SIGHUP, self._previous if self._previous is not None
                             else _signal.SIG_DFL)
            except (OSError, ValueError):
                pass

    def _handler(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self.request)

    # -- requests ------------------------------------------------------------

    def request(self, loader: Callable[[], Any] | None = None) -> None:
        """
        Ask for a reload (what SIGHUP does): it runs on a later reactor
        turn, or after the one being applied; requests in between
        coalesce.

        @param loader: read this source from now on (default: the source
            of the last reload applied, or the first C{loader}).
        """
        if loader is not None:
            self._nextLoader = loader
        self.requests += 1
        if self._busy:
            self._again = True
            return
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled is None and self.running:
            self._scheduled = self.reactor.callLater(0, self._run)

    def reload(self, loader: Callable[[], Any] | None = None) -> Deferred[bool]:
        """
        Ask for a reload, as L{request}.

        @return: a Deferred firing with whether the reload that served the
            request (one that read the file after it was made) was applied
            (C{False} at once when this service does not run); when it was
            not, L{lastRefusal} says why until the next reload ends.
        """
        if not self.running:
            from keepalive_tx.errors import ReloadError

            self.lastRefusal = ReloadError("the service is not running")
            return succeed(False)
        d: Deferred[bool] = Deferred()
        self._waiting.append(d)
        self.request(loader)
        return d

    # -- one reload ----------------------------------------------------------

    def _run(self) -> None:
        self._scheduled = None
        self._busy = True
        waiting, self._waiting = self._waiting, []
        loader, self._nextLoader = self._nextLoader or self.loader, None
        self._tell("reloadStarting")
        d = self._apply(loader)

        def done(applied: bool) -> None:
            if applied:
                self.loader = loader
                self.lastRefusal = None
                self.reloads += 1
                if self.afterReload is not None:
                    try:
                        self.afterReload()
                    except Exception:
                        self.log.failure("After-reload hook failed")
                self._tell("reloadEnded", None)
            self._busy = False
            for waiter in waiting:
                waiter.callback(applied)
            if self._again:
                self._again = False
                self._schedule()

        d.addCallback(done)

    def _refuse(self, why: str, error: Exception | None = None) -> bool:
        from keepalive_tx.errors import ReloadError

        self.lastRefusal = error if error is not None else ReloadError(why)
        self.refused += 1
        self._tell("reloadEnded", why)
        return False

    def _apply(self, loader: Callable[[], Any]) -> Deferred[bool]:
        """
        Read the configuration and apply it.

        @return: a Deferred firing with C{True} once it is applied, or with
            C{False} when it was refused.
        """
        from keepalive_tx.errors import ReloadError

        self.log.info("Reloading configuration")

        def unreadable(failure: Failure) -> bool:
            self.log.failure("Reload refused: cannot read the configuration", failure)
            return self._refuse("cannot read the configuration", ReloadError(
                f"cannot read the configuration: {failure.value}"))

        return self._read(loader).addCallbacks(self._applyResult, unreadable)

    def _read(self, loader: Callable[[], Any]) -> Deferred[Any]:
        """
        Run C{loader} off the reactor thread when the reactor has threads
        (see L{readInThread}).
        """
        reactor = self.reactor
        if self.readInThread and IReactorThreads.providedBy(reactor):
            return deferToThreadPool(reactor, reactor.getThreadPool(), loader)
        return maybeDeferred(loader)

    def _applyResult(self, result: Any) -> Deferred[bool] | bool:
        """
        Apply a configuration read by L{_read}, unless it cannot be used or
        this service stopped meanwhile.
        """
        from keepalive_tx.config.errors import ConfigError
        from keepalive_tx.errors import ReloadError

        if not self.running:
            return self._refuse("the service stopped")
        for diagnostic in result.diagnostics:
            self.log.warn("{diagnostic}", diagnostic=str(diagnostic))
        if result.model is None or self.refuses(result.diagnostics):
            self.log.error("Reload refused: the new configuration cannot be used; still running"
                           " the previous one")
            return self._refuse("the new configuration cannot be used",
                                ConfigError(result.diagnostics))
        try:
            stopped = self.service.applyConfig(result.model)
        except ReloadError as e:
            self.log.error("Reload refused: {why}; still running the previous configuration",
                           why=str(e))
            return self._refuse(str(e), e)
        except Exception as e:
            self.log.failure("Reload failed")
            return self._refuse("reload failed", ReloadError(f"reload failed: {e}"))
        if not isinstance(stopped, Deferred):
            return True
        return self._whenStopped(stopped)

    def _whenStopped(self, stopped: Deferred[Any]) -> Deferred[bool]:
        """
        Wait for the replaced parts to stop, at most L{applyTimeout}.
        """
        applied: Deferred[bool] = Deferred()

        def fire(_: object = None) -> None:
            if timer.active():
                timer.cancel()
            if not applied.called:
                applied.callback(True)

        def late() -> None:
            self.log.warn("Reload: the replaced parts have not stopped after {timeout}s;"
                          " accepting further reloads", timeout=self.applyTimeout)
            fire()

        timer = self.reactor.callLater(self.applyTimeout, late)
        stopped.addErrback(lambda f: self.log.failure("Reload: stopping the replaced parts"
                                                      " failed", f))
        stopped.addBoth(fire)
        return applied

    def _tell(self, event: str, *args: Any) -> None:
        for listener in list(self.listeners):
            try:
                getattr(listener, event)(*args)
            except Exception:
                self.log.failure("Reload listener {listener} failed", listener=listener)


class ReloadSignal(Reloader):
    """
    A L{Reloader} handling C{SIGHUP} (C{install} defaults to
    C{signal.signal}).
    """

    def __init__(self, service: Any, loader: Callable[[], Any],
                 install: Callable[[int, Any], Any] | None = _signal.signal,
                 afterReload: Callable[[], object] | None = None,
                 listeners: Iterable[Any] = (),
                 refuses: Callable[[Any], bool] | None = None) -> None:
        super().__init__(service, loader, install, afterReload, listeners, refuses)
