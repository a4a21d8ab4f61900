"""
Which configuration keywords and model fields the daemon acts on.

Used by C{tests/unit/test_config_unimplemented.py}, and runnable::

    python3 -m tests.unit.keyword_audit          # model fields nothing outside config/ reads
    python3 -m tests.unit.keyword_audit -k       # every keyword and the names it sets

How it decides (by name, so it is a backstop to the declarations in
L{keepalive_tx.config.unimplemented}, not a proof):

  - the names a keyword sets are the strings in its handler, its block's
    C{open}/C{close} (closures and constants, following the helper
    functions of the C{schema_*} modules they call) that are model field
    names or builder keys;
  - a name is I{read} when code outside C{keepalive_tx/config/} mentions
    it (an attribute, a keyword argument or a string), the data dumps and
    status snapshot excepted: printing a setting is not acting on it.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import sys
import types
from collections.abc import Iterator
from functools import cache
from typing import Any

import keepalive_tx
from keepalive_tx.config import model, model_lvs
from keepalive_tx.config import schema as S
from keepalive_tx.config.toplevel import topLevel

PACKAGE = pathlib.Path(keepalive_tx.__file__).parent

#: modules that only print the configuration (the data dumps, the status
#: snapshot): what only they read is not acted on
REPORTERS = frozenset({"status/dumps.py", "status/snapshot.py"})

#: names too common to tell anything (every block has them)
GENERIC = frozenset({"location", "name"})


@cache
def modelFields() -> dict[str, set[str]]:
    """
    Field name -> the model classes (C{model}, C{model_lvs}) that have it.
    """
    fields: dict[str, set[str]] = {}
    for mod in (model, model_lvs):
        for value in vars(mod).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == mod.__name__:
                for f in dataclasses.fields(value):
                    fields.setdefault(f.name, set()).add(value.__name__)
    return fields


@cache
def namesRead(exclude: frozenset[str] = REPORTERS) -> dict[str, set[str]]:
    """
    Name -> the modules (paths under C{keepalive_tx/}) outside C{config/}
    and C{exclude} that mention it.
    """
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("config/") or rel in exclude:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.keyword) and node.arg:
                name = node.arg
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            else:
                continue
            found.setdefault(name, set()).add(rel)
    return found


def _strings(obj: Any, seen: set[int]) -> set[str]:
    if id(obj) in seen:
        return set()
    seen.add(id(obj))
    out: set[str] = set()
    if isinstance(obj, str):
        out.add(obj)
    elif isinstance(obj, types.FunctionType):
        out |= _strings(obj.__code__, seen)
        for cell in obj.__closure__ or ():
            try:
                out |= _strings(cell.cell_contents, seen)
            except ValueError:  # an empty cell
                pass
        for name in obj.__code__.co_names:  # helpers of the schema modules
            helper = obj.__globals__.get(name)
            if isinstance(helper, types.FunctionType) and helper.__module__.startswith(
                    "keepalive_tx.config.schema_"):
                out |= _strings(helper, seen)
    elif isinstance(obj, types.CodeType):
        for const in obj.co_consts:
            out |= _strings(const, seen)
    elif isinstance(obj, tuple | list | set | frozenset):
        for item in obj:
            out |= _strings(item, seen)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            out |= _strings(key, seen) | _strings(value, seen)
    return out


def keywordNames(kw: S.Keyword) -> set[str]:
    """
    Every string a keyword's handlers hold or build from (see the module
    docstring).
    """
    seen: set[int] = set()
    out: set[str] = set()
    for fn in (kw.handler, kw.open, kw.close):
        if fn is not None:
            out |= _strings(fn, seen)
    if kw.spec is not None:
        out |= _strings(kw.spec.open, seen) | _strings(kw.spec.close, seen)
    return out


def walk(spec: S.BlockSpec | None = None) -> Iterator[tuple[str, str, S.Keyword]]:
    """
    Every C{(block, keyword, Keyword)} of the schema, depth first (a block
    shared by several parents, like C{url}, once).
    """
    seen: set[int] = set()

    def visit(spec: S.BlockSpec) -> Iterator[tuple[str, str, S.Keyword]]:
        seen.add(id(spec))
        for name, kw in spec.keywords.items():
            yield spec.name, name, kw
            if kw.spec is not None and id(kw.spec) not in seen:
                yield from visit(kw.spec)

    yield from visit(spec or topLevel())


def unreadFields() -> dict[str, set[str]]:
    """
    The model fields nothing outside C{config/} reads, with their classes.
    """
    read = namesRead()
    return {f: classes for f, classes in modelFields().items() if f not in read}


def main(argv: list[str]) -> None:
    if "-k" in argv:
        fields = modelFields()
        read = namesRead()
        for block, name, kw in walk():
            names = sorted(n for n in keywordNames(kw) if n in fields)
            print(f"{block:20} {name:36} read={[n for n in names if n in read]} "
                  f"unread={[n for n in names if n not in read]}")
        return
    for f, classes in sorted(unreadFields().items()):
        print(f"{f:32} {', '.join(sorted(classes))}")


if __name__ == "__main__":
    main(sys.argv[1:])
