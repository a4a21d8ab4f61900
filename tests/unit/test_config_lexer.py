"""
Tests for L{keepalive_tx.config.lexer}: the PLY lexer states, general and
script-style tokenising (steps 2, 11 and 12 of docs/keepalived-compat.md,
"Reading a configuration line").
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import lexer
from keepalive_tx.config.lexer import rawTokens, scriptWords, scriptWordsChecked, tokenize


class RawScanTests(SynchronousTestCase):
    """
    The C{INITIAL} state used for comment stripping.
    """

    def types(self, text: str) -> list[tuple[str, str]]:
        return [(t.type, t.value) for t in rawTokens(text)]

    def test_wordsQuotesComments(self) -> None:
        self.assertEqual(
            self.types('a "b # c" # d'),
            [
                ("WORD", "a"),
                ("WS", " "),
                ("QUOTED", '"b # c"'),
                ("WS", " "),
                ("COMMENT", "# d"),
            ],
        )

    def test_escapes(self) -> None:
        self.assertEqual(
            self.types(r"a\#b\!\x"),
            [
                ("WORD", "a"),
                ("ESCAPED", r"\#"),
                ("WORD", "b"),
                ("ESCAPED", r"\!"),
                ("ESCAPED", r"\x"),
            ],
        )

    def test_continuation(self) -> None:
        self.assertEqual(self.types("a \\"), [("WORD", "a"), ("WS", " "), ("CONTINUATION", "\\")])

    def test_quotedBackslashQuote(self) -> None:
        """
        Inside C{"..."} a backslash protects the next character.
        """
        self.assertEqual(self.types(r'"a\"b"'), [("QUOTED", r'"a\"b"')])

    def test_openQuote(self) -> None:
        self.assertEqual(
            self.types('x "ab # c'), [("WORD", "x"), ("WS", " "), ("OPENQUOTE", '"ab # c')]
        )

    def test_braces(self) -> None:
        self.assertEqual([t.type for t in rawTokens("a{b}")], ["WORD", "LBRACE", "WORD", "RBRACE"])

    def test_positions(self) -> None:
        self.assertEqual([t.pos for t in rawTokens('ab  "c"')], [0, 2, 4])


class TokenizeTests(SynchronousTestCase):
    """
    General tokenising (step 11).
    """

    def test_whitespace(self) -> None:
        self.assertEqual(tokenize(" a\tb \f c\v\r"), ("a", "b", "c"))

    def test_quotedWord(self) -> None:
        self.assertEqual(tokenize('smtp_server "a b" c'), ("smtp_server", "a b", "c"))

    def test_emptyQuoted(self) -> None:
        self.assertEqual(tokenize('a ""'), ("a", ""))

    def test_noSingleQuotes(self) -> None:
        self.assertEqual(tokenize("a 'b c'"), ("a", "'b", "c'"))

    def test_quoteInsideWordSplits(self) -> None:
        """
        A word stops at a C{"}, which then starts a quoted token.
        """
        self.assertEqual(tokenize('ab"c d"e'), ("ab", "c d", "e"))

    def test_commentCharactersAreOrdinary(self) -> None:
        self.assertEqual(tokenize("a#b !c {"), ("a#b", "!c", "{"))

    def test_unmatchedQuoteEndsLine(self) -> None:
        self.assertEqual(tokenize('a "b c'), ("a",))
        self.assertEqual(lexer.tokenizeChecked('a "b c'), (("a",), True))
        self.assertEqual(lexer.tokenizeChecked('a "b" c'), (("a", "b", "c"), False))

    def test_nonAsciiWhitespaceIsNotSpace(self) -> None:
        """
        Only C's isspace() separates words: NBSP and surrogate-escaped bytes
        stay inside a word.
        """
        self.assertEqual(tokenize("a\xa0b \udcff\x1cc"), ("a\xa0b", "\udcff\x1cc"))

    def test_empty(self) -> None:
        self.assertEqual(tokenize(""), ())
        self.assertEqual(tokenize("   "), ())


class ScriptWordsTests(SynchronousTestCase):
    """
    Script-style tokenising (step 12).
    """

    def test_notifyExample(self) -> None:
        self.assertEqual(
            scriptWords("\"/bin/x.sh a 'b c'\" nobody"), (["/bin/x.sh", "a", "b c"], "nobody")
        )

    def test_unquotedCommand(self) -> None:
        self.assertEqual(scriptWords("/bin/true"), (["/bin/true"], None))

    def test_quotesMidWord(self) -> None:
        """
        Pass 1 joins C{abcd" efg "h} into one word (the command), which pass
        2 splits again into argv.
        """
        self.assertEqual(scriptWords("'abcd\" efg \"h' u"), (["abcd efg h"], "u"))
        self.assertEqual(scriptWords('abcd" efg "h'), (["abcd", "efg", "h"], None))

    def test_userGroup(self) -> None:
        """
        The second and third pass-1 words are the user and the group; more
        words are ignored (keepalived 2.2.7 looks up C{u:g} as a user name,
        and C{:g} as a group name).
        """
        self.assertEqual(scriptWords('"/x" u g')[1], "u:g")
        self.assertEqual(scriptWords('"/x" u')[1], "u")
        self.assertEqual(scriptWords('"/x" u g extra')[1], "u:g")
        self.assertEqual(scriptWords('"/x" u :g')[1], "u::g")
        self.assertEqual(scriptWords('"/x" u:g')[1], "u:g")
        self.assertEqual(scriptWords('"/x" "u" \'g\'')[1], "u:g")
        # an unquoted command with arguments: the arguments are user, group
        self.assertEqual(scriptWords("/bin/x.sh arg1 arg2"), (["/bin/x.sh"], "arg1:arg2"))

    def test_quotedPrefixJoinsWord(self) -> None:
        """
        A quoted string followed directly by more characters is one word,
        in both passes (keepalived runs C{/opt/a.shzz}).
        """
        self.assertEqual(scriptWords('"/opt/a.sh"zz'), (["/opt/a.shzz"], None))
        self.assertEqual(scriptWords('"/opt/a.sh"zz u'), (["/opt/a.shzz"], "u"))
        self.assertEqual(scriptWords("'/opt/a b'c"), (["/opt/a", "bc"], None))
        self.assertEqual(scriptWords('"/bin/x \'a\'\'b\' c\\"d\\"e"'), (["/bin/x", "ab", "cde"], None))

    def test_escapes(self) -> None:
        argv, user = scriptWords(r'"/bin/p \a\b\E \101\1012 \x41\x4a \cA \q\\\\ \\\""')
        self.assertEqual(argv, ["/bin/p", "\a\b\x1b", "AA2", "AJ", "\x01", "q\\", '"'])
        self.assertIsNone(user)

    def test_escapesDecodedInPassOne(self) -> None:
        """
        Pass 1 decodes escapes too (keepalived 2.2.7 runs the same split
        twice): an escaped blank in the command separates arguments in pass
        2, a doubled backslash reaches pass 2 as an escape, an escaped quote
        is a quote for pass 2.
        """
        self.assertEqual(scriptWords(r'"/bin/x a\ b"')[0], ["/bin/x", "a", "b"])
        self.assertEqual(scriptWords(r"/bin/x\ arg")[0], ["/bin/x", "arg"])
        self.assertEqual(scriptWords(r"/bin/a\tb")[0], ["/bin/a", "b"])
        self.assertEqual(scriptWords(r'"/bin/x \\x41"')[0], ["/bin/x", "A"])
        self.assertEqual(scriptWords(r'"/bin/x \"q r\""')[0], ["/bin/x", "q r"])
        self.assertEqual(scriptWords(r'"/bin/x \\\\ \\ab"')[0], ["/bin/x", "\\", "\ab"])

    def test_escapesInsideSingleQuotes(self) -> None:
        self.assertEqual(scriptWords("\"/p 'a\\tb'\"")[0], ["/p", "a\tb"])

    def test_hexTakesEveryDigit(self) -> None:
        """
        C{\\x} takes all the hex digits that follow and keeps the low 8 bits;
        C{\\x} without a digit is C{x}; octal takes at most three digits.
        """
        self.assertEqual(scriptWords(r'"/bin/x \x414"')[0], ["/bin/x", "\x14"])
        self.assertEqual(scriptWords(r'"/bin/x \x4a\x4A"')[0], ["/bin/x", "JJ"])
        self.assertEqual(scriptWords(r'"/bin/x \x"')[0], ["/bin/x", "x"])
        self.assertEqual(scriptWords(r'"/bin/x \1012"')[0], ["/bin/x", "A2"])

    def test_controlEscapeTakesQuote(self) -> None:
        """
        C{\\cC} takes the next character even when it is the closing quote
        (C{"\\c"} is control-B, and the quote left open at the very end is
        not an error); C{\\c} ending the text is C{c}.
        """
        self.assertEqual(scriptWordsChecked(r'"/bin/x \c"'), (["/bin/x", "\x02"], None, None))
        self.assertEqual(scriptWords(r'"/bin/x \cab"')[0], ["/bin/x", "\x01b"])
        self.assertEqual(scriptWordsChecked(r'"/bin/x \c'), (["/bin/x", "c"], None, None))

    def test_nulEndsTheWord(self) -> None:
        """
        A decoded NUL ends the word (a C string): in pass 1 the whole
        command is cut there.
        """
        self.assertEqual(scriptWords(r'"/bin/x a\0b c"')[0], ["/bin/x", "a"])
        self.assertEqual(scriptWords(r"'/bin/x a' u\0v")[1], "u")

    def test_bytes(self) -> None:
        """
        Escapes act on the file's bytes: C{\\xe9} is the byte 0xE9, which
        reaches exec unchanged (surrogateescape).
        """
        argv = scriptWords(r'"/bin/x \xe9"')[0]
        self.assertEqual(argv[1].encode("utf-8", "surrogateescape"), b"\xe9")
        self.assertEqual(scriptWords('"/bin/x \u00e9"')[0], ["/bin/x", "\u00e9"])

    def test_emptyWord(self) -> None:
        self.assertEqual(scriptWords("\"/bin/x ''\"")[0], ["/bin/x", ""])

    def test_unterminatedQuote(self) -> None:
        self.assertEqual(
            scriptWordsChecked('"/bin/x'), ([], None, "String '\"/bin/x': missing terminating \"")
        )
        self.assertEqual(scriptWords('"/bin/x \'a"'), ([], None))
        self.assertEqual(
            scriptWordsChecked(r"'/bin/x \'y'"),
            ([], None, "String '/bin/x 'y': missing terminating '"),
        )
        # a quote opened at the very end is not an error
        self.assertEqual(scriptWordsChecked('/bin/x"'), (["/bin/x"], None, None))

    def test_trailingBackslash(self) -> None:
        self.assertEqual(scriptWordsChecked('"/bin/x\\\\\\\\"'), (["/bin/x\\"], None, None))
        argv, user, error = scriptWordsChecked('"/bin/x\\\\"')
        self.assertEqual(argv, [])
        self.assertIn("Missing escape char at end", error)
        self.assertEqual(scriptWordsChecked("/bin/x\\")[0], [])
        self.assertIn("Missing escape char", scriptWordsChecked("/bin/x\\")[2])

    def test_wholeLine(self) -> None:
        """
        With C{start}, pass 1 runs over the whole line and the command is
        the word after the keyword.
        """
        self.assertEqual(
            scriptWordsChecked('notify_master "/bin/x a" u g', start=1), (["/bin/x", "a"], "u:g", None)
        )

    def test_blank(self) -> None:
        self.assertEqual(scriptWords(""), ([], None))
        self.assertEqual(scriptWords("  "), ([], None))


class BuildTests(SynchronousTestCase):
    """
    The lexer is built once, with no table files.
    """

    def test_builtOnce(self) -> None:
        tokenize("a")
        first = lexer._lexer()
        tokenize("b")
        self.assertIs(lexer._lexer(), first)

    def test_noTableFiles(self) -> None:
        """
        Building and using the lexer in a fresh process writes no
        lextab.py/parsetab.py/parser.out, neither in the cwd nor in the
        package.
        """
        import tempfile

        package = os.path.dirname(os.path.dirname(lexer.__file__))
        root = os.path.dirname(package)

        def tables() -> set[str]:
            found = set()
            for top in (package, cwd):
                for dirpath, _, files in os.walk(top):
                    for name in files:
                        if name in ("lextab.py", "parsetab.py", "parser.out"):
                            found.add(os.path.join(dirpath, name))
            return found

        cwd = tempfile.mkdtemp()
        before = tables()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from keepalive_tx.config.lexer import tokenize, rawTokens, scriptWords;"
                "tokenize('a \"b\"'); rawTokens('x # y'); scriptWords('\"/x a\"')",
            ],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": root},
            check=True,
        )
        self.assertEqual(tables(), before)
        self.assertEqual(os.listdir(cwd), [])
