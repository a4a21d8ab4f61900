"""
Tests for L{keepalive_tx.config.lexer}: the PLY lexer states, general and
script-style tokenising (catalogue §1.2 steps 2, 11, 12).
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
    General tokenising (§1.2 step 11).
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
    Script-style tokenising (§1.2 step 12).
    """

    def test_catalogueExample(self) -> None:
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
        self.assertEqual(scriptWords('"/x" u:g')[1], "u:g")
        self.assertEqual(scriptWords('"/x" u g')[1], "u:g")
        self.assertEqual(scriptWords('"/x" u :g')[1], "u:g")
        self.assertEqual(scriptWords('"/x" u : g')[1], "u:g")
        self.assertEqual(scriptWords('"/x" u')[1], "u")

    def test_escapes(self) -> None:
        argv, user = scriptWords(r'"/bin/p \a\b\E\f\n\r\t\v \101\0 \x41\x4a \cA \q\\ \""')
        self.assertEqual(argv, ["/bin/p", "\a\b\x1b\f\n\r\t\v", "A\x00", "AJ", "\x01", "q\\", '"'])
        self.assertIsNone(user)

    def test_escapesInsideSingleQuotes(self) -> None:
        self.assertEqual(scriptWords("\"/p 'a\\tb'\"")[0], ["/p", "a\tb"])

    def test_backslashKeptInPassOne(self) -> None:
        """
        Pass 1 keeps backslashes, so an escaped space in the unquoted
        command is decoded by pass 2 (which sees the same word).
        """
        self.assertEqual(scriptWords(r"/bin/a\tb")[0], ["/bin/a\tb"])

    def test_unterminatedQuote(self) -> None:
        self.assertEqual(
            scriptWordsChecked('"/bin/x'), ([], None, "String '\"/bin/x': missing terminating \"")
        )
        self.assertEqual(scriptWords('"/bin/x \'a"'), ([], None))

    def test_trailingBackslash(self) -> None:
        argv, user, error = scriptWordsChecked('"/bin/x\\\\"')
        self.assertEqual(argv, ["/bin/x\\"])
        self.assertIsNone(error)
        self.assertEqual(scriptWordsChecked("/bin/x\\")[0], [])
        self.assertIn("Missing escape char", scriptWordsChecked("/bin/x\\")[2])

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
