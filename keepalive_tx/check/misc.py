# -*- test-case-name: tests.unit.test_check_misc -*-
"""
MISC_CHECK: run C{misc_path}; its exit status is the verdict (keepalived's
C{check_misc.c}).

  - exit 0: up; with C{misc_dynamic} the weight contribution is reset to 0;
  - with C{misc_dynamic}, exit 2..255: up, and the real server's weight
    becomes C{status - 2} (contribution C{status - 2 - rs weight});
  - any other status, a signal, or outliving C{misc_timeout} (the script's
    process group then gets SIGTERM, SIGKILL 2 s later): failure.

The script runs through L{keepalive_tx.scripts.runner.ScriptRunner}: own
process group, cleaned environment, optional C{user}, never blocking the
reactor.  Retries follow the generic pattern (default C{retry} 0, resolved
by the config model), driven by L{keepalive_tx.check.base.CheckerState}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from keepalive_tx.check.base import CheckResult
from keepalive_tx.scripts.runner import ScriptResult, ScriptRunner

if TYPE_CHECKING:
    from keepalive_tx.config.model import Script
    from keepalive_tx.config.model_lvs import MiscCheck, RealServer


@dataclass(frozen=True, slots=True)
class DynamicResult(CheckResult):
    """
    A L{CheckResult} that may also change the real server's weight
    (MISC_CHECK with C{misc_dynamic}, FILE_CHECK).

    @ivar weightDelta: this checker's contribution to the real server's
        weight (keepalived's C{cur_weight}): the effective weight is the
        configured RS weight plus the contributions of all its checkers.
        L{None}: unchanged.
    """

    weightDelta: int | None = None


class MiscChecker:
    """
    One MISC_CHECK.

    @ivar runner: the L{ScriptRunner} of C{misc_path}.
    """

    kind = "MISC_CHECK"

    def __init__(
        self,
        reactor: Any,
        script: Script,
        timeout: float,
        dynamic: bool = False,
        rsWeight: int = 1,
        rsAddress: str = "",
        runner: ScriptRunner | None = None,
        policy: Any = None,
    ) -> None:
        """
        @param reactor: an C{IReactorProcess} and C{IReactorTime}.
        @param script: C{misc_path} (its C{user} is the checker's C{user}).
        @param timeout: C{misc_timeout} in seconds.
        @param dynamic: C{misc_dynamic}.
        @param rsWeight: the real server's configured weight (to express a
            dynamic weight as a contribution).
        @param rsAddress: the real server's address, for log lines.
        @param runner: a prepared runner (tests); default built from
            C{script}.
        @param policy: the L{keepalive_tx.scripts.security.ScriptPolicy} of
            the default runner (L{None}: our identity, no checks).
        """
        self.script = script
        self.timeout = timeout
        self.dynamic = dynamic
        self.rsWeight = rsWeight
        self.rsAddress = rsAddress
        self.runner = runner if runner is not None else ScriptRunner.fromScript(
            reactor, script, timeout=timeout, policy=policy, shellTests=True
        )
        self._name = script.argv[0] if script.argv else script.command

    @classmethod
    def fromConfig(
        cls, reactor: Any, config: MiscCheck, rs: RealServer | None = None, policy: Any = None
    ) -> MiscChecker:
        """
        Build from the config model.

        @param rs: the real server the checker belongs to.
        """
        return cls(
            reactor,
            config.script,
            config.timeout,
            config.dynamic,
            rsWeight=rs.weight if rs is not None else 1,
            rsAddress=str(rs.address) if rs is not None else "",
            policy=policy,
        )

    def describe(self) -> str:
        return f"[{self.rsAddress}] by [{self._name}]" if self.rsAddress else f"[{self._name}]"

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Run the script once.

        @return: a Deferred firing with a L{DynamicResult} when the script
            has ended (or been killed); it never fails; cancelling it kills
            the script.
        """
        return self.runner.run(timeout=self.timeout).addCallback(self.interpret)

    def interpret(self, result: ScriptResult) -> DynamicResult:
        """
        Turn a script result into a check result.
        """
        prefix = f"Misc check to [{self.rsAddress}] for [{self._name}]"
        code = result.exitCode
        if result.ok:
            return DynamicResult(
                True, "succeeded", f"{prefix} succeeded.", 0 if self.dynamic else None
            )
        if (
            self.dynamic
            and code is not None
            and 2 <= code <= 255
            and not result.timedOut
            and result.error is None
        ):
            return DynamicResult(
                True,
                "succeeded",
                f"{prefix} succeeded (weight {code - 2}).",
                code - 2 - self.rsWeight,
            )
        if result.timedOut:
            return DynamicResult(False, "timed out", f"{prefix} timed out.")
        return DynamicResult(False, "failed", f"{prefix} failed ({result.describe()}).")
