"""
keepalived, rebuilt in Python on Twisted.

The embedding API (see C{docs/embedding.md})::

    from keepalive_tx import KeepalivedService, ConfigError, IKeepalivedObserver

The names are imported when first used, so that C{import keepalive_tx.config}
(C{--config-test}, C{genhash}) does not load the service machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keepalive_tx._version import __version__

__all__ = [
    "ConfigError",
    "IKeepalivedObserver",
    "KeepalivedService",
    "RealServerStatus",
    "ReloadError",
    "StartError",
    "__version__",
]

if TYPE_CHECKING:
    from keepalive_tx.config.errors import ConfigError
    from keepalive_tx.errors import ReloadError, StartError
    from keepalive_tx.observers import IKeepalivedObserver, RealServerStatus
    from keepalive_tx.service import KeepalivedService

_EXPORTS = {
    "ConfigError": "keepalive_tx.config.errors",
    "IKeepalivedObserver": "keepalive_tx.observers",
    "KeepalivedService": "keepalive_tx.service",
    "RealServerStatus": "keepalive_tx.observers",
    "ReloadError": "keepalive_tx.errors",
    "StartError": "keepalive_tx.errors",
}


def __getattr__(name: str) -> object:
    """
    The exported names, imported on first use (PEP 562).
    """
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keepalive_tx' has no attribute {name!r}")
    from importlib import import_module

    value: object = getattr(import_module(module), name)
    globals()[name] = value
    return value
