"""
Keyword tables for keepalived's configuration language, and the small framework
the block parser (L{keepalive_tx.config.parser}) walks them with.

How it works
============

The parser sees a stream of L{LogicalLine}s (braces are lines of their own).
Each block -- the top level included -- is described by a L{BlockSpec}: a dict
mapping keyword names to L{Keyword}s.  While a block is being read its state is
a plain C{dict} (a I{builder}); keyword handlers store typed values into it
under the camelCase name of the model field.  When the block's C{}} is reached
the spec's C{close} function receives the finished builder and hands the result
to the parent builder (usually by appending it to a list).  Frozen model
objects are made from the builders at the end (L{keepalive_tx.config.validate}),
when C{global_defs} defaults are known -- or directly in C{close} for blocks
that need no global context.

There are four kinds of keyword:

  - L{simple}C{(handler)}: a one-line keyword; C{handler(ctx, line, b)} gets
    the L{Context}, the line (C{line.tokens[0]} is the keyword) and the
    current block's builder C{b}.
  - L{block}C{(spec)}: a keyword opening a nested C{{ ... }} keyword block.
    C{spec.open(ctx, line, parent)} returns the new builder (or C{None} when the
    header is invalid: the block is then skipped brace-aware);
    C{spec.close(ctx, child, parent)} stores the result.
  - L{values}C{(item, ...)}: a I{value block} such as C{virtual_ipaddress}:
    raw lines up to the matching C{}} each go to C{item(ctx, line, b)} where
    C{b} is the builder returned by C{open(ctx, line, parent)} (default: the
    parent builder itself); C{close(ctx, b, parent)} runs at the end.
  - L{skipped}C{()}: known but inactive; its block (if any) is skipped.

C{deprecated="new_name"} on any keyword adds a DEPRECATED diagnostic and still
runs the handler (C{Keyword(..., note=...)} gives keepalived's own wording,
C{{name}} standing for the enclosing block's name).  Ready-made handler factories convert arguments with
keepalived's rules and messages: L{setInt}, L{setTimer}, L{setBool},
L{setFlag}, L{setStr}, L{setChoice}, L{setIp}, L{setScript}; the underlying
converters L{parseInt}, L{parseTimer}, L{parseBool}, L{parseIp},
L{parseScript} return C{None} after reporting a diagnostic.

Worked example (what C{schema_lvs} does)::

    from keepalive_tx.config import schema as S

    def _closeUrl(ctx, b, parent):
        parent.setdefault("urls", []).append(b)           # builder dict

    URL = S.BlockSpec("url", {
        "path": S.simple(S.setStr("path")),
        "digest": S.simple(S.setStr("digest")),
    }, close=_closeUrl)

    def _sorryServer(ctx, line, b):                        # custom handler
        if len(line.tokens) < 2:
            ctx.error(line, "sorry_server: missing address")
            return
        b["sorryServer"] = (line.tokens[1], line.tokens[2:])

    def _openVs(ctx, line, parent):
        if len(line.tokens) < 2:
            ctx.error(line, "virtual_server: missing address")
            return None                                    # block skipped
        return {"location": line.location, "header": line.tokens[1:]}

    def _closeVs(ctx, b, root):
        root.setdefault("virtualServers", []).append(makeVirtualServer(ctx, b))

    VS = S.BlockSpec("virtual_server", {
        "delay_loop": S.simple(S.setTimer("delayLoop", 0.000001, 4294.967295)),
        "lb_algo": S.simple(S.setStr("lvsSched"), deprecated="lvs_sched"),
        "sorry_server": S.simple(_sorryServer),
        "ha_suspend": S.simple(S.setFlag("haSuspend")),
        "url": S.block(URL),
        "quorum_up": S.simple(S.setScript("quorumUp")),
        "real_servers_list": S.values(                     # a value block
            lambda ctx, line, b: b.setdefault("rsList", []).append(line.tokens)),
    }, open=_openVs, close=_closeVs)

    TOP_LEVEL_KEYWORDS = {"virtual_server": S.block(VS)}

C{schema_lvs.TOP_LEVEL_KEYWORDS} is merged into
L{keepalive_tx.config.toplevel.topLevel}().  The root builder keys
C{virtualServerGroups}, C{virtualServers} (lists of model objects) and
C{ssl} (a model object or C{None}) become the L{Config} fields of the same names.  Optional hooks in
C{schema_lvs}: C{finish(ctx, root)} runs after parsing, before the model is
built; C{validate(config, diagnostics)} runs with the other cross-checks.

Keywords the daemon does not act on are declared in
L{keepalive_tx.config.unimplemented}; L{topLevel} marks them (a copy of the
keyword carrying its warning) and the parser reports each once, at its
first use, still running its handler so that its value is checked.

Handlers must never raise for bad input: report with C{ctx.error(line, msg)}
(or C{warning}/C{deprecated}) and leave the builder unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from keepalive_tx.config.errors import Diagnostics, Location, Severity
from keepalive_tx.config.lines import LogicalLine

Builder = dict[str, Any]
Handler = Callable[["Context", LogicalLine, Builder], None]

SIMPLE = 0
BLOCK = 1
VALUES = 2
SKIP = 3


class Context:
    """
    What a handler can reach while parsing: the diagnostics and the root builder.

    @ivar diagnostics: where problems go.
    @ivar root: the top-level builder (global settings live under C{"globalDefs"}).
    @ivar last: the last line of the value block being closed (for a
        C{close} handler's report: keepalived's is at the block's end).
    """

    __slots__ = ("diagnostics", "root", "last", "_unimplemented")

    def __init__(self, diagnostics: Diagnostics, root: Builder | None = None) -> None:
        self.diagnostics = diagnostics
        self.root: Builder = root if root is not None else {}
        self.last: LogicalLine | None = None
        #: warning -> [index of its diagnostic, further uses]
        self._unimplemented: dict[str, list[int]] = {}

    def notImplemented(self, line: LogicalLine | Location | None, warning: str) -> None:
        """
        Report C{warning} (a keyword keepalive_tx does not act on) at its
        first use only; L{countNotImplemented} adds how many more uses there were.
        """
        seen = self._unimplemented.get(warning)
        if seen is None:
            self._unimplemented[warning] = [len(self.diagnostics.items), 0]
            self.warning(line, warning)
        else:
            seen[1] += 1

    def countNotImplemented(self) -> None:
        """
        Say in each not-implemented warning on how many more lines the
        keyword was used.
        """
        items = self.diagnostics.items
        for index, more in self._unimplemented.values():
            if more:
                d = items[index]
                text = d.message
                items[index] = replace(d, message=f"{text[:-1]}; also on {more} more line{'s' * (more > 1)})")
        self._unimplemented.clear()

    def error(self, line: LogicalLine | Location | None, message: str) -> None:
        self.diagnostics.add(Severity.ERROR, message, _loc(line))

    def warning(self, line: LogicalLine | Location | None, message: str) -> None:
        self.diagnostics.add(Severity.WARNING, message, _loc(line))

    def deprecated(self, line: LogicalLine | Location | None, message: str) -> None:
        self.diagnostics.add(Severity.DEPRECATED, message, _loc(line))

    def fatal(self, line: LogicalLine | Location | None, message: str) -> None:
        self.diagnostics.add(Severity.FATAL, message, _loc(line))

    def security(self, line: LogicalLine | Location | None, message: str) -> None:
        self.diagnostics.add(Severity.SECURITY, message, _loc(line))


def _loc(where: LogicalLine | Location | None) -> Location | None:
    if where is None or isinstance(where, Location):
        return where
    return where.location


def _defaultOpen(ctx: Context, line: LogicalLine, parent: Builder) -> Builder:
    return {"location": line.location}


def _storeAs(field: str) -> Callable[[Context, Builder, Builder], None]:
    def close(ctx: Context, child: Builder, parent: Builder) -> None:
        parent[field] = child

    return close


def _appendTo(field: str) -> Callable[[Context, Builder, Builder], None]:
    def close(ctx: Context, child: Builder, parent: Builder) -> None:
        lst = parent.get(field)
        if lst is None:
            parent[field] = [child]
        else:
            lst.append(child)

    return close


class BlockSpec:
    """
    A keyword block: its keyword table and how its builder is opened and closed.

    @ivar name: the block's keyword (for messages).
    @ivar keywords: keyword name -> L{Keyword}; may be extended after creation.
    @ivar open: C{(ctx, headerLine, parentBuilder) -> builder | None}.
    @ivar close: C{(ctx, builder, parentBuilder) -> None}.
    @ivar required: keywords that cannot stand alone on their line
        (keepalived stops, see L{keepalive_tx.config.required}); filled in
        by L{keepalive_tx.config.toplevel.topLevel}.
    """

    __slots__ = ("name", "keywords", "open", "close", "required")

    def __init__(
        self,
        name: str,
        keywords: dict[str, Keyword],
        open: Callable[[Context, LogicalLine, Builder], Builder | None] | None = None,
        close: Callable[[Context, Builder, Builder], None] | None = None,
    ) -> None:
        self.name = name
        self.keywords = keywords
        self.open = open or _defaultOpen
        self.close = close or _storeAs(name)
        self.required: frozenset[str] = frozenset()


class Keyword:
    """
    One entry of a keyword table; build with L{simple}, L{block}, L{values}
    or L{skipped}.
    """

    __slots__ = ("kind", "handler", "spec", "open", "close", "deprecated", "note",
                 "unimplemented", "plain")

    def __init__(
        self,
        kind: int,
        handler: Handler | None = None,
        spec: BlockSpec | None = None,
        open: Callable[[Context, LogicalLine, Builder], Builder | None] | None = None,
        close: Callable[[Context, Builder, Builder], None] | None = None,
        deprecated: str | None = None,
        note: str | None = None,
    ) -> None:
        self.kind = kind
        self.handler = handler
        self.spec = spec
        self.open = open
        self.close = close
        self.deprecated = deprecated
        self.note = note
        #: the warning reported at its first use when keepalive_tx does not
        #: act on it (L{keepalive_tx.config.unimplemented}); set by L{topLevel}
        self.unimplemented: str | None = None
        #: neither deprecated nor unimplemented: the parser's fast path
        self.plain = deprecated is None

    def notImplemented(self, warning: str) -> Keyword:
        """
        A copy of this keyword that reports C{warning} at its first use.
        """
        kw = Keyword(self.kind, self.handler, self.spec, self.open, self.close,
                     self.deprecated, self.note)
        kw.unimplemented = warning
        kw.plain = False
        return kw


def simple(handler: Handler, deprecated: str | None = None) -> Keyword:
    """
    A one-line keyword handled by C{handler(ctx, line, builder)}.

    @param deprecated: the keyword to use instead (adds a DEPRECATED diagnostic).
    """
    return Keyword(SIMPLE, handler=handler, deprecated=deprecated)


def block(spec: BlockSpec, deprecated: str | None = None) -> Keyword:
    """
    A keyword opening the nested keyword block C{spec}.
    """
    return Keyword(BLOCK, spec=spec, deprecated=deprecated)


def values(
    item: Handler,
    open: Callable[[Context, LogicalLine, Builder], Builder | None] | None = None,
    close: Callable[[Context, Builder, Builder], None] | None = None,
    deprecated: str | None = None,
) -> Keyword:
    """
    A value block: every raw line until C{}} goes to C{item(ctx, line, b)}.

    @param open: makes C{b} from the header line and the parent builder
        (default: C{b} is the parent builder); C{None} skips the block.  The
        default also reports extra parameters after the keyword.
    @param close: called as C{close(ctx, b, parent)} after the C{}}.
    """
    return Keyword(VALUES, handler=item, open=open, close=close, deprecated=deprecated)


def skipped(note: str | None = None) -> Keyword:
    """
    A keyword that is accepted and ignored; a following C{{ ... }} is skipped.

    @param note: if given, reported as a WARNING when the keyword is seen.
    """
    return Keyword(SKIP, note=note)


# ---------------------------------------------------------------------------
# Argument converters: report a diagnostic and return None on bad input.

_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_TIMER_RE = re.compile(r"([0-9]*)(?:\.([0-9]*))?\Z")
BOOL_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def fmtNum(value: float) -> str:
    """
    Format a range bound the way keepalived prints it (no trailing zeros).
    """
    if isinstance(value, int):
        return str(value)
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def argument(ctx: Context, line: LogicalLine, index: int = 1) -> str | None:
    """
    The argument at C{index}, or C{None} after reporting it missing.
    """
    tokens = line.tokens
    if len(tokens) <= index:
        ctx.error(line, f"{tokens[0] if tokens else '?'}: missing parameter")
        return None
    return tokens[index]


def parseInt(
    ctx: Context, line: LogicalLine, text: str, lo: int, hi: int, what: str | None = None
) -> int | None:
    """
    A decimal integer in [lo, hi] (keepalived accepts no hex or octal).
    """
    what = what or line.keyword
    if not _INT_RE.match(text):
        ctx.error(line, f"{what}: invalid number '{text}' (decimal integer in [{lo}, {hi}] expected) - ignoring")
        return None
    value = int(text)
    if value < lo or value > hi:
        ctx.error(line, f"{what}: number '{text}' outside range [{lo}, {hi}] - ignoring")
        return None
    return value


def parseTimer(
    ctx: Context,
    line: LogicalLine,
    text: str,
    lo: float,
    hi: float,
    what: str | None = None,
    digits: int = 6,
) -> float | None:
    """
    A decimal number of seconds with up to C{digits} decimals, in [lo, hi].
    More decimals are reported and rounded.
    """
    what = what or line.keyword
    m = _TIMER_RE.match(text)
    if m is None or not (m.group(1) or m.group(2)):
        ctx.error(line, f"{what}: invalid number '{text}' (decimal seconds in [{fmtNum(lo)}, {fmtNum(hi)}] expected) - ignoring")
        return None
    frac = m.group(2) or ""
    if len(frac) > 9 + len(m.group(1)) or len(text) > 40:
        ctx.error(line, f"{what}: number '{text}' outside range [{fmtNum(lo)}, {fmtNum(hi)}] - ignoring")
        return None
    value = float(text)
    if len(frac) > digits:
        value = round(value, digits)
        ctx.error(line, f"{what}: number '{text}' has too many decimal places (max {digits}) - rounded to {fmtNum(value)}")
    if value < lo or value > hi:
        ctx.error(line, f"{what}: number '{text}' outside range [{fmtNum(lo)}, {fmtNum(hi)}] - ignoring")
        return None
    return value


def parseBool(ctx: Context, line: LogicalLine, index: int = 1) -> bool | None:
    """
    An optional BOOL argument: missing means true; anything other than
    C{on|off|true|false|yes|no} is an error.
    """
    tokens = line.tokens
    if len(tokens) <= index:
        return True
    value = BOOL_WORDS.get(tokens[index])
    if value is None:
        ctx.error(line, f"{tokens[0]}: invalid boolean '{tokens[index]}' (on|off|true|false|yes|no) - ignoring")
    return value


def parseIp(
    ctx: Context, line: LogicalLine, text: str, what: str | None = None
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """
    A numeric IPv4 or IPv6 address (an IPv6 C{%scope} suffix is accepted).
    """
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        ctx.error(line, f"{what or line.keyword}: invalid IP address '{text}' - ignoring")
        return None


def parseScript(
    ctx: Context, line: LogicalLine, start: int = 1, userWords: bool = True
) -> Any:
    """
    A script-style argument: C{CMD [user [group]]} tokenised with keepalived's
    two-pass rules (docs/keepalived-compat.md) over the whole line, the command
    being word C{start}.  Returns a L{keepalive_tx.config.model.Script} or
    C{None}.

    A command ending in a lone backslash is no error for the keywords
    with user words (keepalived logs it and drops the script): the script
    comes back with an empty C{argv}, which never runs.

    @param userWords: the words after the command are C{user [group]}
        (C{notify_*}, C{quorum_*}, ...); when false (C{vrrp_script}'s
        C{script}, C{misc_path}) keepalived ignores them: the user comes from
        the block's C{user} keyword.
    """
    from keepalive_tx.config.lexer import scriptWordsChecked
    from keepalive_tx.config.model import Script

    if len(line.tokens) <= start:
        ctx.error(line, f"{line.keyword}: missing script command")
        return None
    try:
        argv, user, problem = scriptWordsChecked(line.text, start)
    except Exception as e:  # the lexer must not be able to crash the parser
        ctx.error(line, f"{line.keyword}: cannot parse script '{line.text}': {e}")
        return None
    if problem is not None:
        if userWords and problem.startswith("Missing escape char"):
            # keepalived only logs this for notify-style scripts and drops
            # the script: keep it without argv, the runtime audit says so
            return Script(command=line.tokens[start], argv=(), user=None)
        ctx.error(line, problem)
        return None
    if not argv:
        ctx.error(line, f"{line.keyword}: missing script command")
        return None
    return Script(command=line.tokens[start], argv=tuple(argv),
                  user=(user or None) if userWords else None)


# ---------------------------------------------------------------------------
# Handler factories: the common "keyword VALUE -> builder[field]" cases.


def setInt(field: str, lo: int, hi: int) -> Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = argument(ctx, line)
        if text is not None:
            value = parseInt(ctx, line, text, lo, hi)
            if value is not None:
                b[field] = value

    return handler


def setTimer(field: str, lo: float, hi: float, digits: int = 6) -> Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = argument(ctx, line)
        if text is not None:
            value = parseTimer(ctx, line, text, lo, hi, digits=digits)
            if value is not None:
                b[field] = value

    return handler


def setBool(field: str) -> Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        value = parseBool(ctx, line)
        if value is not None:
            b[field] = value

    return handler


def setFlag(field: str, value: Any = True) -> Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        b[field] = value

    return handler


def setStr(field: str, maxLen: int | None = None) -> Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = argument(ctx, line)
        if text is None:
            return
        if maxLen is not None and len(text) > maxLen:
            ctx.error(line, f"{line.keyword}: '{text}' is longer than {maxLen} characters - ignoring")
            return
        b[field] = text

    return handler


def setChoice(field: str, choices: dict[str, Any]) -> Handler:
    allowed = "|".join(choices)

    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = argument(ctx, line)
        if text is None:
            return
        if text not in choices:
            ctx.error(line, f"{line.keyword}: invalid value '{text}' (allowed: {allowed}) - ignoring")
            return
        b[field] = choices[text]

    return handler


def setIp(field: str) -> Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        text = argument(ctx, line)
        if text is not None:
            value = parseIp(ctx, line, text)
            if value is not None:
                b[field] = value

    return handler


def setScript(field: str, userWords: bool = True) -> Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        value = parseScript(ctx, line, userWords=userWords)
        if value is not None:
            b[field] = value

    return handler


def appendItem(field: str, convert: Callable[[Context, LogicalLine], Any]) -> Handler:
    """
    A value-block item handler appending C{convert(ctx, line)} (unless C{None})
    to C{b[field]}.
    """

    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        value = convert(ctx, line)
        if value is not None:
            lst = b.get(field)
            if lst is None:
                b[field] = [value]
            else:
                lst.append(value)

    return handler


storeAs = _storeAs
appendTo = _appendTo
