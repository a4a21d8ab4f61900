"""
keepalived configuration: text -> logical lines -> builders -> immutable model.

Public API::

    result = loadConfig("/etc/keepalived/keepalived.conf")
    result.model          # keepalive_tx.config.model.Config
    result.diagnostics    # keepalive_tx.config.errors.Diagnostics

Parsing and validation are pure (no sockets, no netlink) and leave the
interpreter as they found it: the daemon's entry point pauses the garbage
collector around a load (L{keepalive_tx.processwide.pausedCollector}), a host
application embedding the library decides that for itself.
"""

from __future__ import annotations

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


def parseText(text: str, filename: str = "keepalived.conf", configId: str | None = None, *,
              baseDir: str | None = None, allConfig: bool = False) -> LoadResult:
    """
    Parse configuration text.

    @param filename: the name its diagnostics give (C{FILE:LINE});
        without C{baseDir}, relative includes are resolved against its
        directory (for a bare name: the current directory).
    @param baseDir: the directory relative includes (and C{${_PWD}})
        are resolved against.
    @param allConfig: any missing included file is an error (C{-e}).
    """
    from keepalive_tx.config.preprocess import preprocessText

    diagnostics = Diagnostics()
    lines = preprocessText(text, filename, diagnostics, configId, allConfig=allConfig,
                           directory=baseDir)
    return LoadResult(parseLogicalLines(lines, diagnostics), diagnostics)


def loadConfig(path: str, configId: str | None = None, *, allConfig: bool = False) -> LoadResult:
    """
    Read, preprocess and parse the configuration file at C{path}.
    """
    from keepalive_tx.config.preprocess import preprocessFile

    diagnostics = Diagnostics()
    lines = preprocessFile(path, diagnostics, configId, allConfig=allConfig)
    return LoadResult(parseLogicalLines(lines, diagnostics), diagnostics)
