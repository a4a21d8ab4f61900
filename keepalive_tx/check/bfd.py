# -*- test-case-name: tests.unit.test_check_bfd -*-
"""
C{BFD_CHECK}: the real server follows a C{bfd_instance}.

Event driven, like FILE_CHECK: L{BfdChecker.start} delivers the session's
current state (down until it has been Up, as keepalived's BFD process
reports at start) and then every up/down event of the session.  The BFD
sessions are an object with C{isUp(name)}, C{subscribe(observer)} and
C{unsubscribe(observer)} (L{keepalive_tx.bfd.service.BfdService}), bound by
the LVS service with L{BfdChecker.bind}; unbound (no BFD runs, C{-B}), the
session stays down.

Log line (keepalived): C{BFD check of [NAME] RS([ip]:proto:port) is UP}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from keepalive_tx.check.base import CheckResult

__all__ = ["BfdChecker"]

log = Logger()


class BfdChecker:
    """
    One BFD_CHECK.

    @ivar bfdName: the C{bfd_instance} followed.
    @ivar server: the real server, as keepalived formats it, for logs.
    """

    kind = "BFD_CHECK"

    def __init__(self, bfdName: str, sessions: Any = None, server: str = "") -> None:
        self.bfdName = bfdName
        self.sessions = sessions
        self.server = server
        self.onResult: Callable[[CheckResult], object] | None = None

    @classmethod
    def fromConfig(cls, reactor: Any, config: Any) -> BfdChecker:
        return cls(config.name)

    def bind(self, sessions: Any, server: str) -> None:
        """
        Follow C{sessions} (before L{start}); C{server} names the real
        server in log lines.
        """
        self.sessions = sessions
        self.server = server

    def describe(self) -> str:
        return self.server or f"[{self.bfdName}]"

    def isUp(self) -> bool:
        return self.sessions is not None and bool(self.sessions.isUp(self.bfdName))

    def result(self, up: bool) -> CheckResult:
        return CheckResult(up, "BFD session up" if up else "BFD session down",
                           f"BFD check of [{self.bfdName}] RS({{chk}}) is {'UP' if up else 'DOWN'}")

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        return succeed(self.result(self.isUp()))

    def start(self, onResult: Callable[[CheckResult], object]) -> None:
        self.onResult = onResult
        if self.sessions is not None:
            self.sessions.subscribe(self._event)
        self._deliver(self.isUp())

    def stop(self) -> None:
        if self.onResult is not None and self.sessions is not None:
            self.sessions.unsubscribe(self._event)
        self.onResult = None

    def _event(self, name: str, up: bool) -> None:
        if name == self.bfdName:
            self._deliver(up)

    def _deliver(self, up: bool) -> None:
        if self.onResult is None:
            return
        try:
            self.onResult(self.result(up))
        except Exception:
            log.failure("BFD_CHECK {name} result handler failed", name=self.bfdName)
