"""
keepalived configuration: text -> logical lines -> builders -> immutable model.

Public API::

    result = loadConfig("/etc/keepalived/keepalived.conf")
    result.model          # keepalive_tx.config.model.Config
    result.diagnostics    # keepalive_tx.config.errors.Diagnostics

Parsing and validation are pure (no sockets, no netlink).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from keepalive_tx.config.errors import Diagnostics, Severity
from keepalive_tx.config.interfaces import checkInterfaces
from keepalive_tx.config.model import Config

__all__ = ["LoadResult", "loadConfig", "parseText", "parseLogicalLines", "checkInterfaces"]


class LoadResult(NamedTuple):
    """
    A parsed configuration and everything that was wrong with it.
    """

    model: Config
    diagnostics: Diagnostics


def parseLogicalLines(lines, diagnostics: Diagnostics) -> Config:
    """
    Parse already-preprocessed logical lines into a model (problems go to
    C{diagnostics}).  Never raises for bad input.
    """
    from keepalive_tx.config.parser import parseLines
    from keepalive_tx.config.validate import buildConfig

    try:
        root = parseLines(lines, diagnostics)
        return buildConfig(root, diagnostics)
    except Exception as e:  # a bug, but bad config must never crash the daemon
        diagnostics.add(Severity.FATAL, f"internal error while reading the configuration: {e!r}")
        return Config()


@contextmanager
def _noCycleCollection() -> Iterator[None]:
    """
    Suspend the cyclic garbage collector while a configuration is read: the
    parse allocates hundreds of thousands of acyclic objects and the
    collector's passes over them cost about a quarter of the time.

    Afterwards the survivors (the model) are moved straight to the oldest
    generation (C{gc.freeze()} then C{gc.unfreeze()}): otherwise the first
    young-generation collection after re-enabling would traverse every one
    of them (about 50 ms for 10,000 real servers). They stay collectable by
    the next full collection. Skipped if something else froze objects.
    """
    wasEnabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if wasEnabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def parseText(text: str, filename: str = "keepalived.conf", configId: str | None = None) -> LoadResult:
    """
    Parse configuration text (includes are resolved relative to the cwd).
    """
    from keepalive_tx.config.preprocess import preprocessText

    diagnostics = Diagnostics()
    with _noCycleCollection():
        lines = preprocessText(text, filename, diagnostics, configId)
        return LoadResult(parseLogicalLines(lines, diagnostics), diagnostics)


def loadConfig(path: str, configId: str | None = None, *, allConfig: bool = False) -> LoadResult:
    """
    Read, preprocess and parse the configuration file at C{path}.
    """
    from keepalive_tx.config.preprocess import preprocessFile

    diagnostics = Diagnostics()
    with _noCycleCollection():
        lines = preprocessFile(path, diagnostics, configId, allConfig=allConfig)
        return LoadResult(parseLogicalLines(lines, diagnostics), diagnostics)
