"""
The PLY lexer for keepalived's configuration language (catalogue §1.2).

keepalived is line oriented, so this lexer works on one line at a time. One
PLY lexer object, built once per process with C{optimize=False} (nothing is
ever written to disk), has four states, one per way keepalived looks at a
line:

  - C{INITIAL} (the I{raw} scan, §1.2 step 2): C{"..."} strings, C{\\#} and
    C{\\!} escapes, C{#}/C{!} comments, braces, blanks and words. Used for
    comment stripping and brace splitting.
  - C{words} (general tokenising, §1.2 step 11): blanks, C{"..."} strings and
    words; C{#}, C{!} and braces are ordinary characters by then.
  - C{shell} (script-style pass 1, §1.2 step 12): C{'...'} and C{"..."} quote
    and may start or stop in the middle of a word.
  - C{escape} (script-style pass 2): as C{shell}, plus backslash escapes.

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
        ("shell", "exclusive"),
        ("escape", "exclusive"),
    )

    tokens = (
        "QUOTED",  # "..." (terminated)
        "OPENQUOTE",  # " without a closing quote: runs to end of line
        "SQUOTED",  # '...' (shell states)
        "OPENSQUOTE",  # ' without a closing quote
        "ESCAPED",  # \X (raw scan), \X escape sequences (escape state)
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

    # ---- shell: script pass 1 (quotes removed, backslashes kept) --------

    def t_shell_QUOTED(self, t):
        r'"(?:[^"\\]|\\[\s\S])*"'
        return t

    def t_shell_OPENQUOTE(self, t):
        r'"(?:[^"\\]|\\[\s\S])*\\?'
        return t

    def t_shell_SQUOTED(self, t):
        r"'[^']*'"
        return t

    def t_shell_OPENSQUOTE(self, t):
        r"'[^']*"
        return t

    def t_shell_WS(self, t):
        r"[ \t\n\v\f\r]+"
        return t

    def t_shell_WORD(self, t):
        r"(?:[^ \t\n\v\f\r\"'\\]|\\[\s\S])+|\\"
        return t

    # ---- escape: script pass 2 (quotes and escapes processed) -----------

    def t_escape_ESCAPED(self, t):
        r"\\(?:[0-7]{1,3}|x[0-9a-fA-F]{1,2}|c[\s\S]|[\s\S])?"
        return t

    def t_escape_QUOTED(self, t):
        r'"(?:[^"\\]|\\[\s\S])*"'
        return t

    def t_escape_OPENQUOTE(self, t):
        r'"(?:[^"\\]|\\[\s\S])*\\?'
        return t

    def t_escape_SQUOTED(self, t):
        r"'(?:[^'\\]|\\[\s\S])*'"
        return t

    def t_escape_OPENSQUOTE(self, t):
        r"'(?:[^'\\]|\\[\s\S])*\\?"
        return t

    def t_escape_WS(self, t):
        r"[ \t\n\v\f\r]+"
        return t

    def t_escape_WORD(self, t):
        r"[^ \t\n\v\f\r\"'\\]+"
        return t

    # Every character is matched by some rule above; these are for PLY's
    # validation and as a safety net (skip one character as a word).
    t_ignore = ""
    t_words_ignore = ""
    t_shell_ignore = ""
    t_escape_ignore = ""

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
    @param state: the lexer state (C{INITIAL}, C{words}, C{shell}, C{escape}).
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
    The raw scan of a physical line (§1.2 step 2): strings, escapes,
    comments, braces, blanks and words.
    """
    return lexLine(text, "INITIAL")


