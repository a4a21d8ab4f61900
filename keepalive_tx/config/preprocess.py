"""
keepalived configuration text up to logical lines.

Physical lines go through keepalived's C{read_line()} steps in order (the
step numbers below are those of C{docs/keepalived-compat.md}, "Reading a
configuration line"):
embedded NUL / length checks, CR/LF stripping, comments (C{#}, C{!} outside
C{"..."}; C{\\#} C{\\!} literal), multi-line C{$NAME=} collection, C{@ID} /
C{@^ID} conditionals, C{$NAME=VALUE} definitions, C{~SEQ}/C{~SEQx}/C{~LST}
loops, C{$NAME}/C{${NAME}} substitution (repeating while the result starts
with C{@} or still holds a C{$}), C{include}, then brace splitting and
tokenising by the PLY lexer (L{keepalive_tx.config.lexer}).

Files are bytes: keepalived never decodes them. They are read as bytes and
decoded as UTF-8 with C{surrogateescape}, so every byte sequence decodes,
valid UTF-8 text stays readable, and the original bytes can be recovered
with C{.encode("utf-8", "surrogateescape")} (lengths are measured in
bytes). Whitespace is C's C{isspace()} in the C locale, never Unicode
whitespace.

Plain lines (printable ASCII without C{" # ! $ @ ~ \\}, not an include) take a
fast path that only splits braces and whitespace; it gives exactly what the
PLY lexer gives for such lines (tested). Each distinct plain line is split
once per file and its text and token tuples are shared by its repetitions.
Measured on this machine (bench/config_load.py): a generated 62,000-line
configuration (100 VRRP instances, 100 virtual servers x 100 real servers
with TCP_CHECK) in about 0.09 s with the cyclic collector suspended, as
L{keepalive_tx.config.loadConfig} runs it (bench/bench_preprocess.py, which
leaves the collector on, measures about 0.15 s).

Nothing here raises for any input text: every problem becomes a
L{Diagnostic} located at C{file:line}.
"""

from __future__ import annotations

import glob
import os
import random
import re
import socket
import stat
from collections.abc import Callable, Mapping
from typing import Any

from keepalive_tx.config.errors import Diagnostics, Location, Severity, Stop
from keepalive_tx.config.lexer import rawTokens, tokenizeChecked
from keepalive_tx.config.lines import LogicalLine

__all__ = ["preprocessText", "preprocessFile", "defaultConfigId", "MAX_LINE_BYTES"]

#: Longest physical line keepalived accepts: its 1024-byte buffer must hold
#: the line, the newline and a NUL.
MAX_LINE_BYTES = 1022

#: Longest line after parameter substitution (keepalived's MAXBUF - 1).
MAX_SUBSTITUTED = 1023

# Limits that keep hostile input finite (keepalived has none of these and
# would loop or exhaust memory).
_MAX_DEPTH = 48  # nested multi-line replays / ~SEQ levels
_MAX_INCLUDE_DEPTH = 64
_MAX_SUBSTITUTIONS = 256  # per line
_MAX_SEQ_VALUES = 100_000  # per ~SEQ
_MAX_OUTPUT_LINES = 2_000_000

# Include check bits (keepalived's INCLUDE_R/M/W/B).
INCLUDE_R = 1  # a match cannot be read
INCLUDE_M = 2  # a file without wildcards is missing
INCLUDE_W = 4  # a wildcard matches nothing
INCLUDE_B = 8  # a brace alternative matches nothing
INCLUDE_ALL = INCLUDE_R | INCLUDE_M | INCLUDE_W | INCLUDE_B

_INCLUDE_TYPES = {
    "": 0,
    "r": INCLUDE_R,
    "m": INCLUDE_R | INCLUDE_M,
    "b": INCLUDE_R | INCLUDE_B,
    "w": INCLUDE_R | INCLUDE_M | INCLUDE_W,
    "a": INCLUDE_ALL,
}

_INCLUDE_CHECK_OPTIONS = {
    "readable": INCLUDE_R,
    "match": INCLUDE_M,
    "wildcard_match": INCLUDE_W,
    "brace_match": INCLUDE_B,
}

# Literal '#' and '!' (from \# \! ${_HASH} ${_BANG}) travel as these two
# code points until the line is emitted, so that the comment stripping that
# follows each substitution cannot mistake them for comments. Lone high
# surrogates never come out of a surrogateescape decode.
_HASH = "\ud800"
_BANG = "\ud801"

_BLANKS = " \t"
_SPACES = " \t\n\v\f\r"

