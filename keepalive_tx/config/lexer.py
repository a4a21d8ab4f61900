"""
The PLY lexer for keepalived's configuration language (the steps of
keepalived's C{read_line()}, numbered in C{docs/keepalived-compat.md},
"Reading a configuration line").

keepalived is line oriented, so this lexer works on one line at a time. One
PLY lexer object, built once per process with C{optimize=False} (nothing is
ever written to disk), has four states, one per way keepalived looks at a
line:

  - C{INITIAL} (the I{raw} scan, step 2): C{"..."} strings, C{\\#} and
    C{\\!} escapes, C{#}/C{!} comments, braces, blanks and words. Used for
    comment stripping and brace splitting.
  - C{words} (general tokenising, step 11): blanks, C{"..."} strings and
    words; C{#}, C{!} and braces are ordinary characters by then.
  - C{escape}, C{escdq}, C{escsq} (script-style tokenising, both passes):
    outside quotes, inside C{"..."} and inside C{'...'}. Quotes may start or
    stop in the middle of a word and are removed; backslash escapes are
    decoded everywhere (see L{scriptWords}).

Whitespace is C's C{isspace()} in the C locale (space, tab, LF, VT, FF, CR),
never Unicode whitespace: configuration files are bytes (see
L{keepalive_tx.config.preprocess}).
"""

from __future__ import annotations

from dataclasses import dataclass

import ply.lex as lex

#: C isspace() in the C locale.
SPACE_CHARS = " \t\n\v\f\r"


@dataclass(frozen=True, slots=True)
class Token:
    """
    One lexeme of a configuration line.

    @ivar type: the PLY token type (C{QUOTED}, C{WORD}, ...).
    @ivar value: the matched text (quotes included for C{QUOTED}).
    @ivar pos: offset of the lexeme in the line.
    """

    type: str
    value: str
    pos: int


class _Rules:
    """
    PLY token rules. Function rules are tried in definition order.
    """

    states = (
        ("words", "exclusive"),
        ("escape", "exclusive"),
        ("escdq", "exclusive"),
        ("escsq", "exclusive"),
    )

    tokens = (
        "QUOTED",  # "..." (terminated)
        "OPENQUOTE",  # " without a closing quote: runs to end of line
        "DQ",  # " opening or closing a quote (script states)
        "SQ",  # ' opening or closing a quote (script states)
        "ESCAPED",  # \X (raw scan), \X escape sequences (script states)
        "CONTINUATION",  # backslash ending the line (raw scan)
        "COMMENT",  # # or ! to end of line
        "LBRACE",
        "RBRACE",
        "WS",
        "WORD",
    )

    # ---- INITIAL: raw scan for comments, quotes and braces --------------

    # Inside "..." a backslash protects the next character (so \" does not
    # close the string); outside, \X is kept as is except \# and \! (the
    # caller turns those into literal characters). A backslash ending the
    # line is CONTINUATION (multi-line definitions).

    def t_QUOTED(self, t):
        r'"(?:[^"\\]|\\[\s\S])*"'
        return t

    def t_OPENQUOTE(self, t):
        r'"(?:[^"\\]|\\[\s\S])*'
        return t

    def t_ESCAPED(self, t):
        r"\\[\s\S]"
        return t

    def t_CONTINUATION(self, t):
        r"\\"
        return t

    def t_COMMENT(self, t):
        r"[\#!][\s\S]*"
        return t

    def t_LBRACE(self, t):
        r"\{"
        return t

    def t_RBRACE(self, t):
        r"\}"
        return t

    def t_WS(self, t):
        r"[ \t\n\v\f\r]+"
        return t

    def t_WORD(self, t):
        r"[^ \t\n\v\f\r\"\#!{}\\]+"
        return t

    # ---- words: general tokenising --------------------------------------

    def t_words_QUOTED(self, t):
        r'"[^"]*"'
        return t

    def t_words_OPENQUOTE(self, t):
        r'"[^"]*'
        return t

    def t_words_WS(self, t):
        r"[ \t\n\v\f\r]+"
        return t

    def t_words_WORD(self, t):
        r'[^ \t\n\v\f\r"]+'
        return t

    # ---- escape / escdq / escsq: script-style tokenising ----------------
    # keepalived's quoted-and-escaped split: outside quotes blanks end a
    # word, " and ' open a quote; inside a quote only its closing quote and
    # backslashes are special. A backslash escape is decoded in all three
    # states: \xH... takes every hex digit that follows, \cC the next
    # character whatever it is (even a closing quote), \ooo one to three
    # octal digits; a lone backslash ending the text is an error.

    _ESC = r"\\(?:x[0-9a-fA-F]+|c[\s\S]|[0-7]{1,3}|[\s\S])?"

    @lex.TOKEN(_ESC)
    def t_escape_escdq_escsq_ESCAPED(self, t):
        return t

    def t_escape_DQ(self, t):
        r'"'
        t.lexer.begin("escdq")
        return t

    def t_escape_SQ(self, t):
        r"'"
        t.lexer.begin("escsq")
        return t

    def t_escape_WS(self, t):
        r"[ \t\n\v\f\r]+"
        return t

    def t_escape_WORD(self, t):
        r"[^ \t\n\v\f\r\"'\\]+"
        return t

    def t_escdq_DQ(self, t):
        r'"'
        t.lexer.begin("escape")
        return t

    def t_escdq_WORD(self, t):
        r'[^"\\]+'
        return t

    def t_escsq_SQ(self, t):
        r"'"
        t.lexer.begin("escape")
        return t

    def t_escsq_WORD(self, t):
        r"[^'\\]+"
        return t

    # Every character is matched by some rule above; these are for PLY's
    # validation and as a safety net (skip one character as a word).
    t_ignore = ""
    t_words_ignore = ""
    t_escape_ignore = ""
    t_escdq_ignore = ""
    t_escsq_ignore = ""

    def t_ANY_error(self, t):
        t.type = "WORD"
        t.value = t.value[0]
        t.lexer.skip(1)
        return t