def tokenizeChecked(text: str) -> tuple[tuple[str, ...], bool]:
    """
    General tokenising (§1.2 step 11), also reporting an unmatched quote.

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
    General tokenising (§1.2 step 11): split on whitespace; a token
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
    Decode one backslash escape (C{\\n}, C{\\033}, C{\\x1b}, C{\\cA}, C{\\C}).
    """
    body = seq[1:]
    if not body:
        return ""  # lone trailing backslash
    first = body[0]
    if first in "01234567":
        return chr(int(body, 8) & 0xFF)
    if first == "x" and len(body) > 1:
        return chr(int(body[1:], 16))
    if first == "c" and len(body) == 2:
        return chr(ord(body[1]) & 0x1F)
    return _SIMPLE_ESCAPES.get(first, first)


def _decodeEscapes(text: str) -> str:
    """
    Decode the backslash escapes in C{text} (the inside of a quoted string
    in pass 2 of script tokenising).
    """
    out: list[str] = []
    for tok in lexLine(text, "escape"):
        if tok.type == "ESCAPED":
            out.append(_unescape(tok.value))
        else:
            out.append(tok.value)
    return "".join(out)


def _shellWords(text: str, state: str) -> tuple[list[str], str | None]:
    """
    Split C{text} shell-like: quotes start/stop anywhere in a word and are
    removed. In the C{escape} state backslash sequences are decoded too
    (also inside quotes).

    @return: the words and an error message (unterminated quote or a
        trailing backslash in the C{escape} state), or C{None}.
    """
    words: list[str] = []
    current: list[str] | None = None
    error: str | None = None
    escape = state == "escape"
    for tok in lexLine(text, state):
        kind = tok.type
        if kind == "WS":
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if current is None:
            current = []
        value = tok.value
        if kind == "WORD":
            current.append(value)
        elif kind == "ESCAPED":
            if value == "\\":
                error = f"Missing escape char at end: '{text}'"
            current.append(_unescape(value))
        elif kind in ("QUOTED", "SQUOTED"):
            inner = value[1:-1]
            current.append(_decodeEscapes(inner) if escape else inner)
        else:  # OPENQUOTE / OPENSQUOTE: runs to the end of the text
            error = f"String '{text}': missing terminating {value[0]}"
            inner = value[1:]
            current.append(_decodeEscapes(inner) if escape else inner)
    if current is not None:
        words.append("".join(current))
    return words, error


def scriptWordsChecked(text: str) -> tuple[list[str], str | None, str | None]:
    """
    L{scriptWords}, also returning an error message.

    @return: C{(argv, "user[:group]" or None, error or None)}. When there is
        an error (unterminated quote, trailing backslash) keepalived cannot
        use the command and argv is empty.
    """
    words, error = _shellWords(text, "shell")
    if error is not None:
        return [], None, error
    if not words:
        return [], None, None
    argv, error = _shellWords(words[0], "escape")
    if error is not None:
        return [], None, error
    rest = words[1:]
    user: str | None
    if not rest:
        user = None
    elif any(":" in word for word in rest):
        user = "".join(rest)  # "u:g", "u :g", "u: g", "u : g"
    else:
        user = ":".join(rest)  # "u g"
    return argv, user, None


def scriptWords(text: str) -> tuple[list[str], str | None]:
    """
    Script-style tokenising (§1.2 step 12) of the text after a keyword such
    as C{notify_master}.

    Pass 1 splits C{text} shell-like (both quote kinds, quotes may start or
    stop mid-word and are removed, backslashes kept). Its first word is the
    command, split again (pass 2) with quotes and escapes processed
    (C{\\a \\b \\E \\f \\n \\r \\t \\v}, C{\\nnn} octal, C{\\xXX} hex,
    C{\\cC} control, C{\\C} literal) into argv. Further pass-1 words are
    C{user [:][group]}, returned joined as C{"user:group"}.

    C{scriptWords('"/bin/x.sh a \\'b c\\'" nobody')} is
    C{(["/bin/x.sh", "a", "b c"], "nobody")}.

    @return: C{(argv, "user[:group]" or None)}; argv is empty for blank text
        or an unusable command (see L{scriptWordsChecked}).
    """
    argv, user, _ = scriptWordsChecked(text)
    return argv, user
