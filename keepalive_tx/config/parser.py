"""
The block parser: walks the L{LogicalLine} stream with the keyword tables of
L{keepalive_tx.config.schema} and fills builders (plain dicts).

It reads blocks as keepalived 2.2.7 does (its C{process_stream}), quirks
included (docs/keepalived-compat.md, "Braces"):

  - a block keyword whose C{{} is missing still opens its block: the next
    line is reported (C{Missing '{'...}) and read as the block's first line,
    and the next C{}} closes the block;
  - an unknown keyword's C{{ ... }} is not skipped: the C{{} is reported as
    unexpected, the inner lines are read at the current level and its C{}}
    closes the enclosing block early;
  - a value block (C{virtual_ipaddress}, ...) without its C{{} takes the
    following lines as values up to the next C{}};
  - braces are also counted over the whole text, as keepalived's line
    reader does: a C{}} with no C{{} open is C{Extra '}' found}, and C{{}s
    left open at the end are counted in one report without a line;
  - a keyword that needs a value but stands alone ends keepalived's reading
    (L{keepalive_tx.config.required}); here it is reported with
    keepalived's message and the reading goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keepalive_tx.config.errors import Diagnostics, Severity, Stop
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.required import GLOBAL_BLOCKS, GLOBAL_TOP, missingParameter
from keepalive_tx.config.schema import (
    BLOCK,
    SIMPLE,
    SKIP,
    VALUES,
    BlockSpec,
    Builder,
    Context,
    Keyword,
)
from keepalive_tx.config.toplevel import topLevel

MISSING_BOB = "Missing '{' at beginning of configuration block"
UNEXPECTED_BOB = "Unexpected '{' - ignoring"
EXTRA_EOB = "Extra '}' found"

_OPEN = ("{",)
_CLOSE = ("}",)


def missingEob(count: int) -> str:
    """
    keepalived's report of C{count} blocks left open at the end.
    """
    return f"There are {count} missing '}}'s or extra '{{'s"


def valueBlockWithoutBob(keyword: str) -> str:
    """
    keepalived's (log-only) note of a value block without its C{{}.
    """
    return f"'{{' missing from beginning of block {keyword}"


class BlockParser:
    """
    One pass over a list of logical lines.

    @ivar ctx: the L{Context} handlers report through.
    """

    def __init__(self, lines: Sequence[LogicalLine], ctx: Context) -> None:
        self.lines = lines
        self.ctx = ctx
        self.pos = 0

    # A block's lines: returns when its '}' is consumed (True) or at EOF (False).
    def parseBlock(self, spec: BlockSpec, b: Builder, level: int, needOpen: bool) -> bool:
        lines = self.lines
        n = len(lines)
        get = spec.keywords.get
        required = spec.required
        ctx = self.ctx
        pos = self.pos
        while pos < n:
            line = lines[pos]
            pos += 1
            tokens = line.tokens
            if not tokens:
                continue
            if needOpen:
                needOpen = False
                if tokens == _OPEN:
                    continue
                ctx.error(line, MISSING_BOB)
            elif tokens == _OPEN:
                ctx.error(line, UNEXPECTED_BOB)
                continue
            if tokens == _CLOSE and level > 0:
                self.pos = pos
                return True
            kw = get(tokens[0])
            if kw is None:
                ctx.error(line, f"Unknown keyword '{tokens[0]}'")
                if len(tokens) > 1 and tokens[-1] == "{":
                    # an unsplit 'keyword ... {' line (tests, hand-made streams)
                    ctx.error(line, UNEXPECTED_BOB)
                continue
            if len(tokens) == 1 and tokens[0] in required:
                self.pos = pos
                self.missingParameter(spec, kw, line)
                pos = self.pos
                continue
            if kw.plain and tokens[-1] != "{":
                kind = kw.kind
                if kind == SIMPLE:
                    # Fast path: a plain one-line keyword.
                    kw.handler(ctx, line, b)  # type: ignore[misc]
                    continue
                if kind == BLOCK:
                    # Fast path: dispatch() and subBlock() for "keyword ARGS"
                    # followed by a block.
                    sub = kw.spec
                    child = sub.open(ctx, line, b)  # type: ignore[union-attr]
                    self.pos = pos
                    if child is None:
                        self.skipBlock(False)
                    else:
                        self.parseBlock(sub, child, level + 1, True)  # type: ignore[arg-type]
                        sub.close(ctx, child, b)  # type: ignore[union-attr]
                    pos = self.pos
                    continue
            self.pos = pos
            self.dispatch(kw, line, b, level)
            pos = self.pos
        self.pos = pos
        return False

    def missingParameter(self, spec: BlockSpec, kw: Keyword, line: LogicalLine) -> None:
        """
        C{line} is a keyword that needs a value, alone: keepalived stops
        there. Report it as keepalived does and skip the keyword's block, if
        it has one, so that the rest can still be checked.
        """
        word = line.tokens[0]
        parent = spec.name in GLOBAL_BLOCKS or (spec.name == "<top>" and word in GLOBAL_TOP)
        self.ctx.diagnostics.add(
            Severity.ERROR, missingParameter(word), line.location,
            stop=Stop.GLOBAL_PARAMETER if parent else Stop.PARAMETER)
        if kw.kind != SIMPLE:
            self.skipBlock(False)

    def dispatch(self, kw: Keyword, line: LogicalLine, b: Builder, level: int) -> None:
        ctx = self.ctx
        tokens = line.tokens
        if kw.unimplemented is not None:
            ctx.notImplemented(line, kw.unimplemented)
        if kw.deprecated is not None:
            if kw.note:
                ctx.deprecated(line, kw.note.format(name=b.get("name", "")))
            else:
                ctx.deprecated(line, f'Keyword "{tokens[0]}" is deprecated - please use "{kw.deprecated}"')
        opened = False
        if len(tokens) > 1 and tokens[-1] == "{":
            # An unsplit 'keyword ... {' line (tests, hand-made streams).
            line = LogicalLine(line.location, line.text.rstrip()[:-1].rstrip(), tokens[:-1])
            opened = True
        kind = kw.kind
        if kind == SIMPLE:
            kw.handler(ctx, line, b)  # type: ignore[misc]
            if opened:
                ctx.error(line, UNEXPECTED_BOB)
        elif kind == BLOCK:
            self.subBlock(kw, line, b, level, opened)
        elif kind == VALUES:
            self.valueBlock(kw, line, b, opened)
        elif kind == SKIP:
            if kw.note:
                ctx.warning(line, kw.note)
            self.skipBlock(opened)

    def subBlock(self, kw: Keyword, line: LogicalLine, parent: Builder, level: int, opened: bool) -> None:
        spec = kw.spec
        assert spec is not None
        child = spec.open(self.ctx, line, parent)
        if child is None:
            self.skipBlock(opened)
            return
        self.parseBlock(spec, child, level + 1, not opened)
        spec.close(self.ctx, child, parent)

    def valueBlock(self, kw: Keyword, line: LogicalLine, parent: Builder, opened: bool) -> None:
        """
        keepalived's value blocks: every line up to the next C{}} is a value
        (a C{{} or C{}} inside a line included); without its C{{} the block
        still takes the following lines.
        """
        ctx = self.ctx
        if kw.open is not None:
            b = kw.open(ctx, line, parent)
            if b is None:
                self.skipBlock(opened)
                return
        else:
            b = parent
            if len(line.tokens) > 1:
                ctx.error(line, f"Block {line.tokens[0]} has extra parameters {line.tokens[1]} ...")
        lines = self.lines
        n = len(lines)
        if not opened:
            while self.pos < n and not lines[self.pos].tokens:
                self.pos += 1
            if self.pos < n and lines[self.pos].isOpen:
                self.pos += 1
            else:
                ctx.diagnostics.note(valueBlockWithoutBob(line.tokens[0]), line.location)
        item = kw.handler
        ctx.last = line
        while self.pos < n:
            inner = lines[self.pos]
            self.pos += 1
            tokens = inner.tokens
            if not tokens:
                continue
            ctx.last = inner
            if tokens == _CLOSE:
                break
            item(ctx, inner, b)  # type: ignore[misc]
        if kw.close is not None:
            kw.close(ctx, b, parent)

    def skipBlock(self, opened: bool) -> None:
        """
        Skip a C{{ ... }} block brace-aware, if one follows (or was opened).
        """
        lines = self.lines
        n = len(lines)
        if not opened:
            while self.pos < n and not lines[self.pos].tokens:
                self.pos += 1
            if self.pos < n and lines[self.pos].isOpen:
                self.pos += 1
            else:
                return
        depth = 1
        while self.pos < n:
            line = lines[self.pos]
            self.pos += 1
            if line.isOpen:
                depth += 1
            elif line.isClose:
                depth -= 1
                if depth == 0:
                    return


def countBraces(lines: Sequence[LogicalLine], ctx: Context) -> None:
    """
    keepalived's brace count over the whole text: C{Extra '}' found} where
    more C{}} than C{{} have been read, and how many C{{} are left open.
    """
    depth = 0
    for line in lines:
        tokens = line.tokens
        if tokens == _OPEN or (len(tokens) > 1 and tokens[-1] == "{"):  # (unsplit: tests)
            depth += 1
        elif tokens == _CLOSE:
            if depth < 1:
                ctx.error(line, EXTRA_EOB)
                depth = 0
            else:
                depth -= 1
    if depth > 0:
        ctx.error(None, missingEob(depth))


def parseLines(
    lines: Iterable[LogicalLine],
    diagnostics: Diagnostics,
    spec: BlockSpec | None = None,
) -> Builder:
    """
    Parse logical lines into a root builder (no model is built).

    @param spec: the top-level table (default
        L{keepalive_tx.config.toplevel.topLevel}()).
    @return: the root builder dict.
    """
    seq = lines if isinstance(lines, list | tuple) else list(lines)
    root: Builder = {}
    ctx = Context(diagnostics, root)
    countBraces(seq, ctx)
    BlockParser(seq, ctx).parseBlock(spec or topLevel(), root, 0, False)
    ctx.countNotImplemented()
    return root
