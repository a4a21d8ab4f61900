# -*- test-case-name: tests.unit.test_reload -*-
"""
SIGHUP: reload the configuration (keepalived's RELOAD signal function).

L{ReloadSignal} is process-level, like
L{keepalive_tx.status.dumps.DumpSignals}: added by
L{keepalive_tx.tap.makeService}, never by the embeddable service.  The
signal handler only schedules the reload on the reactor thread; the reload
reads the file again, logs its diagnostics and, unless the new
configuration cannot be used at all (a fatal problem: missing file,
unreadable include ...; keepalived would stop there), hands it to
L{keepalive_tx.service.KeepalivedService.reload}.  Without this handler
SIGHUP would end the process on the spot, leaving its addresses behind.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

__all__ = ["ReloadSignal"]


class ReloadSignal(Service):
    """
    Reload on C{SIGHUP} while running.

    @ivar reloads: completed reloads; @ivar refused: refused ones.
    """

    log = Logger()
    name = "reload-signal"

    def __init__(self, service: Any, loader: Callable[[], Any],
                 install: Callable[[int, Any], Any] = _signal.signal,
                 afterReload: Callable[[], object] | None = None,
                 listeners: Iterable[Any] = ()) -> None:
        """
        @param service: the L{keepalive_tx.service.KeepalivedService}.
        @param loader: reads the configuration again (returns a
            C{LoadResult} with C{model} and C{diagnostics}).
        @param install: C{signal.signal} (injectable for tests).
        @param afterReload: called after a reload was applied (twistd's
            entry point lets the replaced objects be collected there).
        """
        self.service = service
        self.loader = loader
        self.install = install
        self.afterReload = afterReload
        self.listeners = list(listeners)
        self.reloads = 0
        self.refused = 0
        self._previous: Any = None
        self._installed = False

    def startService(self) -> None:
        super().startService()
        try:
            self._previous = self.install(_signal.SIGHUP, self._handler)
            self._installed = True
        except (OSError, ValueError) as e:  # not the main thread
            self.log.warn("Cannot handle SIGHUP: {error}", error=e)

    def stopService(self) -> None:
        super().stopService()
        if self._installed:
            self._installed = False
            try:
                self.install(_signal.SIGHUP, self._previous if self._previous is not None
                             else _signal.SIG_DFL)
            except (OSError, ValueError):
                pass

    def _handler(self, signum: int, frame: Any) -> None:
        self.service.reactor.callFromThread(self.reload)

    def reload(self) -> bool:
        """
        Read the configuration again and apply it; tell the L{listeners}
        before and after (C{reloadStarting()}, C{reloadEnded(refusal)}
        with L{None} or why the reload was refused).

        @return: whether it was applied.
        """
        self._tell("reloadStarting")
        refusal = self._reload()
        if refusal is None:
            self.reloads += 1
        else:
            self.refused += 1
        self._tell("reloadEnded", refusal)
        return refusal is None

    def _tell(self, event: str, *args: object) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, event)(*args)
            except Exception:
                self.log.failure("Reload listener {listener} failed", listener=listener)

    def _reload(self) -> str | None:
        """
        @return: L{None} when applied, else why it was refused.
        """
        from keepalive_tx.config.errors import Severity

        self.log.info("Reloading configuration")
        try:
            result = self.loader()
        except Exception:
            self.log.failure("Reload refused: cannot read the configuration")
            return "cannot read the configuration"
        for diagnostic in result.diagnostics:
            self.log.warn("{diagnostic}", diagnostic=str(diagnostic))
        if result.model is None or result.diagnostics.worst is Severity.FATAL:
            self.log.error("Reload refused: the new configuration cannot be used; still running"
                           " the previous one")
            return "the new configuration cannot be used"
        from keepalive_tx.service import ReloadError

        try:
            self.service.reload(result.model)
        except ReloadError as e:
            self.log.error("Reload refused: {why}; still running the previous configuration",
                           why=str(e))
            return str(e)
        except Exception:
            self.log.failure("Reload failed")
            return "reload failed"
        if self.afterReload is not None:
            try:
                self.afterReload()
            except Exception:
                self.log.failure("After-reload hook failed")
        return None