# A physical line that needs none of the preprocessor's machinery.
_PLAIN = re.compile(r"[ \t%&'()*+,\-./0-9:;<=>?A-Z\[\]^_`a-z{|}]*")
_BRACE_OR_QUOTE = re.compile(r'[{}"]')
_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*")
_REFERENCE = re.compile(
    r"\{([A-Za-z_][A-Za-z0-9_]*)((?:[ ]+[^ {}]+)*)[ ]*\}"
    r"|([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|\Z)"
)
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_BLANK = re.compile(r"[ \t]")
_SEQ = re.compile(r"~SEQ(x?)[ \t]*\([ \t]*([^ \t,)]*)[ \t]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)


def defaultConfigId() -> str:
    """
    keepalived's default config-id: the host name up to the first C{.}.
    """
    return socket.gethostname().split(".", 1)[0]


def _visible(text: str) -> str:
    """
    C{text} with the literal-comment-character markers turned back.
    """
    return text.replace(_HASH, "#").replace(_BANG, "!")


def _byteLength(text: str) -> int:
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))


def _strtol(text: str) -> tuple[int, str]:
    """
    C{strtol(text, &end, 0)}: the value and the unparsed rest.
    """
    m = _STRTOL.match(text)
    if m is None:
        return 0, text
    digits = m.group(2)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif len(digits) > 1:
        value = int(digits, 8 if digits[0] == "0" else 10)
    else:
        value = int(digits)
    if m.group(1) == "-":
        value = -value
    value = max(_LONG_MIN, min(_LONG_MAX, value))
    return value, text[m.end() :]


class _Definition:
    """
    One C{$NAME} definition.

    @ivar lines: the value; one element unless C{multiline}.
    @ivar fn: computes the value (pre-defined names) from the parameters,
        returning C{None} after reporting an error.
    @ivar maxParams: how many C{${NAME P1 P2}} parameters are allowed.
    """

    __slots__ = ("lines", "multiline", "fn", "maxParams")

    def __init__(
        self,
        value: str = "",
        fn: Callable[[list[str], Location], str | None] | None = None,
        maxParams: int = 0,
    ) -> None:
        self.lines = [value]
        self.multiline = False
        self.fn = fn
        self.maxParams = maxParams


