# -*- test-case-name: tests.unit.test_embedding -*-
"""
L{ConfigSource}: where a L{keepalive_tx.service.KeepalivedService} reads
its configuration from -- a file, or text an application holds -- so that
a reload can read it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from keepalive_tx.config import LoadResult, loadConfig, parseText
from keepalive_tx.config.errors import ConfigError

__all__ = ["TEXT_NAME", "ConfigSource"]

#: the file name diagnostics give for configuration text (C{<text>:3: ...})
TEXT_NAME = "<text>"


@dataclass(frozen=True)
class ConfigSource:
    """
    A configuration file (C{path}) or text (C{text}, diagnostics naming it
    C{name}, relative includes resolved against C{baseDir}), read with
    keepalived's C{-i} (C{configId}) and C{-e} (C{allConfig}).  With
    C{checkInterfaces}, the interfaces it names are checked against those
    of the host, as keepalived's VRRP process checks them (a missing one
    refuses the configuration unless C{dynamic_interfaces}).

    Calling it loads it: it is the loader a
    L{keepalive_tx.reload.Reloader} reads the configuration with.
    """

    path: str | None = None
    text: str | None = None
    name: str = TEXT_NAME
    baseDir: str | None = None
    configId: str | None = None
    allConfig: bool = False
    checkInterfaces: bool = False

    @classmethod
    def forFile(cls, path: str | os.PathLike[str], *, configId: str | None = None,
                allConfig: bool = False) -> ConfigSource:
        return cls(path=os.fspath(path), configId=configId, allConfig=allConfig)

    @classmethod
    def forText(cls, text: str, *, name: str = TEXT_NAME, baseDir: str | None = None,
                 configId: str | None = None, allConfig: bool = False) -> ConfigSource:
        """
        @param baseDir: default: the current directory B{now} (a later
            reload resolves includes the same way wherever the process
            has moved since).
        """
        return cls(text=text, name=name, baseDir=os.path.abspath(baseDir or os.curdir),
                   configId=configId, allConfig=allConfig)

    def withFile(self, path: str | os.PathLike[str]) -> ConfigSource:
        """
        Another file, read the same way (C{-i}, C{-e}, interfaces).
        """
        return replace(self, path=os.fspath(path), text=None)

    def withText(self, text: str, *, name: str = TEXT_NAME,
                 baseDir: str | None = None) -> ConfigSource:
        """
        Other text, read the same way (C{-i}, C{-e}, interfaces).
        """
        other = ConfigSource.forText(text, name=name, baseDir=baseDir,
                                     configId=self.configId, allConfig=self.allConfig)
        return replace(other, checkInterfaces=self.checkInterfaces)

    def load(self) -> LoadResult:
        """
        Read the configuration (never raises for bad input: see the
        diagnostics).
        """
        if self.text is not None:
            result = parseText(self.text, self.name, self.configId, baseDir=self.baseDir,
                               allConfig=self.allConfig)
        elif self.path is not None:
            result = loadConfig(self.path, self.configId, allConfig=self.allConfig)
        else:
            raise ValueError("a ConfigSource needs a path or text")
        if self.checkInterfaces:
            from keepalive_tx.config.interfaces import checkInterfaces, existingInterfaces

            result.diagnostics.extend(checkInterfaces(result.model, existingInterfaces()))
        return result

    __call__ = load  # a loader of L{keepalive_tx.reload.Reloader}

    def loadUsable(self) -> LoadResult:
        """
        Read the configuration.

        @raise ConfigError: keepalived would refuse to run it (missing
            file, unreadable include, missing interface, an instance
            keepalived refuses ...); the error carries every diagnostic.
        """
        result = self.load()
        if result.diagnostics.refusesStart:
            raise ConfigError(result.diagnostics)
        return result
