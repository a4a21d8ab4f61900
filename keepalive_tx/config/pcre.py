# -*- test-case-name: tests.unit.test_check_http_regex -*-
"""
keepalived's C{regex} patterns (HTTP_GET / SSL_GET C{url}) and their
C{regex_options}, checked and compiled to Python's C{re}, pure (no I/O).

The configuration reports a pattern that cannot be compiled, and the
checker (L{keepalive_tx.check.httpregex}) matches with what
L{compilePattern} returns.

Patterns are PCRE2 syntax, translated (L{translate}) to Python's C{re}
syntax for the common differences: POSIX classes C{[[:digit:]]}, C{\\Q...\\E},
C{\\x{{hh}}}, C{\\o{{ooo}}}, C{\\e}, C{\\h \\H \\v \\V \\R}, C{\\z \\Z},
C{(?<name>...)} / C{(?'name'...)}, C{\\k<name>} / C{\\k{{name}}} /
C{\\g{{name}}} / C{\\gN}.  Constructs C{re} cannot express (C{\\K}, C{\\G},
C{\\p}, C{\\X}, recursion, C{(*VERB)}, C{(?|...)}, ...) are errors.  Matching
is bytewise (no UTF mode).  C{regex_stack} (the PCRE2 JIT stack) has no
equivalent and no effect.  C{re} has no match limit: a pattern with
catastrophic backtracking costs CPU per check, bounded by the checker's window.
"""

from __future__ import annotations

import re
import warnings

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