class _Preprocessor:
    """
    The state of one preprocessing run (definitions, include stack, ...).
    """

    def __init__(
        self,
        diagnostics: Diagnostics,
        configId: str | None,
        allConfig: bool,
        environ: Mapping[str, str] | None,
        randomSeed: int | None,
    ) -> None:
        self.diagnostics = diagnostics
        self.configId = defaultConfigId() if configId is None else configId
        self.includeCheck = INCLUDE_ALL if allConfig else 0
        self.environ = os.environ if environ is None else environ
        self.random = random.Random(randomSeed)
        self.out: list[LogicalLine] = []
        self.fileStack: list[str] = []
        self.pwd = os.getcwd()
        self.collecting: _Definition | None = None
        self.overflowReported = False
        self.definitions: dict[str, _Definition] = {
            "_PWD": _Definition(fn=lambda params, loc: self.pwd),
            "_INSTANCE": _Definition(fn=lambda params, loc: self.configId),
            "_RANDOM": _Definition(fn=self._random, maxParams=2),
            "_ENV": _Definition(fn=self._env, maxParams=1),
            "_HASH": _Definition(_HASH),
            "_BANG": _Definition(_BANG),
        }

    # ---- diagnostics ------------------------------------------------------

    def error(self, message: str, loc: Location | None) -> None:
        self.diagnostics.add(Severity.ERROR, _visible(message), loc)

    # ---- pre-defined names ----------------------------------------------

    def _random(self, params: list[str], loc: Location) -> str | None:
        low, high = 0, 32767
        if not all(p.isdigit() and p.isascii() for p in params):
            self.error(f"Invalid parameters for ${{_RANDOM {' '.join(params)}}}", loc)
            return None
        if params:
            low = int(params[0])
        if len(params) > 1:
            high = int(params[1])
        if low > high:
            self.error(f"Invalid range for ${{_RANDOM {' '.join(params)}}}", loc)
            return None
        return str(self.random.randint(low, high))

    def _env(self, params: list[str], loc: Location) -> str | None:
        if len(params) != 1:
            self.error("${_ENV} needs the name of one environment variable", loc)
            return None
        return self.environ.get(params[0], "")

    # ---- files --------------------------------------------------------------

    def processText(self, text: str, filename: str, directory: str | None = None) -> None:
        """
        Preprocess the text of one file into C{self.out}.

        @param directory: where its relative includes are (default: the
            directory of C{filename}).
        """
        prevPwd = self.pwd
        try:
            absolute = os.path.abspath(filename)
            self.pwd = os.path.dirname(absolute) if directory is None else os.path.abspath(directory)
            self.fileStack.append(os.path.realpath(absolute))
        except (OSError, ValueError):
            self.fileStack.append(filename)
        try:
            self._processLines(text, filename)
        finally:
            self.fileStack.pop()
            self.pwd = prevPwd
            self._endCollecting()

    def _processLines(self, text: str, filename: str) -> None:
        append = self.out.append
        physical = self._physical
        new = object.__new__
        setFile, setLine, setLoc, setText, setTokens = _SETTERS
        # Large files repeat the same few lines ("weight 1", "}") thousands
        # of times: each distinct physical line is classified and split once.
        cache: dict[str, tuple[tuple[str, tuple[str, ...]], ...] | object | None] = {}
        cached = cache.get
        lines = text.split("\n")
        if lines and not lines[-1]:
            lines.pop()
        collecting = self.collecting
        for number, raw in enumerate(lines, 1):
            parts = cached(raw, cache)
            if parts is cache:
                parts = cache[raw] = _plainParts(raw)
            if parts is None or collecting is not None:
                physical(raw.rstrip("\r"), _location(filename, number))
                collecting = self.collecting
                if self.overflowReported:
                    return
                continue
            if not parts:
                continue
            if parts is _INCLUDE:
                physical(raw, _location(filename, number))
                collecting = self.collecting
                continue
            # A plain line: Location and LogicalLine made as _location() does, inlined.
            loc = new(Location)
            setFile(loc, filename)
            setLine(loc, number)
            for head, tokens in parts:  # type: ignore[union-attr]
                line = new(LogicalLine)
                setLoc(line, loc)
                setText(line, head)
                setTokens(line, tokens)
                append(line)

    def _overflow(self, loc: Location) -> None:
        if not self.overflowReported:
            self.overflowReported = True
            self.error("configuration expands to too many lines - ignoring the rest", loc)

    # ---- one physical line ------------------------------------------------

    def _physical(self, raw: str, loc: Location) -> None:
        """
        Steps 1-4 for one physical line (newline already removed).
        """
        if "\x00" in raw:
            self.error("configuration appears to have embedded NULs - ignoring line", loc)
            return
        if len(raw) > MAX_LINE_BYTES // 4 and _byteLength(raw) > MAX_LINE_BYTES:
            self.error("line too long - ignoring", loc)
            return
        raw = raw.rstrip("\r\n")
        if not raw:
            # An empty line ends a multi-line definition.
            self._endCollecting()
            return
        text = self._decomment(raw, loc)
        if not text:
            return
        if self.collecting is not None:
            self._collect(text)
            return
        self._logical(text, loc, 0)

    def _decomment(self, line: str, loc: Location) -> str:
        """
        Step 2: strip leading/trailing blanks and comments, make C{\\#}
        and C{\\!} literal, report an unterminated quote. A backslash ending
        the line is kept (it continues a multi-line definition).
        """
        line = line.lstrip(_BLANKS)
        parts: list[str] = []
        unterminated = False
        continued = False
        for tok in rawTokens(line):
            kind = tok.type
            if kind == "COMMENT":
                # keepalived still notices a backslash ending the line.
                value = tok.value
                trailing = len(value) - len(value.rstrip("\\"))
                continued = trailing % 2 == 1
                break
            if kind == "ESCAPED":
                second = tok.value[1]
                if second == "#":
                    parts.append(_HASH)
                elif second == "!":
                    parts.append(_BANG)
                else:
                    parts.append(tok.value)
            elif kind == "CONTINUATION":
                continued = True
                break
            else:
                if kind == "OPENQUOTE":
                    unterminated = True
                parts.append(tok.value)
        if unterminated:
            self.error(f"Unterminated quote '{line}'", loc)
        text = "".join(parts).rstrip(_BLANKS)
        if continued:
            text += "\\"
        return text

    # ---- multi-line definitions -------------------------------------------

    def _collect(self, text: str) -> None:
        definition = self.collecting
        assert definition is not None
        if text.endswith("\\"):
            body = text[:-1].rstrip(_BLANKS)
            if body:
                definition.lines.append(body)
        else:
            definition.lines.append(text)
            self._endCollecting()

    def _endCollecting(self) -> None:
        definition = self.collecting
        if definition is None:
            return
        self.collecting = None
        if not definition.lines:
            definition.lines = [""]
            definition.multiline = False

    # ---- logical processing (steps 5-10) --------------------------------

    def _logical(self, text: str, loc: Location, depth: int) -> None:
        """
        Conditionals, definitions, sequences, substitution, include and
        brace splitting for one line (already stripped of comments); the
        part after a brace goes round again.
        """
        if depth > _MAX_DEPTH:
            self.error(f"Definitions or sequences nested too deeply at '{text}'", loc)
            return
        replays: list[list[str]] = []
        current: str | None = text
        while current:
            expanded = self._expand(current, loc, depth, replays)
            current = None
            if not expanded:
                continue
            if _isInclude(expanded):
                self._include(expanded, loc)
                continue
            current = self._split(expanded, loc)
        for lines in reversed(replays):
            for line in lines:
                self._logical(line, loc, depth + 1)

    def _expand(
        self, text: str, loc: Location, depth: int, replays: list[list[str]]
    ) -> str | None:
        """
        Steps 5-8. Returns the text to emit, or C{None} when the line
        was consumed (dropped conditional, definition, sequence).
        """
        for _ in range(64):
            if not text:
                return None
            first = text[0]
            if first == "@":
                text = self._conditional(text)
                if text is None:
                    return None
            if text[0] == "$" and self._definition(text, loc):
                return None
            if text.startswith("~SEQ") or text.startswith("~LST"):
                self._sequence(text, loc, depth)
                return None
            if text[0] == "~" or "$" not in text:
                return text
            substituted, changed = self._substitute(text, loc, replays)
            if not changed:
                return substituted
            text = self._decomment(substituted, loc)
            if not text.startswith("@") and "$" not in text:
                return text
        self.error(f"Too many rounds of parameter substitution on line '{text}'", loc)
        return text

    def _conditional(self, text: str) -> str | None:
        """
        Step 5: C{@ID rest} / C{@^ID rest}.
        """
        reverse = text.startswith("@^")
        start = 2 if reverse else 1
        m = _BLANK.search(text, start)
        if m is None:
            return None
        matches = text[start : m.start()] == self.configId
        if matches == reverse:
            return None
        return text[m.end() :].lstrip(_BLANKS) or None

    def _definition(self, text: str, loc: Location) -> bool:
        """
        Step 6: C{$NAME=VALUE}; a value ending in C{\\} starts a multi-line
        definition.
        """
        m = _DEFINITION.match(text)
        if m is None:
            return False
        name = m.group(1)
        value = text[m.end() :]
        definition = _Definition(value)
        if value.endswith("\\"):
            body = value[:-1].rstrip(_BLANKS)
            definition.lines = [body] if body else []
            definition.multiline = True
            self.collecting = definition
        self.definitions[name] = definition
        return True

    def _substitute(
        self,
        text: str,
        loc: Location,
        replays: list[list[str]] | None,
    ) -> tuple[str, bool]:
        """
        Step 8: replace C{$NAME} and C{${NAME [PARAMS]}} (recursively: the
        replacement is scanned again). A multi-line definition used at the end
        of the line contributes its first line here and queues the others in
        C{replays}; with C{replays=None} it is an error.

        @return: the text and whether anything was replaced.
        """
        definitions = self.definitions
        changed = False
        pos = 0
        count = 0
        while True:
            i = text.find("$", pos)
            if i < 0 or i + 1 >= len(text):
                break
            m = _REFERENCE.match(text, i + 1)
            if m is None:
                pos = i + 1
                continue
            name = m.group(1) or m.group(3)
            definition = definitions.get(name)
            atEnd = m.end() == len(text)
            if definition is None or (definition.multiline and not atEnd):
                pos = i + 1
                continue
            params = m.group(2).split() if m.group(1) else []
            if params and definition.maxParams == 0:
                self.error(f"Definition '{name}' does not take parameters", loc)
                pos = i + 1
                continue
            if len(params) > definition.maxParams:
                self.error(f"Too many parameters or extra text for ${{{name} {' '.join(params)}}}", loc)
                pos = i + 1
                continue
            if definition.fn is not None:
                value = definition.fn(params, loc)
                if value is None:
                    pos = i + 1
                    continue
            else:
                value = definition.lines[0]
                if definition.multiline:
                    if replays is None:
                        self.error(f"~SEQ parameter is multiline definition '{text}'", loc)
                        return text, False
                    if len(definition.lines) > 1:
                        replays.append(definition.lines[1:])
            count += 1
            newText = text[:i] + value + text[m.end() :]
            if _byteLength(newText) > MAX_SUBSTITUTED:
                self.error(
                    f"Parameter substitution on line '{text}' would exceed maximum line length",
                    loc,
                )
                return text, changed
            if count > _MAX_SUBSTITUTIONS:
                self.error(
                    f"Parameter substitution on line '{text}' does not terminate"
                    " (recursive definition?)",
                    loc,
                )
                return text, changed
            text = newText
            changed = True
            if value.lstrip(_BLANKS).startswith("~"):
                break
            pos = i
        return text, changed

    # ---- sequences (step 7) ---------------------------------------------

    def _sequence(self, text: str, loc: Location, depth: int) -> None:
        if text.startswith("~SEQ"):
            parsed = self._parseSeq(text, loc)
        else:
            parsed = self._parseLst(text, loc)
        if parsed is None:
            return
        names, valueSets, rest = parsed
        for name in names:
            if name in self.definitions:
                self.error(f"Sequence variable '{name}' is already defined in '{text}'", loc)
                return
        try:
            for values in valueSets:
                for name, value in zip(names, values, strict=True):
                    self.definitions[name] = _Definition(value)
                if rest:
                    self._logical(rest, loc, depth + 1)
                if self.overflowReported or len(self.out) > _MAX_OUTPUT_LINES:
                    self._overflow(loc)
                    return
        finally:
            for name in names:
                self.definitions.pop(name, None)

    def _parseSeq(
        self, text: str, loc: Location
    ) -> tuple[list[str], list[list[str]], str] | None:
        m = _SEQ.match(text)
        if m is None:
            self.error(f"Invalid ~SEQ specification '{text}'", loc)
            return None
        hexadecimal = m.group(1) == "x"
        var = m.group(2)
        p = m.end()
        close = text.find(")", p)
        if not var or p >= len(text) or text[p] != "," or close < 0:
            self.error(f"Invalid ~SEQ definition '{text}'", loc)
            return None
        params, _ = self._substitute(text[p + 1 : close + 1], loc, None)
        if "$" in params and any(
            d.multiline and f"${n}" in params for n, d in self.definitions.items()
        ):
            self.error(f"~SEQ parameter is multiline definition '{text}'", loc)
            return None
        numbers: list[int] = []
        rest = params
        while True:
            value, rest = _strtol(rest)
            numbers.append(value)
            rest = rest.lstrip(_BLANKS)
            if rest.startswith(")"):
                break
            if not rest.startswith(",") or len(numbers) == 3:
                self.error(f"Invalid ~SEQ definition '{text}'", loc)
                return None
            rest = rest[1:]
        if len(numbers) == 1:
            end = numbers[0]
            step = -1 if end < 1 else 1
            start = -1 if end < 0 else 1
        elif len(numbers) == 2:
            start, end = numbers
            step = 1 if start <= end else -1
        else:
            start, step, end = numbers
            if step == 0 or (start < end and step < 0) or (start > end and step > 0):
                self.error(f"Invalid ~SEQ values '{text}'", loc)
                return None
        if hexadecimal and (start < 0 or end < 0):
            self.error(f"~SEQx is only valid for positive numbers '{text}'", loc)
            return None
        count = (end - start) // step + 1
        if count > _MAX_SEQ_VALUES:
            self.error(f"~SEQ has too many values ({count}) '{text}'", loc)
            return None
        fmt = "{:x}" if hexadecimal else "{:d}"
        values = [[fmt.format(v)] for v in range(start, end + (1 if step > 0 else -1), step)]
        return [var], values, text[close + 1 :].lstrip(_BLANKS)

    def _parseLst(
        self, text: str, loc: Location
    ) -> tuple[list[str], list[list[str]], str] | None:
        invalid = f"Invalid ~LST specification '{text}'"
        p = 4
        n = len(text)

        def skip(q: int) -> int:
            while q < n and text[q] in _BLANKS:
                q += 1
            return q

        def word(q: int, stops: str) -> tuple[str, int]:
            start = q
            while q < n and text[q] not in stops:
                q += 1
            return text[start:q], q

        p = skip(p)
        if p >= n or text[p] != "(":
            self.error(invalid, loc)
            return None
        p = skip(p + 1)
        grouped = p < n and text[p] == "{"
        if grouped:
            p = skip(p + 1)
        names: list[str] = []
        while True:
            name, p = word(p, " \t,})")
            names.append(name)
            p = skip(p)
            if p < n and text[p] == ("}" if grouped else ","):
                break
            if p >= n or text[p] != ",":
                self.error(invalid, loc)
                return None
            p = skip(p + 1)
        if grouped:
            p = skip(p + 1)
        if p >= n or text[p] != ",":
            self.error(invalid, loc)
            return None
        p = skip(p + 1)
        if any(_NAME.fullmatch(name) is None for name in names):
            self.error(invalid, loc)
            return None
        valueSets: list[list[str]] = []
        while True:
            grouped = p < n and text[p] == "{"
            if grouped:
                p = skip(p + 1)
            values: list[str] = []
            while True:
                value, p = word(p, " \t,})")
                values.append(value)
                p = skip(p)
                if p < n and (text[p] == "}" if grouped else text[p] in ",)"):
                    break
                if p >= n or text[p] != ",":
                    self.error(invalid, loc)
                    return None
                p = skip(p + 1)
                if len(values) >= len(names):
                    self.error(f"~LST specification has too many values '{text}'", loc)
                    return None
            if len(values) > len(names):
                self.error(f"~LST specification has too many values '{text}'", loc)
                return None
            values.extend([""] * (len(names) - len(values)))
            valueSets.append(values)
            if grouped:
                p = skip(p + 1)
            if p < n and text[p] == ")":
                break
            if p >= n or text[p] != ",":
                self.error(invalid, loc)
                return None
            p = skip(p + 1)
        return names, valueSets, text[p + 1 :].lstrip(_BLANKS)

    # ---- include (step 9) -----------------------------------------------

    def _include(self, text: str, loc: Location) -> None:
        variant = text[7] if text[7] not in _SPACES else ""
        pattern = _visible(text[8 if not variant else 9 :].lstrip(_BLANKS))
        if len(pattern) >= 2 and pattern[0] == '"' and pattern[-1] == '"':
            pattern = pattern[1:-1]
        checks = self.includeCheck | _INCLUDE_TYPES[variant]
        if not pattern:
            self.error(f"include{variant} needs a file name", loc)
            return
        if len(self.fileStack) > _MAX_INCLUDE_DEPTH:
            self.error(f"includes nested too deeply at '{pattern}'", loc)
            return
        base = glob.escape(self.pwd)
        # (path, the name keepalived shows: as written, relative or not)
        matches: list[tuple[str, str]] = []
        missing = 0
        wildcards = False
        alternatives = _expandBraces(pattern)
        for alternative in alternatives:
            full = alternative if os.path.isabs(alternative) else os.path.join(base, alternative)
            shown = alternative if os.path.isabs(alternative) else os.path.join(self.pwd, alternative)
            if glob.has_magic(alternative):
                wildcards = True
                if not os.path.isdir(_nonMagicDirectory(shown)):
                    missing += 1
                    continue
                try:
                    found = sorted(glob.glob(full))
                except (OSError, ValueError, RecursionError):
                    found = []
                relative = not os.path.isabs(alternative)
                matches.extend((f, os.path.relpath(f, self.pwd) if relative else f) for f in found)
            elif os.path.lexists(shown):
                matches.append((shown, alternative))
            else:
                missing += 1
        braces = len(alternatives) > 1
        if not matches:
            if missing:
                self._fileError(
                    INCLUDE_B if braces else INCLUDE_M,
                    checks,
                    f"Config files missing '{pattern}'.",
                    loc,
                )
            elif wildcards and checks & INCLUDE_W:
                # (keepalived says nothing of an empty match it was not asked to check)
                self._fileError(INCLUDE_W, checks, f"No config files matched '{pattern}'.", loc)
            return
        if missing:
            self._fileError(INCLUDE_B, checks, f'Some config files missing: "{pattern}".', loc)
            if checks & INCLUDE_B:
                return
        for path, name in matches:
            self._includeFile(path, name, checks, loc)
            if self.overflowReported:
                return

    def _includeFile(self, path: str, name: str, checks: int, loc: Location) -> None:
        try:
            real = os.path.realpath(path)
            info = os.stat(path)
        except (OSError, ValueError) as e:
            self._fileError(
                INCLUDE_R,
                checks,
                f"Configuration file '{name}' open problem ({_strerror(e)}) - skipping",
                loc,
            )
            return
        if stat.S_ISDIR(info.st_mode):
            self._fileError(INCLUDE_R, checks, _isDirectory(name), loc)
            return
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o111:
            self._fileError(
                INCLUDE_R,
                checks,
                f"Configuration file '{name}' is not a regular non-executable file - skipping",
                loc,
            )
            return
        if real in self.fileStack:
            self.error(f"include loop: '{path}' is already being read - skipping", loc)
            return
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            self._fileError(
                INCLUDE_R,
                checks,
                f"Configuration file '{name}' open problem ({_strerror(e)}) - skipping",
                loc,
            )
            return
        saved = self.includeCheck
        try:
            self.processText(data.decode("utf-8", "surrogateescape"), path)
        finally:
            self.includeCheck = saved

    def _fileError(self, kind: int, checks: int, message: str, loc: Location) -> None:
        """
        keepalived's C{file_config_error()}: a missing/unreadable include is
        a file-not-found error, which ends the reading ("not configured"),
        only if the matching check is enabled; otherwise it is only
        reported (C{-t} prints it and still exits 0).
        """
        if checks & kind:
            self.diagnostics.add(Severity.FATAL, message, loc, stop=Stop.INCLUDE)
        else:
            self.diagnostics.note(message, loc)

    def _includeCheck(self, tokens: tuple[str, ...], loc: Location) -> None:
        """
        C{include_check [[+|-]readable|match|wildcard_match|brace_match ...]}
        (global_defs): the default check level for later includes.
        """
        options = tokens[1:]
        if not options:
            self.includeCheck = INCLUDE_ALL
            return
        level = self.includeCheck if options[0][:1] in ("+", "-") else 0
        for option in options:
            sign = option[:1] if option[:1] in ("+", "-") else ""
            bit = _INCLUDE_CHECK_OPTIONS.get(option[len(sign) :])
            if bit is None:
                continue  # reported by the global_defs schema
            level = level & ~bit if sign == "-" else level | bit
        self.includeCheck = level

    # ---- brace splitting and tokenising (steps 10-11) -------------------

    def _split(self, text: str, loc: Location) -> str | None:
        """
        Emit the part of C{text} before the first brace not inside
        C{"..."} (or the brace itself); return the rest.
        """
        first = text[0]
        if first == "{" or first == "}":
            head, rest = first, text[1:].strip(_BLANKS)
        else:
            pos = _firstBraceOutsideQuotes(text)
            if pos < 0:
                head, rest = text.rstrip(_BLANKS), ""
            else:
                head, rest = text[:pos].rstrip(_BLANKS), text[pos:].rstrip(_BLANKS)
        self._emit(head, loc)
        return rest or None

    def _emit(self, text: str, loc: Location) -> None:
        visible = _visible(text)
        tokens, unmatched = tokenizeChecked(visible)
        if unmatched:
            self.diagnostics.add(Severity.ERROR, f"Unmatched quote: '{visible}'", loc)
        if tokens:
            if tokens[0] == "include_check":
                self._includeCheck(tokens, loc)
            self.out.append(LogicalLine(loc, visible, tokens))


