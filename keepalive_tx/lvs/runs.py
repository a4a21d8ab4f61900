# -*- test-case-name: tests.unit.test_lvs_shared -*-
"""
Running checks for L{keepalive_tx.lvs.service.LvsService}.

A L{CheckerRun} is one running check and the real-server checkers it
drives: usually one, several when C{checker_share_identical} finds the same
check configured for several real servers (the same server behind several
virtual servers, say).  Every result and every state event of the check is
fanned out to each of them.

Two kinds of check run:

  - scheduled checkers (everything but FILE_CHECK) run on a
    L{CheckerScheduler}, whose C{onResult} hook shows the run each result
    before the scheduler judges it (for dynamic weights and mail wording);
  - event-driven checkers (C{BuiltChecker.driven}: FILE_CHECK) deliver
    their results themselves (C{start(onResult)}/C{stop()}); the run feeds
    them to the checker's state to get the same events.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from keepalive_tx.check.base import CheckerEvent, CheckerScheduler, CheckResult
from keepalive_tx.check.factory import BuiltChecker

__all__ = ["CheckerRun"]


class CheckerRun:
    """
    One running check and the subscribers it drives.

    @ivar built: the L{BuiltChecker} (its state is shared by all
        subscribers).
    @ivar subscribers: what each result and event is delivered to (the
        service's per-real-server checker records).
    @ivar scheduler: the L{CheckerScheduler}, or L{None} when driven.
    """

    log = Logger()

    def __init__(
        self,
        built: BuiltChecker,
        clock: Any,
        onResult: Callable[[Any, CheckResult], object],
        onEvent: Callable[[Any, CheckerEvent], object],
        random: Callable[[], float] = _random.random,
        vsName: str = "",
    ) -> None:
        """
        @param onResult: called with C{(subscriber, result)} for every
            result, before its event.
        @param onEvent: called with C{(subscriber, event)} for every
            L{CheckerEvent}.
        @param vsName: the (first) virtual server's name, for log lines.
        """
        self.built = built
        self.onResult = onResult
        self.onEvent = onEvent
        self.subscribers: list[Any] = []
        self.enabled = True
        self.scheduler: CheckerScheduler | None = None
        if not built.driven:
            self.scheduler = CheckerScheduler(
                built.checker,
                built.state,
                built.timing,
                clock,
                self._scheduled,
                random,
                onResult=self._result,
            )
            self.scheduler.vsName = vsName

    @property
    def kind(self) -> str:
        return self.built.checker.kind

    def start(self) -> None:
        if self.scheduler is not None:
            self.scheduler.start()
        else:
            self.built.checker.start(self._delivered)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        else:
            self.built.checker.stop()

    def setEnabled(self, enabled: bool) -> None:
        """
        C{ha_suspend}: a scheduled check stops checking while disabled; an
        event-driven one keeps following its file (keepalived does not
        suspend track files).
        """
        self.enabled = enabled
        if self.scheduler is not None:
            self.scheduler.setEnabled(enabled)

    # -- fan out ---------------------------------------------------------------

    def _result(self, result: CheckResult) -> None:
        subscribers = self.subscribers
        if len(subscribers) == 1:
            self.onResult(subscribers[0], result)
            return
        for subscriber in list(subscribers):
            self.onResult(subscriber, result)

    def _scheduled(self, scheduler: CheckerScheduler, event: CheckerEvent) -> None:
        self._event(event)

    def _event(self, event: CheckerEvent) -> None:
        for subscriber in list(self.subscribers):
            self.onEvent(subscriber, event)

    def _delivered(self, result: CheckResult) -> None:
        self._result(result)
        verdict = self.built.state.record(result.ok)
        event = verdict.event
        if event is None:
            return
        self.log.info("{line}", line=result.logLine(self.built.checker.describe()))
        self._event(event)
