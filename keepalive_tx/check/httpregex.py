# -*- test-case-name: tests.unit.test_check_http_regex -*-
"""
The C{regex} family of HTTP_GET / SSL_GET C{url} options, pure (no I/O).

keepalived compiles C{regex} with PCRE2 and matches it incrementally over the
received data with C{PCRE2_PARTIAL_HARD}.  Python's C{re} has no partial
matching, so L{RegexMatcher} searches a bounded sliding window of the
streamed body instead:

  - the subject is the B{body} as hashed for C{digest} (C{Content-Length}
    bounds it; a chunked body includes its framing unless it is decoded).
    keepalived also matches the header when body bytes arrive in the same
    read as its end, which makes its offsets depend on read boundaries;
    offsets here always count from the first body byte;
  - a match must B{start} at an offset in C{[regex_min_offset,
    regex_max_offset]} (both inclusive; keepalived stores max + 1 and checks
    C{start < max + 1}); with the C{firstline} option it must also start at
    or before the first newline at or after C{regex_min_offset};
  - C{regex_no_match} inverts the outcome;
  - any match whose text (plus up to L{MARGIN} bytes of lookbehind and
    lookahead context) fits in C{window} bytes (default L{DEFAULT_WINDOW},
    64 KiB) is found, wherever the reads split the body.  A match longer
    than the window (C{.*} running over a long body) may be missed, like
    keepalived discards a partial match longer than its read buffer;
  - at most about 2 x C{window} + one read of the body is held at any time,
    and bytes before C{regex_min_offset} or past the point where no
    acceptable start remains are never kept; each body byte is searched
    about twice.

Patterns are PCRE2 syntax, translated (L{translate}) to Python's C{re}
syntax for the common differences: POSIX classes C{[[:digit:]]}, C{\\Q...\\E},
C{\\x{{hh}}}, C{\\o{{ooo}}}, C{\\e}, C{\\h \\H \\v \\V \\R}, C{\\z \\Z},
C{(?<name>...)} / C{(?'name'...)}, C{\\k<name>} / C{\\k{{name}}} /
C{\\g{{name}}} / C{\\gN}.  Constructs C{re} cannot express (C{\\K}, C{\\G},
C{\\p}, C{\\X}, recursion, C{(*VERB)}, C{(?|...)}, ...) are errors.  Matching
is bytewise (no UTF mode).  C{regex_stack} (the PCRE2 JIT stack) has no
equivalent and no effect.  C{re} has no match limit: a pattern with
catastrophic backtracking costs CPU per check, bounded by the window.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

DEFAULT_WINDOW = 65536
MARGIN = 256

_FLAGS: dict[str, int] = {
    "caseless": re.IGNORECASE,
    "dotall": re.DOTALL,
    "extended": re.VERBOSE,
    "multiline": re.MULTILINE,
}

# accepted, with no effect on whether a match exists here
_NO_EFFECT = frozenset(
    {
        "auto_callout",
        "dupnames",
        "never_backslash_c",
        "never_ucp",
        "never_utf",
        "no_auto_capture",
        "no_auto_possess",
        "no_dotstar_anchor",
        "no_start_optimize",
        "ungreedy",  # greediness changes which match, not whether one exists
        "use_offset_limit",
    }
)

# keepalived accepts these; their meaning is not reproduced
_UNSUPPORTED = frozenset(
    {
        "allow_empty_class",
        "alt_bsux",
        "alt_circumflex",
        "alt_verbnames",
        "dollar_endonly",
        "match_unset_backref",
        "ucp",
        "utf",
    }
)

#: every option name keepalived 2.2.7 accepts in C{regex_options}
OPTION_NAMES = frozenset(_FLAGS) | _NO_EFFECT | _UNSUPPORTED | {"firstline"}


def optionProblem(name: str) -> str | None:
    """
    @return: why C{regex_options} word C{name} is not honoured (for a
        configuration diagnostic), or L{None} when it is.
    """
    if name not in OPTION_NAMES:
        return f"unknown regex option '{name}' - ignoring"
    if name in _UNSUPPORTED:
        return f"regex option '{name}' is not supported (matching is bytewise Python re) - ignoring"
    return None


class RegexError(ValueError):
    """
    A pattern that cannot be used.

    @ivar offset: where in the pattern, or L{None}.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# -- PCRE2 -> re translation ---------------------------------------------------