def _makeSetters() -> tuple[Callable[[Any, Any], None], ...]:
    """
    Setters of C{Location.file}, C{Location.line}, C{LogicalLine.location},
    C{.text} and C{.tokens} for instances made with C{object.__new__}: the
    slots' own C{__set__} (the generated frozen C{__init__} costs twice as
    much), or C{object.__setattr__} should the classes lose their slots. (A
    field added to either class would be left unset: the preprocessor tests
    compare whole lines and would fail.)
    """

    def setter(cls: type, name: str) -> Callable[[Any, Any], None]:
        if name in getattr(cls, "__slots__", ()):
            return getattr(cls, name).__set__
        return lambda obj, value: object.__setattr__(obj, name, value)  # pragma: no cover

    return (
        setter(Location, "file"),
        setter(Location, "line"),
        setter(LogicalLine, "location"),
        setter(LogicalLine, "text"),
        setter(LogicalLine, "tokens"),
    )


_SETTERS = _makeSetters()


def _location(file: str, line: int) -> Location:
    loc = object.__new__(Location)
    _SETTERS[0](loc, file)
    _SETTERS[1](loc, line)
    return loc


# _plainParts() for a plain line that is an include (or include_check): it
# goes through the full preprocessor.
_INCLUDE = object()


def _plainParts(raw: str) -> tuple[tuple[str, tuple[str, ...]], ...] | object | None:
    """
    The logical lines, as C{(text, tokens)} pairs, of a physical line that
    needs none of the preprocessor's machinery: printable ASCII without
    quotes, comments, escapes, C{$}, C{@}, C{~} (so no definitions,
    conditionals or sequences); only braces and whitespace split it.

    @return: the pairs (none for a blank line), L{_INCLUDE} for an include
        line, or C{None} if the line is not plain.
    """
    if len(raw) > MAX_LINE_BYTES or _PLAIN.fullmatch(raw) is None:
        return None
    line = raw.strip(_BLANKS)
    if not line:
        return ()
    if line[0] == "i" and line.startswith("include"):
        return _INCLUDE
    brace = line.find("{")
    if "}" not in line:
        if brace < 0:
            return ((line, tuple(line.split())),)
        if brace == len(line) - 1:  # "keyword args {"
            if brace:
                head = line[:-1].rstrip(_BLANKS)
                return ((head, tuple(head.split())), ("{", ("{",)))
            return (("{", ("{",)),)
    elif line == "}":
        return (("}", ("}",)),)
    parts = []
    while line:
        first = line[0]
        if first == "{" or first == "}":
            parts.append((first, (first,)))
            line = line[1:].lstrip(_BLANKS)
            continue
        pos = _firstBrace(line)
        if pos < 0:
            head, line = line, ""
        else:
            head, line = line[:pos].rstrip(_BLANKS), line[pos:]
        parts.append((head, tuple(head.split())))
    return tuple(parts)