_LEXER: lex.Lexer | None = None


def _lexer() -> lex.Lexer:
    """
    The process-wide PLY lexer (built on first use, never written to disk).
    """
    global _LEXER
    if _LEXER is None:
        _LEXER = lex.lex(
            module=_Rules(), optimize=False, errorlog=lex.NullLogger(), debug=False
        )
    return _LEXER


def lexLine(text: str, state: str = "INITIAL") -> list[Token]:
    """
    Run the PLY lexer over one line.

    @param text: the line (no newline needed).
    @param state: the lexer state (C{INITIAL}, C{words}, C{escape}).
    @return: the tokens, in order.
    """
    lexer = _lexer()
    lexer.begin(state)
    lexer.input(text)
    out: list[Token] = []
    try:
        while True:
            tok = lexer.token()
            if tok is None:
                return out
            out.append(Token(tok.type, tok.value, tok.lexpos))
    finally:
        lexer.begin("INITIAL")


def rawTokens(text: str) -> list[Token]:
    """
    The raw scan of a physical line (step 2): strings, escapes,
    comments, braces, blanks and words.
    """
    return lexLine(text, "INITIAL")


def tokenizeChecked(text: str) -> tuple[tuple[str, ...], bool]:
    """
    General tokenising (step 11), also reporting an unmatched quote.

    @return: the tokens and whether an unmatched C{"} was found (the tokens
        before it are kept, as keepalived does).
    """
    out: list[str] = []
    for tok in lexLine(text, "words"):
        kind = tok.type
        if kind == "WORD":
            out.append(tok.value)
        elif kind == "QUOTED":
            out.append(tok.value[1:-1])
        elif kind == "OPENQUOTE":
            return tuple(out), True
    return tuple(out), False


def tokenize(text: str) -> tuple[str, ...]:
    """
    General tokenising (step 11): split on whitespace; a token
    beginning with C{"} extends to the next C{"} and the quotes are dropped
    (no escapes, no single quotes). An unmatched C{"} ends the line.
    """
    return tokenizeChecked(text)[0]


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def _unescape(seq: str) -> str:
    """
    Decode one backslash escape of byte text (C{\\n}, C{\\033}, C{\\x1b},
    C{\\cA}, C{\\C}); numeric values keep their low 8 bits, as a C C{char}.
    """
    body = seq[1:]
    if not body:
        return ""  # lone trailing backslash
    first = body[0]
    if first in "01234567":
        return chr(int(body, 8) & 0xFF)
    if first == "x" and len(body) > 1:
        return chr(int(body[1:], 16) & 0xFF)
    if first == "c" and len(body) == 2:
        return chr(ord(body[1]) & 0x1F)
    return _SIMPLE_ESCAPES.get(first, first)


