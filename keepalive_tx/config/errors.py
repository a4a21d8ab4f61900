"""
Configuration diagnostics: every problem carries the file and line it came from.

keepalived keeps the worst severity seen and maps it to the C{-t} exit code
(catalogue §0 #3): 0 clean, 4 fatal (file not found, bad interface, cannot
run), 5 any other error or warning, 6 script-security error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Severity(IntEnum):
    """
    How bad a diagnostic is; larger is worse.
    """

    DEPRECATED = 1
    WARNING = 2
    ERROR = 3  # general config error: keyword ignored or item dropped
    SECURITY = 4  # script security problem (mapped to exit 6)
    FATAL = 5  # file not found, bad interface, cannot run (exit 4)


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
    """

    severity: Severity
    message: str
    location: Location | None = None

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
        self, severity: Severity, message: str, location: Location | None = None
    ) -> None:
        self.items.append(Diagnostic(severity, message, location))

    def error(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.ERROR, message, location)

    def warning(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.WARNING, message, location)

    def fatal(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.FATAL, message, location)

    def deprecated(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.DEPRECATED, message, location)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def worst(self) -> Severity | None:
        return max((d.severity for d in self.items), default=None)

    def exitCode(self) -> int:
        """
        keepalived's C{--config-test} exit status for these diagnostics.
        """
        worst = self.worst
        if worst is None:
            return 0
        if worst is Severity.FATAL:
            return 4
        if any(d.severity is Severity.SECURITY for d in self.items) and worst is Severity.SECURITY:
            return 6
        return 5


class ConfigError(Exception):
    """
    Raised when a configuration cannot be used at all (carries the diagnostics).
    """

    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__("\n".join(str(d) for d in diagnostics))
        self.diagnostics = diagnostics
