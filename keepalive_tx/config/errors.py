"""
Configuration diagnostics: every problem carries the file and line it came from.

Two verdicts come out of them, as keepalived reaches them:

  - the C{-t} exit code (L{Diagnostics.exitCode}): 0 clean, 4 when only
    "cannot run" problems were reported (file not found, bad interface,
    fatal), 5 when any other error, warning or deprecation was, 6 when a
    script-security error was; and keepalived's early exits: 2 for a
    keyword missing its value, 6 when an C{include} check failed. The
    milder class wins over "cannot run", as it does in keepalived
    (docs/keepalived-compat.md, "Configuration verdicts").
  - whether the daemon may start at all (L{Diagnostics.refusesStart}) and
    with what status it stops otherwise (L{Diagnostics.startExitCode}).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Severity(IntEnum):
    """
    How bad a diagnostic is; larger is worse.
    """

    NOTE = 0  # printed, but keepalived does not count it as a configuration error
    DEPRECATED = 1
    WARNING = 2
    ERROR = 3  # general config error: keyword ignored or item dropped
    SECURITY = 4  # script security problem (mapped to exit 6)
    FATAL = 5  # file not found, bad interface, cannot run (exit 4)


class Stop(IntEnum):
    """
    Where keepalived stops reading a configuration and exits at once (also
    under C{-t}); a smaller value is reached first.
    """

    NONE = 0
    #: the main file is missing or unreadable: nothing is read; C{-t} then
    #: exits by class (0, or 4 with C{-e}), a start ends "not configured"
    MAIN_FILE = 1
    #: a C{global_defs} keyword without its value: the parent process's own
    #: pass over the file exits (status 2) before anything else is checked
    GLOBAL_PARAMETER = 2
    #: an C{include} whose check failed (C{includem}, C{include_check},
    #: C{-e}): the parent's pass ends in "not configured" (status 6)
    INCLUDE = 3
    #: any other keyword without its value (status 2)
    PARAMETER = 4


_STOP_STATUS = {Stop.GLOBAL_PARAMETER: 2, Stop.INCLUDE: 6, Stop.PARAMETER: 2}

#: keepalived's exit status when it will not run a configuration (EXIT_CONFIG)
EXIT_CONFIG = 2
#: ... and when it has no usable configuration file (EXIT_NOTCONFIGURED)
EXIT_NO_CONFIG = 6


@dataclass(frozen=True, slots=True)
class Location:
    """
    Where a piece of configuration text came from.
    """

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """
    One problem found while reading or validating a configuration.

    @ivar stop: keepalived exits at this point (see L{Stop}).
    @ivar refuses: keepalived would not start with this problem (its VRRP
        process exits with a configuration error), although C{-t} classes it
        by C{severity} like any other.
    @ivar counted: whether it counts towards the C{-t} exit code (a missing
        main file without C{-e} is reported, refused at start, yet C{-t}
        exits 0 as keepalived's does).
    """

    severity: Severity
    message: str
    location: Location | None = None
    stop: Stop = Stop.NONE
    refuses: bool = False
    counted: bool = True

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location is not None else ""
        return f"{prefix}{self.message}"


@dataclass
class Diagnostics:
    """
    An ordered collection of L{Diagnostic}s with keepalived's exit-code mapping.
    """

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        severity: Severity,
        message: str,
        location: Location | None = None,
        *,
        stop: Stop = Stop.NONE,
        refuses: bool = False,
        counted: bool = True,
    ) -> None:
        self.items.append(Diagnostic(severity, message, location, stop, refuses, counted))

    def error(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.ERROR, message, location)

    def warning(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.WARNING, message, location)

    def fatal(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.FATAL, message, location)

    def deprecated(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.DEPRECATED, message, location)

    def note(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.NOTE, message, location)

    def extend(self, other: Diagnostics) -> None:
        self.items.extend(other.items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def worst(self) -> Severity | None:
        return max((d.severity for d in self.items), default=None)

    @property
    def refusesStart(self) -> bool:
        """
        Whether keepalived would refuse to run this configuration.
        """
        return any(d.severity is Severity.FATAL or d.refuses or d.stop for d in self.items)

    def startExitCode(self) -> int:
        """
        The status keepalived stops with when it refuses to start (see
        L{refusesStart}): "not configured" when a file is missing, else
        "configuration error".
        """
        stops = [d.stop for d in self.items if d.stop]
        if stops and min(stops) in (Stop.MAIN_FILE, Stop.INCLUDE):
            return EXIT_NO_CONFIG
        return EXIT_CONFIG

    def exitCode(self) -> int:
        """
        keepalived's C{--config-test} exit status for these diagnostics.
        """
        stops = [d.stop for d in self.items if d.stop]
        if stops and min(stops) in _STOP_STATUS:
            return _STOP_STATUS[min(stops)]
        classes = {d.severity for d in self.items if d.counted and d.severity is not Severity.NOTE}
        if not classes:
            return 0
        if Severity.SECURITY in classes:
            return 6
        if classes == {Severity.FATAL}:
            return 4
        return 5


class ConfigError(Exception):
    """
    Raised when a configuration cannot be used at all (carries the diagnostics).
    """

    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__("\n".join(str(d) for d in diagnostics))
        self.diagnostics = diagnostics
