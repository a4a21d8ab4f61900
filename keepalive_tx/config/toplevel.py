"""
The top-level keyword table: the tables of every part of the configuration
(C{schema_vrrp} with C{schema_global}, C{schema_lvs}) assembled for the
parser.

The keyword framework (L{keepalive_tx.config.schema}) is below the tables
that use it; this module is above them, so that the schema modules import
one another one way only.
"""

from __future__ import annotations

from types import ModuleType

from keepalive_tx.config import schema_lvs, schema_vrrp
from keepalive_tx.config.required import REQUIRED
from keepalive_tx.config.schema import BlockSpec, Keyword
from keepalive_tx.config.unimplemented import NOT_IMPLEMENTED, message

__all__ = ["lvsModule", "registerTopLevel", "topLevel"]

_EXTRA_TOP: dict[str, Keyword] = {}
_TOP: BlockSpec | None = None


def registerTopLevel(keywords: dict[str, Keyword]) -> None:
    """
    Add top-level keywords (for modules other than C{schema_lvs}).
    """
    global _TOP
    _EXTRA_TOP.update(keywords)
    _TOP = None


def lvsModule() -> ModuleType:
    """
    C{keepalive_tx.config.schema_lvs}, whose optional hooks (C{finish},
    C{validate}) L{keepalive_tx.config.validate} runs.
    """
    return schema_lvs


def topLevel() -> BlockSpec:
    """
    The top-level keyword table: VRRP/global tables plus C{schema_lvs}'s.
    """
    global _TOP
    if _TOP is None:
        keywords = dict(schema_vrrp.TOP_LEVEL_KEYWORDS)
        keywords.update(schema_lvs.TOP_LEVEL_KEYWORDS)
        keywords.update(_EXTRA_TOP)
        _TOP = BlockSpec("<top>", keywords)
        _markRequired(_TOP, set())
        _markUnimplemented(_TOP, set())
    return _TOP


def _markRequired(spec: BlockSpec, seen: set[int]) -> None:
    """
    Give C{spec} and the blocks nested in it their L{BlockSpec.required}.
    """
    seen.add(id(spec))
    spec.required = REQUIRED.get(spec.name, frozenset()) & spec.keywords.keys()
    for kw in spec.keywords.values():
        if kw.spec is not None and id(kw.spec) not in seen:
            _markRequired(kw.spec, seen)


def _markUnimplemented(spec: BlockSpec, seen: set[int]) -> None:
    """
    Give the keywords of C{spec} and of the blocks nested in it that
    keepalive_tx does not act on their warning
    (L{keepalive_tx.config.unimplemented}); a not-implemented block covers
    its contents.
    """
    seen.add(id(spec))
    gaps = NOT_IMPLEMENTED.get(spec.name, {})
    marked = dict(spec.keywords)  # (keyword tables may be shared: copy)
    for name, kw in spec.keywords.items():
        gap = gaps.get(name)
        if gap is not None:
            if kw.unimplemented is None:
                marked[name] = kw.notImplemented(message(name, gap))
        elif kw.spec is not None and id(kw.spec) not in seen:
            _markUnimplemented(kw.spec, seen)
    spec.keywords = marked
