# -*- test-case-name: tests.unit.test_net_routes -*-
"""
iproute2's name files: routing table names (C{rt_tables}), route protocol
names (C{rt_protos}), realm names (C{rt_realms}) and link group names
(C{group}), as C{ip} and keepalived resolve them.

keepalived reads C{<iproute_etc_dir>/NAME} (default C{/etc/iproute2}), then
C{<iproute_usr_dir>/NAME} (default C{/usr/share/iproute2}, the location of
newer iproute2 packages), then the C{NAME.d/*.conf} fragments of both; the
first definition of a name wins.  Built-in names need no file.

Reading the files is small, synchronous I/O done once, lazily, the first
time a name (not a number) has to be resolved.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

__all__ = ["DEFAULT_DIRS", "IprouteNames"]

DEFAULT_DIRS = ("/etc/iproute2", "/usr/share/iproute2")

_BUILTIN: dict[str, dict[str, int]] = {
    "rt_tables": {"unspec": 0, "default": 253, "main": 254, "local": 255},
    "rt_protos": {
        "unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9,
        "mrt": 10, "zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15,
        "dhcp": 16, "keepalived": 18, "babel": 42, "openr": 99, "bgp": 186, "isis": 187,
        "ospf": 188, "rip": 189, "eigrp": 192,
    },
    "rt_realms": {"unknown": 0},
    "group": {"default": 0},
}
_LIMITS = {"rt_tables": 0xFFFFFFFF, "rt_protos": 255, "rt_realms": 0xFFFF, "group": 0xFFFFFFFF}


def _number(text: str, limit: int) -> int | None:
    try:
        value = int(text, 0)
    except ValueError:
        return None
    return value if 0 <= value <= limit else None


class IprouteNames:
    """
    Name to number maps for tables, protocols and realms.

    @ivar dirs: directories searched, in order (first definition wins).
    """

    def __init__(self, dirs: Sequence[str | None] = DEFAULT_DIRS) -> None:
        self.dirs = tuple(d for d in dirs if d)
        self._maps: dict[str, dict[str, int]] = {}

    @classmethod
    def fromGlobalDefs(cls, globalDefs: object) -> IprouteNames:
        """
        The directories C{iproute_etc_dir} / C{iproute_usr_dir} name (each
        defaulting to iproute2's).
        """
        etc = getattr(globalDefs, "iprouteEtcDir", None) or DEFAULT_DIRS[0]
        usr = getattr(globalDefs, "iprouteUsrDir", None) or DEFAULT_DIRS[1]
        return cls((etc, usr))

    def _load(self, kind: str) -> dict[str, int]:
        found = self._maps.get(kind)
        if found is not None:
            return found
        names = dict(_BUILTIN[kind])
        files = [os.path.join(d, kind) for d in self.dirs]
        for d in self.dirs:
            files += sorted(glob.glob(os.path.join(d, f"{kind}.d", "*.conf")))
        limit = _LIMITS[kind]
        for path in files:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for line in lines:
                words = line.split("#", 1)[0].split()
                if len(words) < 2:
                    continue
                number = _number(words[0], limit)
                if number is not None:
                    names.setdefault(words[1], number)
        self._maps[kind] = names
        return names

    def _resolve(self, kind: str, text: str) -> int:
        number = _number(text, _LIMITS[kind])
        if number is not None:
            return number
        found = self._load(kind).get(text)
        if found is None:
            label = {"rt_tables": "table", "rt_protos": "protocol", "group": "group"}.get(kind, "realm")
            raise ValueError(f"unknown {label} '{text}' (neither a number nor in {kind})")
        return found

    def table(self, text: str) -> int:
        """
        A table number or name (C{main}, C{local}, a C{rt_tables} entry).

        @raise ValueError: unknown name or number out of range.
        """
        return self._resolve("rt_tables", text)

    def protocol(self, text: str) -> int:
        """
        A route protocol number (0..255) or name (C{keepalived}, C{static}...).
        """
        return self._resolve("rt_protos", text)

    def realm(self, text: str) -> int:
        """
        A realm number (0..65535) or C{rt_realms} name.
        """
        return self._resolve("rt_realms", text)

    def group(self, text: str) -> int:
        """
        A link group number or C{group} file name (C{default} is 0).
        """
        return self._resolve("group", text)

    def realms(self, text: str) -> int:
        """
        C{realms [FROM/]TO} as the 32-bit C{RTA_FLOW}/C{FRA_FLOW} value.
        """
        source, sep, dest = text.partition("/")
        if not sep:
            return self.realm(source)
        return (self.realm(source) << 16) | self.realm(dest)
