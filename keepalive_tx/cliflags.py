# -*- test-case-name: tests.unit.test_tap -*-
"""
keepalived's command-line flags on twistd's option parser (pure).

C{twisted.python.usage} parses with C{getopt}, which completes an
abbreviated long option (C{--all} would become C{--all-config}) and knows
neither optional arguments nor flags that are refused with a reason.
L{normalise} walks the arguments first, as keepalived's own C{getopt_long}
call would see them, and:

  - refuses an unknown or abbreviated long option (only exact names);
  - refuses each keepalived flag in L{REFUSED}, naming it and saying why;
  - rewrites keepalived's optional-argument flags (C{-g}/C{--log-file},
    C{-t}/C{--config-test}) to C{--NAME=VALUE} (C{VALUE} empty when none
    was attached: C{-gFILE}, C{--log-file=FILE}; C{-g FILE} is a flag and a
    stray argument, as with keepalived).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from twisted.python.usage import UsageError

__all__ = ["OPTIONAL", "REFUSED", "Refused", "normalise"]


@dataclass(frozen=True)
class Refused:
    """
    A keepalived flag keepalive_tx refuses.

    @ivar short: its short letter, if any.
    @ivar long: its long name.
    @ivar reason: why (shown to the user).
    """

    short: str | None
    long: str
    reason: str

    @property
    def names(self) -> str:
        return f"-{self.short}/--{self.long}" if self.short else f"--{self.long}"


_ONE_PROCESS = ("keepalive_tx runs VRRP, the checkers and BFD in one process, with one pid file:"
                " -p/--pid")
_NOT_IMPLEMENTED = "not implemented by keepalive_tx"
_C_BUILD = "an option of keepalived's C build, with no counterpart in keepalive_tx"
_SNMP = "SNMP is not implemented by keepalive_tx (its status API and /metrics are: --status)"

#: keepalived 2.2.7's flags that have no meaning here
REFUSED: tuple[Refused, ...] = (
    Refused("X", "release-vips", _NOT_IMPLEMENTED),
    Refused("r", "vrrp_pid", _ONE_PROCESS),
    Refused(None, "checkers_pid", _ONE_PROCESS + " (and -c is the configuration file here)"),
    Refused("b", "bfd_pid", _ONE_PROCESS),
    Refused("T", "genhash", "use the genhash command installed with keepalive_tx"),
    Refused("a", "address-monitoring", _NOT_IMPLEMENTED),
    Refused("x", "snmp", _SNMP),
    Refused("A", "snmp-agent-socket", _SNMP),
    Refused("s", "namespace", "run keepalive_tx under 'ip netns exec NAME' instead"),
    Refused("m", "core-dump", "keepalive_tx is a Python program: set LimitCORE= or ulimit -c"
                              " for core dumps of the interpreter"),
    Refused("M", "core-dump-pattern", "keepalive_tx is a Python program: set"
                                      " kernel.core_pattern yourself"),
    Refused(None, "ignore-sigint", _NOT_IMPLEMENTED),
    Refused(None, "perf", _C_BUILD),
    Refused(None, "debug", _C_BUILD + " (-D logs the detail and debug lines)"),
    Refused(None, "no-mem-check", _C_BUILD),
    Refused("L", "mem-check-log", _C_BUILD),
    Refused(None, "config-fd", "internal to keepalived's child processes"),
)

#: keepalived's flags with an optional argument: short letter -> long name
OPTIONAL = {"g": "log-file", "t": "config-test"}


def _refusal(flag: Refused) -> UsageError:
    return UsageError(f"keepalived's {flag.names} is refused: {flag.reason}")


def normalise(argv: Sequence[str], shortOpt: str, longOpt: Iterable[str]) -> list[str]:
    """
    Check C{argv} (the options of the C{keepalived} subcommand) and return
    it with clustered short flags split and optional arguments made
    explicit.

    @param shortOpt: the C{getopt} short-option string of the parser
        (C{"c:i:tdP..."}: a letter followed by C{:} takes an argument).
    @param longOpt: its long options (C{"config="}: takes an argument).
    @raise UsageError: a refused flag, or an unknown or abbreviated long
        option.
    """
    longs = {name.rstrip("="): name.endswith("=") for name in longOpt}
    refusedLong = {flag.long: flag for flag in REFUSED}
    refusedShort = {flag.short: flag for flag in REFUSED if flag.short}
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--" or not arg.startswith("-") or arg == "-":
            # getopt stops at the first argument that is not an option
            out += argv[i - 1:]
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in refusedLong:
                raise _refusal(refusedLong[name])
            if name in OPTIONAL.values():
                out.append(f"--{name}={value}")
                continue
            if name not in longs:
                raise UsageError(f"option --{name} not recognized")
            out.append(arg)
            if longs[name] and not eq and i < len(argv):
                out.append(argv[i])
                i += 1
            continue
        letters = arg[1:]
        for j, letter in enumerate(letters):
            if letter in refusedShort:
                raise _refusal(refusedShort[letter])
            if letter in OPTIONAL:
                out.append(f"--{OPTIONAL[letter]}={letters[j + 1:]}")
                break
            at = shortOpt.find(letter)
            if letter == ":" or at < 0:
                raise UsageError(f"option -{letter} not recognized")
            if shortOpt[at + 1:at + 2] != ":":
                out.append(f"-{letter}")
                continue
            rest = letters[j + 1:]
            if rest:
                out += [f"-{letter}", rest]
            elif i < len(argv):
                out += [f"-{letter}", argv[i]]
                i += 1
            else:
                out.append(f"-{letter}")
            break
    return out
