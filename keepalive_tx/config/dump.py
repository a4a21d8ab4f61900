"""
A normalised, stable text dump of the configuration model (for C{--dump-conf}).

Every dataclass is printed as C{Name} followed by its fields, one per line,
indented; defaults are included so the dump shows the effective settings.
Locations are omitted. A model class whose name has C{Config} added (to
tell it from the running object of the same name: C{VrrpInstanceConfig},
C{VrrpInstance}) is printed under its block's name, as before (L{_TITLES}).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

_SKIP = {"location", "interfaceLocation", "explicit", "vrrpConfigured"}

#: model class -> the name the dump prints for it
_TITLES = {
    "VrrpInstanceConfig": "VrrpInstance",
    "SyncGroupConfig": "SyncGroup",
    "GarpGroupConfig": "GarpGroup",
    "GarpSettingsConfig": "GarpSettings",
    "HttpUrlConfig": "HttpUrl",
}


def dumpConfig(model: Any) -> str:
    """
    Render C{model} (a L{keepalive_tx.config.model.Config}) as text.
    """
    out: list[str] = []
    _dump(model, 0, out, None)
    return "\n".join(out) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return text or "0"
    if isinstance(value, bytes):
        return "********" if value else "''"
    if isinstance(value, enum.Enum):
        return str(value.name)
    if isinstance(value, str):
        return value if value and not any(c.isspace() for c in value) else repr(value)
    return str(value)


def _title(obj: Any) -> str:
    name = _TITLES.get(type(obj).__name__, type(obj).__name__)
    ident = getattr(obj, "name", None)
    return f"{name} {ident}" if isinstance(ident, str) else name


def _dump(obj: Any, indent: int, out: list[str], label: str | None) -> None:
    pad = "  " * indent
    prefix = f"{label} = " if label else ""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out.append(f"{pad}{prefix}{_title(obj)}")
        for f in dataclasses.fields(obj):
            if f.name in _SKIP:
                continue
            _dump(getattr(obj, f.name), indent + 1, out, f.name)
    elif isinstance(obj, tuple | list | frozenset | set):
        items = sorted(obj, key=str) if isinstance(obj, frozenset | set) else list(obj)
        if not items:
            out.append(f"{pad}{prefix}[]")
        elif all(not dataclasses.is_dataclass(i) and not isinstance(i, tuple | list) for i in items):
            out.append(f"{pad}{prefix}[{', '.join(_scalar(i) for i in items)}]")
        else:
            out.append(f"{pad}{prefix}[{len(items)}]")
            for i in items:
                _dump(i, indent + 1, out, None)
    elif isinstance(obj, dict):
        out.append(f"{pad}{prefix}{{{len(obj)}}}")
        for k in sorted(obj, key=str):
            _dump(obj[k], indent + 1, out, str(k))
    else:
        out.append(f"{pad}{prefix}{_scalar(obj)}")
