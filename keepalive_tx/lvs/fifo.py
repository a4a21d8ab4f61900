# -*- test-case-name: tests.unit.test_lvs_fifo -*-
"""
The LVS lines of keepalived's notify FIFOs (keepalived's C{notify.c}).

Every real server alive/dead notification writes C{RS <rs> <vs> UP|DOWN}
and every quorum notification C{VS <vs> UP|DOWN} to C{notify_fifo} and
C{lvs_notify_fifo}, where C{<rs>} is C{[ip]:proto:port} and C{<vs>} the
virtual server's log name (C{[ip]:proto:port}, C{FWM n}, C{[group]:port}).
Unlike the VRRP lines, each LVS line is followed by a NUL byte (keepalived
writes C{strlen + 1} bytes).

Like keepalived, the initial quorum state is written when it is up, and
when it is down only for a virtual server with a sorry server.

The FIFOs are L{keepalive_tx.scripts.fifo.NotifyFifo}s: created when
absent, opened so that nothing ever blocks, a line that does not fit is
lost.  C{lvs_notify_fifo_script} (and C{notify_fifo_script} when no VRRP
instance is configured, so that the VRRP side does not start it) run with
the FIFO path as their last argument and are killed at close.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.logger import Logger

from keepalive_tx.lvs.pool import QuorumChange, RealServerChange
from keepalive_tx.lvs.wording import describeDest
from keepalive_tx.scripts.fifo import NotifyFifo

__all__ = ["LvsFifos", "rsLine", "vsLine"]

log = Logger()


def _word(up: bool) -> str:
    return "UP" if up else "DOWN"


def rsLine(rs: str, vs: str, up: bool) -> bytes:
    """
    C{RS [192.0.2.11]:tcp:80 [192.0.2.100]:tcp:80 UP\\n\\0}.
    """
    return f"RS {rs} {vs} {_word(up)}\n".encode() + b"\0"


def vsLine(vs: str, up: bool) -> bytes:
    """
    C{VS [192.0.2.100]:tcp:80 UP\\n\\0}.
    """
    return f"VS {vs} {_word(up)}\n".encode() + b"\0"


class LvsFifos:
    """
    Writes the LVS lines of pool events to the notify FIFOs; an observer
    of L{keepalive_tx.lvs.service.LvsService}.

    @ivar fifos: the open L{NotifyFifo}s.
    """

    def __init__(
        self,
        reactor: Any,
        fifos: Iterable[Any],
        virtualServers: Iterable[Any] = (),
        fifoScripts: Iterable[tuple[Any, Any]] = (),
        runnerFactory: Callable[[Any], Any] | None = None,
        policy: Any = None,
    ) -> None:
        """
        @param fifos: L{NotifyFifo}s (not yet open).
        @param virtualServers: the configured virtual servers (to name real
            servers with their protocol).
        @param fifoScripts: C{(fifo, script)} pairs to start at L{open}.
        @param runnerFactory: C{script -> runner} (default
            L{keepalive_tx.scripts.runner.ScriptRunner}).
        @param policy: the L{keepalive_tx.scripts.security.ScriptPolicy} of
            the default runners (L{None}: our identity, no checks).
        """
        self.reactor = reactor
        self.policy = policy
        self.fifos = list(fifos)
        self.byName = {vs.name: vs for vs in virtualServers}
        self.fifoScripts = list(fifoScripts)
        self.runnerFactory = runnerFactory
        self._runs: list[Any] = []

    @classmethod
    def fromConfig(cls, reactor: Any, model: Any, **kw: Any) -> LvsFifos | None:
        """
        The FIFOs of C{global_defs} (C{notify_fifo}, C{lvs_notify_fifo}),
        or L{None} when neither is configured.
        """
        g = getattr(model, "globalDefs", None)
        if g is None:
            return None
        withVrrp = bool(getattr(model, "vrrpInstances", ()))
        fifos: list[Any] = []
        scripts: list[tuple[Any, Any]] = []
        for fifo, script in ((g.notifyFifo, None if withVrrp else g.notifyFifoScript),
                             (g.lvsNotifyFifo, g.lvsNotifyFifoScript)):
            if fifo is None or any(f.path == fifo.path for f in fifos):
                continue
            nf = NotifyFifo(fifo.path, fifo.user, log)
            fifos.append(nf)
            if script is not None:
                scripts.append((nf, script))
        if not fifos:
            return None
        if "policy" not in kw:
            from keepalive_tx.scripts.security import ScriptPolicy

            kw["policy"] = ScriptPolicy.fromGlobals(g)
        return cls(reactor, fifos, getattr(model, "virtualServers", ()), scripts, **kw)

    # -- lifecycle ---------------------------------------------------------------

    def open(self) -> None:
        for fifo in self.fifos:
            fifo.open()
        for fifo, script in self.fifoScripts:
            if fifo.fd is None:
                continue
            try:
                runner = self._runner(script)
                if getattr(runner, "error", None) is not None:
                    # disabled (missing, not executable, unsafe): keepalived
                    # drops it; the start-up audit said why
                    continue
                runner.run((fifo.path,), timeout=None)
            except Exception:
                log.failure("Cannot run [{command}] for notify fifo {path}",
                            command=script.command, path=fifo.path)
                continue
            log.info("Executing [{command}] for notify fifo {path}", command=script.command,
                     path=fifo.path)
            self._runs.append(runner)

    def close(self) -> None:
        for runner in self._runs:
            killAll = getattr(runner, "killAll", None)
            if killAll is not None:
                killAll()
        self._runs = []
        for fifo in self.fifos:
            fifo.close()

    def _runner(self, script: Any) -> Any:
        if self.runnerFactory is not None:
            return self.runnerFactory(script)
        from keepalive_tx.scripts.runner import ScriptRunner

        return ScriptRunner.fromScript(self.reactor, script, policy=self.policy)

    # -- events ------------------------------------------------------------------

    def __call__(self, event: Any) -> None:
        """
        A pool event (L{LvsService.observers}).
        """
        if isinstance(event, RealServerChange):
            vs = self.byName.get(event.virtualServer)
            if vs is None:
                return
            self.write(rsLine(describeDest(vs, event.server), vs.name, event.alive))
        elif isinstance(event, QuorumChange):
            vs = self.byName.get(event.virtualServer)
            if event.initial and not event.up and (vs is None or vs.sorryServer is None):
                return  # keepalived: no notification for this initial state
            self.write(vsLine(event.virtualServer, event.up))

    def realServerNotified(self, vs: Any, server: Any, up: bool) -> None:
        """
        A real server notification that is not a pool event
        (C{rs_init_notifies}).
        """
        self.write(rsLine(describeDest(vs, server), vs.name, up))

    def write(self, line: bytes) -> None:
        for fifo in self.fifos:
            fifo.write(line)