def _firstBrace(text: str) -> int:
    a = text.find("{")
    b = text.find("}")
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


def _firstBraceOutsideQuotes(text: str) -> int:
    """
    Position of the first C{{} or C{}} not inside C{"..."}, or -1 (an
    unmatched C{"} hides everything after it).
    """
    pos = 0
    while True:
        m = _BRACE_OR_QUOTE.search(text, pos)
        if m is None:
            return -1
        if m.group() != '"':
            return m.start()
        close = text.find('"', m.end())
        if close < 0:
            return -1
        pos = close + 1


def _isInclude(text: str) -> bool:
    """
    C{include PATH}, or C{includeX PATH} with X one of C{r m w b a}.
    """
    if not text.startswith("include") or len(text) < 9:
        return False
    if text[7] in _SPACES:
        return True
    return text[7] in "rmwba" and text[8] in _SPACES


def _expandBraces(pattern: str) -> list[str]:
    """
    csh-style brace expansion (C{GLOB_BRACE}): C{a{b,c{d,e}}f} gives
    C{abf acdf acef}. Unbalanced braces and C{{}} are literal.
    """
    results = [pattern]
    out: list[str] = []
    guard = 0
    while results:
        current = results.pop(0)
        guard += 1
        span = _firstBraceGroup(current)
        if span is None or guard > 4096:
            out.append(current)
            continue
        start, end, parts = span
        results[0:0] = [current[:start] + part + current[end + 1 :] for part in parts]
    return out


