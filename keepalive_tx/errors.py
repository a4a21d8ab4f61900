"""
The exceptions of the embedding API (see C{docs/embedding.md}).

L{keepalive_tx.config.errors.ConfigError} (a configuration that cannot be
used, with its C{FILE:LINE} diagnostics) is the third; all three are
exported by L{keepalive_tx}.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ReloadError", "StartError"]


class ReloadError(Exception):
    """
    A reload could not be applied; the running configuration stays.
    """


class StartError(Exception):
    """
    Some part of a L{keepalive_tx.service.KeepalivedService} could not
    start (a VRRP instance that cannot be set up, a socket that cannot be
    opened ...), or the service stopped before every part had started.

    @ivar failures: C{(part, why)} pairs, e.g. C{("vrrp_instance VI_1",
        "[Errno 19] No such device")}.
    """

    def __init__(self, failures: Iterable[tuple[str, str]]) -> None:
        self.failures: tuple[tuple[str, str], ...] = tuple(failures)
        super().__init__("; ".join(f"{part}: {why}" for part, why in self.failures))
