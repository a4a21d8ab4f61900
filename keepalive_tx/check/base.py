# -*- test-case-name: tests.unit.test_check_base -*-
"""
Health-checker framework core: per-checker state, scheduling, results.

Two pure state machines decide what a check result means, following
keepalived's checker epilogues (C{tcp_epilog} in C{check_tcp.c}, C{epilog}
in C{check_http.c}):

  - L{CheckerState} is the generic pattern (TCP_CHECK and the simple
    connect/answer checkers): C{retry} extra attempts spaced by
    C{delay_before_retry} before a checker that is up goes DOWN; at daemon
    start C{retry_it} is preset to C{retry} so the B{first} failure is
    decisive; failures while already down are rescheduled at C{delay_loop}.
  - L{HttpCheckerState} is the HTTP_GET/SSL_GET pattern: one URL per tick,
    round-robin; a failing URL is retried C{retry} times at
    C{delay_before_retry}; once down that URL is re-checked every
    C{max(delay_before_retry, delay_loop)} and, when it passes, every URL is
    checked again from the first; the checker comes UP after a full
    successful pass.

Both return an L{AttemptVerdict}: the delay before the next attempt and, when the
checker's state must be (re)asserted, a L{CheckerEvent}.  The first verdict of
every checker always carries an event (C{first=True}), so the pool can apply
keepalived's alpha / C{rs_init_notifies} rules; events with C{up == wasUp}
change nothing.

L{CheckerScheduler} is the adapter: it runs a checker's C{check(target)} on an
injected clock (C{IReactorTime}), never overlapping, feeds results to the
state and reports events.  The first run is C{1 s + uniform(0, warmup)} after
start.  Its timers live in the clock's shared
L{keepalive_tx.check.timers.TimerQueue}: one reactor timer for thousands of
checkers, and a bounded number of attempts started per reactor iteration, so
that a VRRP advert timer in the same reactor stays on time.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from keepalive_tx.check.timers import TimerQueue, timerQueue

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

#: keepalived's BOOTSTRAP_DELAY: the first check runs this long after start
#: (plus the random warm-up).
BOOTSTRAP_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """
    The outcome of one check attempt.

    @ivar ok: whether the attempt succeeded.
    @ivar reason: keepalived's short message, e.g. C{"Timeout HTTP read"},
        C{"HTTP status code error to"} (what C{genhash} prints on failure).
    @ivar message: the full log line, with C{{chk}} standing for the
        checker's address; empty for the default C{"<reason> server <chk>."}.
    """

    ok: bool
    reason: str = ""
    message: str = ""

    def logLine(self, chk: str) -> str:
        """
        @return: the log line for this result of checker C{chk}.
        """
        if self.message:
            return self.message.replace("{chk}", chk)
        if self.ok:
            return f"{self.reason} {chk}"
        return f"{self.reason} server {chk}."


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """
    Where and how a connecting checker connects (keepalived's C{conn_opts}).

    @ivar connectIp: the IPv4 or IPv6 literal to connect to.
    @ivar connectPort: the TCP port.
    @ivar bindTo: local address to bind, or L{None}.
    @ivar bindPort: local port to bind (0 = any).
    @ivar connectTimeout: seconds allowed to connect, and to wait for each
        answer (keepalived uses the one value for every phase).
    """

    connectIp: str
    connectPort: int
    bindTo: str | None = None
    bindPort: int = 0
    connectTimeout: float = 5.0

    @property
    def isIPv6(self) -> bool:
        return ":" in self.connectIp

    def bindAddress(self) -> tuple[str, int] | None:
        """
        @return: the C{bindAddress} argument for C{connectTCP}.
        """
        if self.bindTo is None and not self.bindPort:
            return None
        if self.bindTo is None:
            return ("::" if self.isIPv6 else "0.0.0.0", self.bindPort)
        return (self.bindTo, self.bindPort)

    def describe(self, proto: str = "tcp") -> str:
        """
        @return: keepalived's C{FMT_CHK} text, C{[192.0.2.1]:tcp:80}.
        """
        return f"[{self.connectIp}]:{proto}:{self.connectPort}"


@dataclass(frozen=True, slots=True)
class CheckerEvent:
    """
    The checker's state must be set to C{up}.

    @ivar up: the new checker state.
    @ivar wasUp: the checker state before this event (C{up == wasUp} for a
        first verdict confirming the initial state).
    @ivar first: this is the checker's first verdict since start.
    @ivar retries: retries made before a DOWN verdict (for the
        C{failed after N retries} log line); 0 for "failed." without retries.
    """

    up: bool
    wasUp: bool
    first: bool
    retries: int = 0

    @property
    def changed(self) -> bool:
        return self.up != self.wasUp


@dataclass(frozen=True, slots=True)
class AttemptVerdict:
    """
    What to do after a check attempt.

    @ivar delay: seconds until the next attempt.
    @ivar event: a state event, or L{None}.
    @ivar retrying: the failure was absorbed as a retry.
    """

    delay: float
    event: CheckerEvent | None = None
    retrying: bool = False


_VERDICTS: dict[tuple[float, bool], AttemptVerdict] = {}


def _verdict(delay: float, retrying: bool) -> AttemptVerdict:
    """
    The shared (immutable) eventless L{AttemptVerdict} C{(delay, retrying)}: the
    common case of every check cycle allocates nothing.
    """
    try:
        return _VERDICTS[delay, retrying]
    except KeyError:
        v = AttemptVerdict(delay, None, retrying)
        if len(_VERDICTS) < 1024:
            _VERDICTS[delay, retrying] = v
        return v


@dataclass(frozen=True, slots=True)
class CheckTiming:
    """
    Scheduling parameters of one checker, after inheritance (see
    C{docs/keepalived-compat.md}, "Checker parameters: inheritance and defaults").

    @ivar warmup: maximum random initial delay; L{None} means C{delayLoop}
        (keepalived's default), 0 disables it.
    """

    delayLoop: float = 60.0
    retry: int = 1
    delayBeforeRetry: float = 1.0
    warmup: float | None = None
    alpha: bool = False
    logAllFailures: bool = False

    @property
    def effectiveWarmup(self) -> float:
        return self.delayLoop if self.warmup is None else self.warmup


class CheckerState:
    """
    Generic per-checker state (TCP_CHECK pattern), pure.

    @ivar isUp: keepalived's C{is_up}; starts C{not alpha}.
    @ivar hasRun: keepalived's C{has_run}.
    @ivar retryIt: keepalived's C{retry_it}.
    """

    target = 0

    def __init__(self, timing: CheckTiming, startup: bool = True) -> None:
        """
        @param timing: the checker's parameters.
        @param startup: L{True} at daemon start (the first failure is
            decisive); L{False} for a checker added by a reload.
        """
        self.timing = timing
        self.isUp = not timing.alpha
        self.hasRun = False
        self.retryIt = timing.retry if startup else 0

    def record(self, ok: bool) -> AttemptVerdict:
        """
        Account for one attempt's result.
        """
        t = self.timing
        first = not self.hasRun
        if ok:
            self.retryIt = 0
            if not self.isUp or first:
                event = CheckerEvent(True, self.isUp, first)
                self.isUp = True
                self.hasRun = True
                return AttemptVerdict(t.delayLoop, event)
            return _verdict(t.delayLoop, False)
        if self.isUp or first:
            if self.retryIt >= t.retry:
                retries = t.retry if (t.retry and not first) else 0
                event = CheckerEvent(False, self.isUp, first, retries)
                self.isUp = False
                self.retryIt = 0
                self.hasRun = True
                return AttemptVerdict(t.delayLoop, event)
            self.retryIt += 1
            self.hasRun = True
            return _verdict(t.delayBeforeRetry, True)
        self.retryIt = 0
        return _verdict(t.delayLoop, False)


class HttpCheckerState:
    """
    HTTP_GET / SSL_GET per-checker state, pure (keepalived's C{check_http.c}
    epilog).

    @ivar target: index of the URL to check next.
    @ivar failedUrl: index of the URL that put the checker down, or L{None}.
    """

    def __init__(
        self,
        timing: CheckTiming,
        urlCount: int,
        fastRecovery: bool = False,
        startup: bool = True,
    ) -> None:
        self.timing = timing
        self.urlCount = urlCount
        self.fastRecovery = fastRecovery
        self.isUp = not timing.alpha
        self.hasRun = False
        self.retryIt = timing.retry if startup else 0
        self.target = 0
        self.failedUrl: int | None = None

    def record(self, ok: bool) -> AttemptVerdict:
        """
        Account for one attempt's result on URL L{target}.
        """
        t = self.timing
        event = None
        retrying = False
        first = not self.hasRun
        new = retry = False
        if ok:
            new = True
            self.target += 1
            self.retryIt = 0
        elif self.isUp or first:
            # keepalived's timeout_epilog marks has_run before the epilog
            self.hasRun = True
            retry = True
            self.retryIt += 1
        if new and self.target >= self.urlCount and self.failedUrl is None:
            if not self.isUp or first:
                event = CheckerEvent(True, self.isUp, first)
                self.isUp = True
                self.hasRun = True
            self.target = 0
            self.retryIt = 0
        elif retry and self.retryIt > t.retry:
            if self.isUp or first:
                retries = self.retryIt - 1 if (t.retry and not first) else 0
                event = CheckerEvent(False, self.isUp, first, retries)
                self.isUp = False
            self.failedUrl = self.target
        elif new and self.failedUrl is not None:
            self.failedUrl = None
            self.target = 0
            self.retryIt = 0
        elif retry:
            retrying = True
        if new:
            delay = t.delayLoop
            if not self.hasRun:
                self.retryIt = t.retry
        elif self.failedUrl is not None:
            delay = max(t.delayBeforeRetry, t.delayLoop)
        else:
            delay = t.delayBeforeRetry
        if self.fastRecovery and (not self.hasRun or (not self.isUp and self.failedUrl is None)):
            delay = 0.0
        if self.target >= self.urlCount:
            self.target = 0
        if event is None:
            return _verdict(delay, retrying)
        return AttemptVerdict(delay, event, retrying)


class Checker(Protocol):
    """
    What L{CheckerScheduler} needs from a checker.

    @ivar kind: keepalived's checker keyword, e.g. C{"TCP_CHECK"}.
    """

    kind: str

    def describe(self) -> str:
        """
        @return: the checker's address for logs, C{[ip]:tcp:port}.
        """

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Run one attempt against C{target} (a URL index for HTTP checkers).
        The Deferred never fails and may be cancelled.
        """


class CheckerStateMachine(Protocol):
    """
    What L{CheckerScheduler} needs from a checker's state machine
    (L{CheckerState}, L{HttpCheckerState}).
    """

    isUp: bool
    hasRun: bool
    target: int

    def record(self, ok: bool) -> AttemptVerdict: ...


#: up/down log lines per checker kind: (success, failed-after-retries,
#: failed), keepalived's wording.  Fields: C{chk} the checker's address,
#: C{n} the retries, C{reason} the deciding result's short reason, C{result}
#: that result's own log line (L{CheckResult.logLine}), C{ofVs} C{" of <vs>"}
#: (L{CheckerScheduler.vsName}) or nothing.  An empty template logs nothing.
_MESSAGES = {
    "TCP_CHECK": (
        "TCP connection to {chk} success.",
        "TCP_CHECK on service {chk} failed after {n} retries.",
        "TCP_CHECK on service {chk} failed.",
    ),
    "HTTP_GET": (
        "Remote Web server {chk} succeed on service.",
        "HTTP_CHECK on service {chk} failed after {n} retries.",
        "HTTP_CHECK on service {chk} failed.",
    ),
    "UDP_CHECK": (
        "UDP connection to {chk} success.",
        "UDP_CHECK on service {chk} failed after {n} retries.",
        "UDP_CHECK on service {chk} failed.",
    ),
    "PING_CHECK": (
        "ICMP connection to {chk} success.",
        "ICMP CHECK on service {chk}{ofVs} failed after {n} retries.",
        "ICMP CHECK on service {chk} failed.",
    ),
    # check_smtp.c logs the deciding failure itself, "SMTP_CHECK " prefixed
    "SMTP_CHECK": (
        "Remote SMTP server {chk} succeed on service.",
        "SMTP_CHECK {reason} server {chk}",
        "SMTP_CHECK {reason} server {chk}",
    ),
    # check_dns.c: nothing on success; the failure with " after N retries"
    "DNS_CHECK": ("", "{result} after {n} retries", "{result}"),
    # check_misc.c: "Misc check to [rs] for [script] succeeded|failed (...)."
    "MISC_CHECK": ("{result}", "{result}", "{result}"),
    "FILE_CHECK": ("{result}", "{result}", "{result}"),
}
_MESSAGES["SSL_GET"] = _MESSAGES["HTTP_GET"]


class CheckerScheduler:
    """
    Run one checker forever on a clock, feeding a state machine.

    The attempts are timed by the clock's shared L{TimerQueue} (one
    reactor timer for all the checkers of a clock, at most
    L{keepalive_tx.check.timers.BATCH} attempts started per reactor
    iteration).  The success path of a cycle allocates no verdict, no log
    line and no closure.

    @ivar onEvent: called with C{(scheduler, event)} for every
        L{CheckerEvent}.
    @ivar onResult: called with each L{CheckResult} before it is judged
        (or L{None}).
    @ivar vsName: the virtual server's name for log lines that carry it
        (PING_CHECK's C{failed after N retries}); empty: left out.
    """

    log = Logger()
    vsName = ""

    def __init__(
        self,
        checker: Checker,
        state: CheckerStateMachine,
        timing: CheckTiming,
        clock: IReactorTime,
        onEvent: Callable[[CheckerScheduler, CheckerEvent], object],
        random: Callable[[], float] = _random.random,
        onResult: Callable[[CheckResult], object] | None = None,
        timers: TimerQueue | None = None,
    ) -> None:
        """
        @param timers: the L{TimerQueue} to use (default: the clock's shared
            one).
        """
        self.checker = checker
        self.state = state
        self.timing = timing
        self.clock = clock
        self.onEvent = onEvent
        self.onResult = onResult
        self.random = random
        self.timers = timers if timers is not None else timerQueue(clock)
        self.enabled = True
        self.running = False
        self._timer: int | None = None
        self._inflight: Deferred[CheckResult] | None = None
        # bound once: no bound-method object per cycle
        self._tickCb = self._tick
        self._doneCb = self._done
        self._crashedCb = self._crashed

    def start(self) -> None:
        """
        Schedule the first attempt after C{1 s + uniform(0, warmup)}.
        """
        if self.running:
            return
        self.running = True
        self._schedule(BOOTSTRAP_DELAY + self.timing.effectiveWarmup * self.random())

    def stop(self) -> None:
        """
        Cancel the pending attempt, and abort one in progress.
        """
        self.running = False
        timer, self._timer = self._timer, None
        self.timers.cancel(timer)
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.cancel()

    def setEnabled(self, enabled: bool) -> None:
        """
        Suspend or resume checking (keepalived's C{ha_suspend}): while
        disabled each tick only reschedules itself at C{delay_loop}.
        """
        self.enabled = enabled

    @property
    def pending(self) -> bool:
        """
        An attempt is scheduled (not running).
        """
        return self.timers.active(self._timer)

    def _schedule(self, delay: float) -> None:
        self._timer = self.timers.callLater(delay, self._tickCb)

    def _tick(self) -> None:
        self._timer = None
        if not self.enabled:
            self._schedule(self.timing.delayLoop)
            return
        try:
            d = self.checker.check(self.state.target)
        except Exception:
            self._crashed(Failure())
            return
        if not isinstance(d, Deferred):
            self._done(d)  # a plain result
            return
        if not d.called:
            self._inflight = d
        d.addCallbacks(self._doneCb, self._crashedCb)

    def _crashed(self, failure: Failure) -> None:
        self.log.failure("checker {chk} crashed", failure, chk=self.checker.describe())
        self._done(CheckResult(False, "internal error in"))

    def _done(self, result: CheckResult) -> None:
        self._inflight = None
        if not self.running:
            return
        if self.onResult is not None:
            self.onResult(result)
        state = self.state
        ok = result.ok
        line = None
        if ok:
            if not state.isUp and result.reason:
                line = result.logLine(self.checker.describe())
                self.log.info("{line}", line=line)
        elif self.timing.logAllFailures and state.isUp:
            line = result.logLine(self.checker.describe())
            self.log.info("{line}", line=line)
        verdict = state.record(ok)
        event = verdict.event
        if event is not None:
            self._report(result, event, line)
        if self.running and self._timer is None:
            self._schedule(verdict.delay)

    def _report(self, result: CheckResult, event: CheckerEvent, logged: str | None) -> None:
        """
        Log a state event in keepalived's words and pass it on.

        @param logged: the result's line, if it was logged already.
        """
        chk = self.checker.describe()
        line = logged if logged is not None else result.logLine(chk)
        up, retried, failed = _MESSAGES.get(self.checker.kind, _MESSAGES["TCP_CHECK"])
        template = up if event.up else retried if event.retries else failed
        text = template.format(
            chk=chk, n=event.retries, reason=result.reason, result=line,
            ofVs=f" of {self.vsName}" if self.vsName else "",
        )
        if text and text != logged:
            self.log.info("{line}", line=text)
        self.onEvent(self, event)