def _firstBraceGroup(text: str) -> tuple[int, int, list[str]] | None:
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth = 0
            parts: list[str] = []
            partStart = i + 1
            j = i
            while j < n:
                d = text[j]
                if d == "\\":
                    j += 2
                    continue
                if d == "{":
                    depth += 1
                elif d == "}":
                    depth -= 1
                    if depth == 0:
                        break
                elif d == "," and depth == 1:
                    parts.append(text[partStart:j])
                    partStart = j + 1
                j += 1
            if j >= n:
                return None  # unbalanced: literal
            parts.append(text[partStart:j])
            if len(parts) > 1 or parts[0]:
                return i, j, parts
            i = j + 1  # "{}" is literal
            continue
        i += 1
    return None


def _nonMagicDirectory(path: str) -> str:
    """
    The directory part of C{path} before its first wildcard component.
    """
    parts = path.split(os.sep)
    kept: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        kept.append(part)
    return os.sep.join(kept) or (os.sep if path.startswith(os.sep) else ".")


def _isDirectory(path: str) -> str:
    # keepalived names a directory as its glob marks it, with a trailing '/'
    shown = path if path.endswith(os.sep) else path + os.sep
    return f"Configuration file '{shown}' is a directory - skipping"


def _strerror(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e)


def preprocessText(
    text: str,
    filename: str,
    diagnostics: Diagnostics,
    configId: str | None = None,
    *,
    allConfig: bool = False,
    environ: Mapping[str, str] | None = None,
    randomSeed: int | None = None,
    directory: str | None = None,
) -> list[LogicalLine]:
    """
    Turn configuration text into logical lines.

    @param text: the file's text (see the module docstring for decoding).
    @param filename: the name used in locations; relative includes and
        C{${_PWD}} are resolved against its directory.
    @param diagnostics: receives every problem found; nothing is raised.
    @param configId: the id matched by C{@ID} lines (C{-i}); C{None} means
        L{defaultConfigId}.
    @param allConfig: C{-e}/C{--all-config}: any missing included file is an
        error (as C{include_check} with no options).
    @param environ: the environment for C{${_ENV VAR}} (default
        C{os.environ}).
    @param randomSeed: seed for C{${_RANDOM}} (C{global_defs random_seed});
        C{None} seeds from the system.
    @param directory: where relative includes and C{${_PWD}} point
        (default: the directory of C{filename}), for text that is not a
        file.
    @return: the logical lines, braces on lines of their own.
    """
    pre = _Preprocessor(diagnostics, configId, allConfig, environ, randomSeed)
    try:
        pre.processText(text, filename, directory)
    except RecursionError:
        diagnostics.add(Severity.ERROR, "configuration nested too deeply - ignoring the rest")
    finally:
        # The pre-defined names' functions refer back to the preprocessor:
        # break that cycle so that the lines are freed by reference counting
        # as soon as the caller drops them, not by a later cyclic collection.
        pre.definitions.clear()
    return pre.out