_POSIX = {
    "alnum": r"a-zA-Z0-9",
    "alpha": r"a-zA-Z",
    "ascii": r"\x00-\x7f",
    "blank": r" \t",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": r"0-9",
    "graph": r"\x21-\x7e",
    "lower": r"a-z",
    "print": r"\x20-\x7e",
    "punct": r"!-/:-@\[-`{-~",
    "space": r"\t\n\x0b\x0c\r ",
    "upper": r"A-Z",
    "word": r"a-zA-Z0-9_",
    "xdigit": r"0-9A-Fa-f",
}
_H = r" \t\xa0"
_V = r"\n\x0b\x0c\r\x85"
_OUTSIDE = {
    "e": r"\x1b",
    "h": f"[{_H}]",
    "H": f"[^{_H}]",
    "v": f"[{_V}]",
    "V": f"[^{_V}]",
    "R": r"(?:\r\n|[\n\x0b\x0c\r\x85])",
    "z": r"\Z",
    "Z": r"(?=\n?\Z)",
}
_INSIDE = {"e": r"\x1b", "h": _H, "v": _V}
_REJECT = {
    "K": r"\K (reset match start)",
    "G": r"\G",
    "X": r"\X",
    "p": r"\p (Unicode property)",
    "P": r"\P (Unicode property)",
    "C": r"\C",
    "N": r"\N",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _charClass(p: str, i: int) -> tuple[str, int]:
    """
    Translate the class starting at C{p[i] == "["}; return it and the index
    after its C{]}.
    """
    start = i
    out = ["["]
    i += 1
    if i < len(p) and p[i] == "^":
        out.append("^")
        i += 1
    first = True
    while True:
        if i >= len(p):
            raise RegexError("missing terminating ] for character class", start)
        c = p[i]
        if c == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        first = False
        if c == "[" and p.startswith("[:", i):
            j = p.find(":]", i + 2)
            name = p[i + 2 : j] if j > 0 else ""
            if name.startswith("^"):
                raise RegexError("negated POSIX class is not supported", i)
            if name not in _POSIX:
                raise RegexError(f"unknown POSIX class name '{name}'", i)
            out.append(_POSIX[name])
            i = j + 2
            continue
        if c == "]" or c == "[":
            out.append("\\" + c)
            i += 1
            continue
        if c == "\\":
            text, i = _escape(p, i, inClass=True)
            out.append(text)
            continue
        out.append(c)
        i += 1


def _escape(p: str, i: int, inClass: bool) -> tuple[str, int]:
    """
    Translate the escape at C{p[i] == "\\\\"}; return it and the next index.
    """
    if i + 1 >= len(p):
        raise RegexError("\\ at end of pattern", i)
    c = p[i + 1]
    if c in "xo" and p.startswith("{", i + 2):
        j = p.find("}", i + 3)
        if j < 0:
            raise RegexError(f"missing }} in \\{c}{{...}}", i)
        try:
            value = int(p[i + 3 : j], 16 if c == "x" else 8)
        except ValueError:
            raise RegexError(f"bad \\{c}{{...}} number", i) from None
        if value > 0xFF:
            raise RegexError("character code point value is too large (no UTF mode)", i)
        return f"\\x{value:02x}", j + 1
    if c == "c" and i + 2 < len(p):
        return f"\\x{ord(p[i + 2].upper()) ^ 0x40:02x}", i + 3
    if c == "Q":
        j = p.find("\\E", i + 2)
        literal = p[i + 2 :] if j < 0 else p[i + 2 : j]
        return re.escape(literal), (len(p) if j < 0 else j + 2)
    if c == "E":
        return "", i + 2
    if c in _REJECT:
        raise RegexError(f"{_REJECT[c]} is not supported", i)
    if inClass:
        if c in _INSIDE:
            return _INSIDE[c], i + 2
        if c in "HVR":
            raise RegexError(f"\\{c} inside a character class is not supported", i)
        return p[i : i + 2], i + 2
    if c in _OUTSIDE:
        return _OUTSIDE[c], i + 2
    if c in "kg":
        m = re.compile(r"[kg](?:<(\w+)>|'(\w+)'|\{(-?\w+)\}|(-?\d+))").match(p, i + 1)
        if m is None:
            raise RegexError(f"malformed \\{c} reference", i)
        ref = next(g for g in m.groups() if g is not None)
        if c == "g" and (m.group(1) or m.group(2)) is not None:
            raise RegexError("subroutine calls are not supported", i)
        if c == "k" and m.group(4) is not None:
            raise RegexError("malformed \\k reference", i)
        if ref.lstrip("-").isdigit():
            if ref.startswith("-"):
                raise RegexError("relative back references are not supported", i)
            return f"(?:\\{int(ref)})", m.end()
        return f"(?P={ref})", m.end()
    return p[i : i + 2], i + 2


def translate(pattern: str, extended: bool = False) -> str:
    """
    Translate PCRE2 syntax to Python C{re} syntax (see the module
    docstring).

    @param extended: the C{extended} option (C{#} comments are copied as
        they are).
    @raise RegexError: for what C{re} cannot express.
    """
    p = pattern
    out: list[str] = []
    i = 0
    n = len(p)
    while i < n:
        c = p[i]
        if c == "#" and extended:
            j = p.find("\n", i)
            j = n if j < 0 else j
            out.append(p[i:j])
            i = j
        elif c == "\\":
            text, i = _escape(p, i, inClass=False)
            out.append(text)
        elif c == "[":
            text, i = _charClass(p, i)
            out.append(text)
        elif c == "(" and p.startswith("(*", i):
            raise RegexError("(*VERB) and (*OPTION) are not supported", i)
        elif c == "(" and p.startswith("(?", i):
            rest = p[i + 2 : i + 3]
            m = _NAME.match(p, i + 3)
            if rest == "<" and m is not None and p.startswith(">", m.end()):
                out.append(f"(?P<{m.group()}>")
                i = m.end() + 1
            elif rest == "'" and m is not None and p.startswith("'", m.end()):
                out.append(f"(?P<{m.group()}>")
                i = m.end() + 1
            elif rest == "|":
                raise RegexError("(?| branch reset is not supported", i)
            elif (
                rest in ("R", "&")
                or rest.isdigit()
                or rest in ("+", "-")
                and p[i + 3 : i + 4].isdigit()
            ):
                raise RegexError("recursion and subroutine calls are not supported", i)
            elif p.startswith("(?P>", i):
                raise RegexError("subroutine calls are not supported", i)
            else:
                out.append("(?")
                i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _endSensitive(pattern: str) -> bool:
    """
    Whether a match might depend on what follows it (conservative): C{$},
    C{\\b}, C{\\B}, C{\\Z}, lookahead.
    """
    return any(s in pattern for s in ("$", "\\b", "\\B", "\\Z", "(?=", "(?!"))


def compilePattern(pattern: str, options: tuple[str, ...] = ()) -> tuple[re.Pattern[bytes], bool]:
    """
    Compile a keepalived C{regex} with its C{regex_options}.

    @param pattern: as configured (decoded from UTF-8 with
        C{surrogateescape}, like the configuration).
    @return: the compiled bytes pattern and whether C{firstline} is set.
    @raise RegexError: when it cannot be compiled.
    """
    flags = 0
    for name in options:
        flags |= _FLAGS.get(name, 0)
    python = translate(pattern, "extended" in options)
    try:
        raw = python.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise RegexError("pattern is not encodable", e.start) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compiled = re.compile(raw, flags)
        except re.error as e:
            raise RegexError(str(e.msg), e.pos) from None
        except (OverflowError, RecursionError, ValueError) as e:
            raise RegexError(str(e)) from None
    return compiled, "firstline" in options


@dataclass(frozen=True, slots=True)
class RegexSpec:
    """
    One URL's compiled C{regex} and its options.

    @ivar pattern: the configured (PCRE2) pattern.
    @ivar options: the C{regex_options} words.
    @ivar noMatch: C{regex_no_match}: success when there is no match.
    @ivar minOffset: first body offset a match may start at.
    @ivar maxOffset: last body offset a match may start at (inclusive), or
        L{None}.
    @ivar window: the longest match guaranteed to be found (bytes).
    @ivar margin: lookbehind/lookahead context kept around matches (bytes).
    @raise RegexError: from the constructor, for a bad pattern.
    """

    pattern: str
    options: tuple[str, ...] = ()
    noMatch: bool = False
    minOffset: int = 0
    maxOffset: int | None = None
    window: int = DEFAULT_WINDOW
    margin: int = MARGIN
    compiled: re.Pattern[bytes] = field(init=False, repr=False, compare=False)
    firstline: bool = field(init=False, repr=False, compare=False)
    endSensitive: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.window < 1 or self.margin < 1 or self.margin >= self.window:
            raise ValueError("need 1 <= margin < window")
        if self.minOffset < 0 or (self.maxOffset is not None and self.maxOffset < self.minOffset):
            raise ValueError("need 0 <= minOffset <= maxOffset")
        compiled, firstline = compilePattern(self.pattern, self.options)
        object.__setattr__(self, "compiled", compiled)
        object.__setattr__(self, "firstline", firstline)
        object.__setattr__(self, "endSensitive", _endSensitive(compiled.pattern.decode("latin-1")))

    def matcher(self) -> RegexMatcher:
        return RegexMatcher(self)


class RegexMatcher:
    """
    Search one response body, fed in pieces, for a L{RegexSpec}'s pattern.

    Feed the body with L{feed}, then call L{finish}; L{passed} is the
    outcome (after C{regex_no_match}).

    @ivar matched: a match starting within the allowed offsets was found.
    @ivar matchStart: its body offset.
    @ivar done: the outcome is known; further bytes are ignored.
    """

    __slots__ = (
        "_base",
        "_buf",
        "_end",
        "_max",
        "_next",
        "_nl",
        "_searchedTo",
        "done",
        "matchStart",
        "matched",
        "spec",
    )

    def __init__(self, spec: RegexSpec) -> None:
        self.spec = spec
        self._buf = bytearray()
        self._base = 0  # body offset of _buf[0]
        self._next = spec.minOffset  # earliest start not yet ruled out
        self._end = 0  # body bytes fed
        self._searchedTo = 0
        self._max = spec.maxOffset
        self._nl: int | None = None
        self.matched = False
        self.matchStart: int | None = None
        self.done = False

    @property
    def passed(self) -> bool:
        return self.matched != self.spec.noMatch

    def feed(self, data: bytes) -> None:
        if self.done or not data:
            return
        spec = self.spec
        start = self._end
        end = self._end = start + len(data)
        if spec.firstline and self._nl is None and end > spec.minOffset:
            i = data.find(b"\n", max(0, spec.minOffset - start))
            if i >= 0:
                self._nl = start + i
                if self._max is None or self._nl < self._max:
                    self._max = self._nl
        if self._max is not None and self._next > self._max:
            self._stop(False)
            return
        keepFrom = self._next - spec.margin
        if end <= keepFrom:
            return
        buf = self._buf
        if buf:
            buf += data
        else:
            self._base = max(start, keepFrom)
            buf += data[self._base - start :] if self._base > start else data
        if end - self._searchedTo >= spec.window:
            self._search(False)

    def finish(self) -> None:
        """
        The body is complete: decide.
        """
        if not self.done:
            self._search(True)

    def _stop(self, matched: bool, start: int | None = None) -> None:
        self.done = True
        self.matched = matched
        self.matchStart = start
        self._buf = bytearray()

    def _search(self, final: bool) -> None:
        spec = self.spec
        end = self._end
        self._searchedTo = end
        limit = self._max
        if limit is not None and self._next > limit:
            self._stop(False)
            return
        buf = self._buf
        base = self._base
        search = spec.compiled.search
        trustAll = final or not spec.endSensitive
        horizon = end - spec.window  # starts below it have been seen with a full window
        pos = self._next - base
        tries = 16  # bound re-searches past untrusted (long, end-sensitive) matches
        while pos <= len(buf):
            m = search(buf, pos)
            if m is None:
                break
            s = base + m.start()
            if limit is not None and s > limit:
                break
            if trustAll or base + m.end() + spec.margin <= end:
                self._stop(True, s)
                return
            if s >= horizon or not tries:
                break
            tries -= 1
            pos = m.start() + 1
        if final or (limit is not None and limit < horizon):
            self._stop(False)
            return
        if horizon > self._next:
            self._next = horizon
        drop = self._next - spec.margin - base
        if drop > 0:
            del buf[:drop]
            self._base = base + drop