def _asBytes(text: str) -> str:
    """
    C{text} as one character per byte of the file (latin-1), so that
    escapes such as C{\\cC} and C{\\xHH} act on bytes as keepalived's do.
    """
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _fromBytes(text: str) -> str:
    """
    The inverse of L{_asBytes}: back to the configuration's
    C{surrogateescape} text (undecodable bytes survive the round trip).
    """
    return text.encode("latin-1").decode("utf-8", "surrogateescape")


def quotedEscapedWords(text: str) -> tuple[list[str], str | None]:
    """
    keepalived's quoted-and-escaped split of C{text}, one pass of script
    tokenising (the C{escape} lexer states):

      - blanks outside quotes separate words;
      - C{"} and C{'} open a quote anywhere in a word, which the same
        character closes; the quotes are removed and the word goes on, so
        C{"/opt/a.sh"zz} is the single word C{/opt/a.shzz};
      - backslash escapes are decoded inside and outside quotes: C{\\a \\b
        \\E \\f \\n \\r \\t \\v}, C{\\xH...} (all the hex digits that follow),
        C{\\cC} (control character, C{C} may be a quote), C{\\ooo} (one to
        three octal digits), C{\\C} for any other C{C}; numeric values keep
        their low 8 bits;
      - a decoded NUL ends its word (C strings): C{a\\0b} is C{a};
      - an unclosed quote is an error when text follows it without a
        further escape (C{"abc}), not when the text ends right after the
        quote or after an escape; a backslash ending the text is an error.

    @return: the words and L{None}, or C{[]} and keepalived's message.
    """
    words: list[str] = []
    current: list[str] | None = None
    quote: str | None = None
    last = ""
    for tok in lexLine(_asBytes(text), "escape"):
        kind = tok.type
        if kind == "WS":
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if current is None:
            current = []
        if kind == "ESCAPED":
            if tok.value == "\\":
                return [], f"Missing escape char at end: '{text}'"
            current.append(_unescape(tok.value))
        elif kind in ("DQ", "SQ"):
            quote = None if quote else tok.value
        else:
            current.append(tok.value)
        last = kind
    if quote is not None and last == "WORD":
        return [], f"String '{text}': missing terminating {quote}"
    if current is not None:
        words.append("".join(current))
    return [_fromBytes(w.partition("\x00")[0]) for w in words], None


def _shellWords(text: str, state: str = "escape") -> tuple[list[str], str | None]:
    """
    L{quotedEscapedWords} (kept for callers of the former name; C{state}
    must be C{"escape"}).
    """
    if state != "escape":
        raise ValueError(f"no script lexer state {state!r}")
    return quotedEscapedWords(text)


def scriptWordsChecked(
    text: str, start: int = 0
) -> tuple[list[str], str | None, str | None]:
    """
    L{scriptWords}, also returning an error message.

    @param start: how many pass-1 words come before the command (1 when
        C{text} is the whole line, keyword included).
    @return: C{(argv, "user[:group]" or None, error or None)}. When there is
        an error (unterminated quote, trailing backslash) keepalived cannot
        use the command and argv is empty.
    """
    slots, error = quotedEscapedWords(text)
    if error is not None:
        return [], None, error
    slots = slots[start:]
    if not slots:
        return [], None, None
    argv, error = quotedEscapedWords(slots[0])
    if error is not None:
        return [], None, error
    user: str | None
    if len(slots) < 2:
        user = None
    elif len(slots) == 2:
        user = slots[1]
    else:
        user = f"{slots[1]}:{slots[2]}"
    return argv, user, None


def scriptWords(text: str) -> tuple[list[str], str | None]:
    """
    Script-style tokenising (docs/keepalived-compat.md) of the text after a keyword such
    as C{notify_master}: two passes of L{quotedEscapedWords}.

    Pass 1 splits C{text}; its first word is the command, split again by
    pass 2 into argv (quotes and escapes are processed in both passes, so
    C{"/bin/x a\\ b"} gives C{/bin/x}, C{a}, C{b}, and C{"/bin/x \\\\x41"} gives
    C{/bin/x}, C{A}). The second and third pass-1 words are the user and
    the group, returned as C{"user"} or C{"user:group"}; further words are
    ignored.

    C{scriptWords('"/bin/x.sh a \\'b c\\'" nobody')} is
    C{(["/bin/x.sh", "a", "b c"], "nobody")}.

    @return: C{(argv, "user[:group]" or None)}; argv is empty for blank text
        or an unusable command (see L{scriptWordsChecked}).
    """
    argv, user, _ = scriptWordsChecked(text)
    return argv, user