def preprocessFile(
    path: str,
    diagnostics: Diagnostics,
    configId: str | None = None,
    *,
    allConfig: bool = False,
    environ: Mapping[str, str] | None = None,
    randomSeed: int | None = None,
) -> list[LogicalLine]:
    """
    Read and preprocess a configuration file (see L{preprocessText}).

    A missing or unreadable top file gives no lines and a
    L{Severity.FATAL} diagnostic that stops everything
    (L{Stop.MAIN_FILE}). As keepalived's, C{-t} counts a missing file or a
    directory only with C{-e} (C{allConfig}): without it, it reports the
    file and exits 0; an unreadable file always counts.
    """
    try:
        if os.path.isdir(path):
            message, counted = _isDirectory(path), allConfig
        else:
            with open(path, "rb") as f:
                data = f.read()
            message = None
    except FileNotFoundError:
        message, counted = f"Config files missing '{path}'.", allConfig
    except (OSError, ValueError) as e:
        message, counted = f"Unable to read configuration file {path} ({_strerror(e)})", True
    if message is not None:
        diagnostics.add(Severity.FATAL, message, stop=Stop.MAIN_FILE, counted=counted)
        return []
    return preprocessText(
        data.decode("utf-8", "surrogateescape"),
        path,
        diagnostics,
        configId,
        allConfig=allConfig,
        environ=environ,
        randomSeed=randomSeed,
    )
