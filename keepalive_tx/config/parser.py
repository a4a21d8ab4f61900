"""
The block parser: walks the L{LogicalLine} stream with the keyword tables of
L{keepalive_tx.config.schema} and fills builders (plain dicts).

It reproduces keepalived's C{process_stream} behaviour, including its quirks
(catalogue §1.7, §0 #12): an unknown keyword followed by C{{} does not skip
the block -- the inner lines are read at the current level and the C{}} closes
the enclosing block early.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keepalive_tx.config.errors import Diagnostics
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.schema import (
    BLOCK,
    SIMPLE,
    SKIP,
    VALUES,
    BlockSpec,
    Builder,
    Context,
    Keyword,
    topLevel,
)

MISSING_BOB = "Missing '{' at beginning of configuration block"
UNEXPECTED_BOB = "Unexpected '{' - ignoring"
EXTRA_EOB = "Extra '}' found"
MISSING_EOB = "Missing '}' at end of configuration block"

_OPEN = ("{",)


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
        ctx = self.ctx
        pos = self.pos
        if needOpen:
            while pos < n and not lines[pos].tokens:
                pos += 1
            if pos < n and lines[pos].tokens == _OPEN:
                pos += 1
            else:
                ctx.error(lines[pos] if pos < n else (lines[-1] if lines else None), MISSING_BOB)
        while pos < n:
            line = lines[pos]
            pos += 1
            tokens = line.tokens
            if not tokens:
                continue
            kw = get(tokens[0])
            if kw is not None:
                if kw.deprecated is None and tokens[-1] != "{":
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
                continue
            if len(tokens) == 1:
                word = tokens[0]
                if word == "}":
                    if level > 0:
                        self.pos = pos
                        return True
                    ctx.error(line, EXTRA_EOB)
                    continue
                if word == "{":
                    ctx.error(line, UNEXPECTED_BOB)
                    continue
            self.pos = pos
            self.unknown(line)
            pos = self.pos
        self.pos = pos
        if level > 0:
            last = lines[-1] if lines else None
            ctx.error(last, f"{MISSING_EOB} '{spec.name}'")
        return False

    def dispatch(self, kw: Keyword, line: LogicalLine, b: Builder, level: int) -> None:
        ctx = self.ctx
        tokens = line.tokens
        if kw.deprecated is not None:
            ctx.deprecated(line, f"Keyword '{tokens[0]}' is deprecated - please use '{kw.deprecated}'")
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

    def unknown(self, line: LogicalLine) -> None:
        lines = self.lines
        word = line.tokens[0]
        braced = len(line.tokens) > 1 and line.tokens[-1] == "{"
        if not braced and self.pos < len(lines) and lines[self.pos].isOpen:
            braced = True
            self.pos += 1
        if braced:
            self.ctx.error(
                line,
                f"Unknown keyword '{word}' (its '{{ ... }}' block is not skipped: "
                "keepalived parses its contents at the current level and its '}' "
                "closes the enclosing block)",
            )
        else:
            self.ctx.error(line, f"Unknown keyword '{word}'")

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
        ctx = self.ctx
        if kw.open is not None:
            b = kw.open(ctx, line, parent)
            if b is None:
                self.skipBlock(opened)
                return
        else:
            b = parent
            if len(line.tokens) > 1:
                ctx.error(
                    line,
                    f"Block {line.tokens[0]} has extra parameters {' '.join(line.tokens[1:])} - ignoring them",
                )
        lines = self.lines
        n = len(lines)
        if not opened:
            if self.pos < n and lines[self.pos].isOpen:
                self.pos += 1
            else:
                ctx.error(line, MISSING_BOB)
        item = kw.handler
        closed = False
        while self.pos < n:
            inner = lines[self.pos]
            self.pos += 1
            tokens = inner.tokens
            if not tokens:
                continue
            if len(tokens) == 1:
                if tokens[0] == "}":
                    closed = True
                    break
                if tokens[0] == "{":
                    ctx.error(inner, UNEXPECTED_BOB)
                    continue
            item(ctx, inner, b)  # type: ignore[misc]
        if not closed:
            ctx.error(lines[-1] if lines else line, f"{MISSING_EOB} '{line.tokens[0]}'")
        if kw.close is not None:
            kw.close(ctx, b, parent)

    def skipBlock(self, opened: bool) -> None:
        """
        Skip a C{{ ... }} block brace-aware, if one follows (or was opened).
        """
        lines = self.lines
        n = len(lines)
        if not opened:
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
        self.ctx.error(lines[-1] if lines else None, MISSING_EOB)


def parseLines(
    lines: Iterable[LogicalLine],
    diagnostics: Diagnostics,
    spec: BlockSpec | None = None,
) -> Builder:
    """
    Parse logical lines into a root builder (no model is built).

    @param spec: the top-level table (default L{schema.topLevel}()).
    @return: the root builder dict.
    """
    seq = lines if isinstance(lines, list | tuple) else list(lines)
    root: Builder = {}
    ctx = Context(diagnostics, root)
    BlockParser(seq, ctx).parseBlock(spec or topLevel(), root, 0, False)
    return root
