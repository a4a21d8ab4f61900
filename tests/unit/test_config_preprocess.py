"""
Tests for L{keepalive_tx.config.preprocess}: keepalived's configuration
language up to logical lines (docs/keepalived-compat.md, "Reading a
configuration line"; C{-i}/C{-e}).
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config.errors import Diagnostics, Location, Severity
from keepalive_tx.config.lexer import tokenize
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.preprocess import (
    defaultConfigId,
    preprocessFile,
    preprocessText,
)

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "keepalived-samples")


def run(text: str, configId: str | None = "main", **kw):
    diagnostics = Diagnostics()
    lines = preprocessText(text, "k.conf", diagnostics, configId, **kw)
    return lines, diagnostics


def texts(text: str, **kw) -> list[str]:
    lines, diagnostics = run(text, **kw)
    return [line.text for line in lines]


def messages(diagnostics: Diagnostics) -> list[str]:
    return [str(d) for d in diagnostics]


class BasicTests(SynchronousTestCase):
    """
    Comments, quoting, brace splitting, tokens and locations.
    """

    def test_braceSplitting(self) -> None:
        lines, diagnostics = run("vrrp_instance VI_1 { state MASTER }\n")
        self.assertEqual(
            lines,
            [
                LogicalLine(Location("k.conf", 1), "vrrp_instance VI_1", ("vrrp_instance", "VI_1")),
                LogicalLine(Location("k.conf", 1), "{", ("{",)),
                LogicalLine(Location("k.conf", 1), "state MASTER", ("state", "MASTER")),
                LogicalLine(Location("k.conf", 1), "}", ("}",)),
            ],
        )
        self.assertEqual(list(diagnostics), [])
        self.assertTrue(lines[1].isOpen)
        self.assertTrue(lines[3].isClose)

    def test_locations(self) -> None:
        lines, _ = run("a\n\n  b {\n}\n")
        self.assertEqual(
            [(ln.location.line, ln.text) for ln in lines], [(1, "a"), (3, "b"), (3, "{"), (4, "}")]
        )

    def test_comments(self) -> None:
        self.assertEqual(
            texts("! whole line\n# whole\na b # c\nd ! e\nx#y\n   \n\t\n"), ["a b", "d", "x"]
        )

    def test_commentInQuotes(self) -> None:
        lines, diagnostics = run('smtp "a # b ! c" # real\n')
        self.assertEqual(lines[0].tokens, ("smtp", "a # b ! c"))
        self.assertEqual(lines[0].text, 'smtp "a # b ! c"')

    def test_escapedCommentCharacters(self) -> None:
        lines, _ = run("a \\#b \\!c # gone\n")
        self.assertEqual(lines[0].tokens, ("a", "#b", "!c"))

    def test_escapedHashSurvivesSubstitution(self) -> None:
        lines, _ = run("$X=1\na \\# $X\n")
        self.assertEqual(lines[0].tokens, ("a", "#", "1"))

    def test_hashAndBang(self) -> None:
        lines, _ = run("a ${_HASH}1 ${_BANG}2 # c\n")
        self.assertEqual(lines[0].tokens, ("a", "#1", "!2"))

    def test_bracesInQuotesDoNotSplit(self) -> None:
        lines, _ = run('notify "/bin/x {a}" {\n')
        self.assertEqual([ln.tokens for ln in lines], [("notify", "/bin/x {a}"), ("{",)])

    def test_singleQuotesDoNotProtectBraces(self) -> None:
        self.assertEqual(texts("a 'b { c'\n"), ["a 'b", "{", "c'"])

    def test_extraCloseBracePassedThrough(self) -> None:
        lines, diagnostics = run("}}\n")
        self.assertEqual([ln.text for ln in lines], ["}", "}"])
        self.assertEqual(list(diagnostics), [])

    def test_braceLines(self) -> None:
        self.assertEqual(texts("a {b} c\n"), ["a", "{", "b", "}", "c"])
        self.assertEqual(texts("{ {\n"), ["{", "{"])

    def test_whitespace(self) -> None:
        lines, _ = run("\t  a\t b  \t\r\n")
        self.assertEqual(lines, [LogicalLine(Location("k.conf", 1), "a\t b", ("a", "b"))])

    def test_crlf(self) -> None:
        lines, _ = run("a\r\nb {\r\n}\r\n")
        self.assertEqual([ln.text for ln in lines], ["a", "b", "{", "}"])

    def test_noFinalNewline(self) -> None:
        self.assertEqual(texts("a\nb"), ["a", "b"])

    def test_unterminatedQuote(self) -> None:
        lines, diagnostics = run('x\ny "oops\n')
        self.assertEqual(
            messages(diagnostics),
            [
                "k.conf:2: Unterminated quote 'y \"oops'",
                "k.conf:2: Unmatched quote: 'y \"oops'",
            ],
        )
        self.assertEqual(lines[1].tokens, ("y",))
        self.assertEqual({d.severity for d in diagnostics}, {Severity.ERROR})

    def test_embeddedNul(self) -> None:
        lines, diagnostics = run("a\nb\x00c\nd\n")
        self.assertEqual([ln.text for ln in lines], ["a", "d"])
        self.assertEqual(
            messages(diagnostics),
            ["k.conf:2: configuration appears to have embedded NULs - ignoring line"],
        )

    def test_lineTooLong(self) -> None:
        ok = "a " + "x" * 1020
        long = "b " + "x" * 1021
        lines, diagnostics = run(f"{ok}\n{long}\nc\n")
        self.assertEqual([ln.tokens[0] for ln in lines], ["a", "c"])
        self.assertEqual(messages(diagnostics), ["k.conf:2: line too long - ignoring"])

    def test_lineLengthInBytes(self) -> None:
        """
        The limit counts bytes: 400 two-byte characters are 800 bytes (ok),
        600 are 1200 (too long).
        """
        lines, diagnostics = run("a " + "é" * 400 + "\nb " + "é" * 600 + "\n")
        self.assertEqual([ln.tokens[0] for ln in lines], ["a"])
        self.assertEqual(len(diagnostics), 1)

    def test_fastPathMatchesLexer(self) -> None:
        """
        Lines taking the fast path get exactly the PLY tokens.
        """
        for path in _sampleFiles():
            for line in preprocessFile(path, Diagnostics(), "main"):
                self.assertEqual(line.tokens, tokenize(line.text), (path, line))

    def test_includeCheckPassedThrough(self) -> None:
        self.assertEqual(
            texts("global_defs {\ninclude_check readable\n}\n"),
            ["global_defs", "{", "include_check readable", "}"],
        )


class ConditionalTests(SynchronousTestCase):
    """
    C{@ID} / C{@^ID} lines (step 5) and C{-i}.
    """

    def test_match(self) -> None:
        self.assertEqual(texts("@main a 1\n@other b 2\n@^main c\n@^other\td 4\n"), ["a 1", "d 4"])

    def test_configIdParameter(self) -> None:
        self.assertEqual(texts("@main a\n@other b\n", configId="other"), ["b"])

    def test_defaultConfigId(self) -> None:
        ident = defaultConfigId()
        self.assertNotIn(".", ident)
        self.assertEqual(texts(f"@{ident} a\n@^{ident} b\n", configId=None), ["a"])

    def test_caseSensitive(self) -> None:
        self.assertEqual(texts("@Main a\n"), [])

    def test_nothingAfterId(self) -> None:
        self.assertEqual(texts("@main\n@^x\nz\n"), ["z"])

    def test_inValueBlock(self) -> None:
        self.assertEqual(
            texts("unicast_peer {\n@main 192.0.2.1\n@backup 192.0.2.2\n}\n"),
            ["unicast_peer", "{", "192.0.2.1", "}"],
        )

    def test_withDefinition(self) -> None:
        self.assertEqual(
            texts("$PRIORITY=100\n@main $PRIORITY=240\npriority $PRIORITY\n"), ["priority 240"]
        )
        self.assertEqual(
            texts("$PRIORITY=100\n@main $PRIORITY=240\npriority $PRIORITY\n", configId="b"),
            ["priority 100"],
        )

    def test_definitionValueIsConditional(self) -> None:
        """
        A definition value may be C{@main ...}; the substituted line is
        checked again.
        """
        text = "$IF_MAIN=@main\n$IF_MAIN priority 240\n"
        self.assertEqual(texts(text), ["priority 240"])
        self.assertEqual(texts(text, configId="x"), [])


class DefinitionTests(SynchronousTestCase):
    """
    C{$NAME=VALUE} and substitution (steps 6 and 8).
    """

    def test_simple(self) -> None:
        lines, diagnostics = run("$A=10.0.0.1\nip $A\nip ${A}/24\n")
        self.assertEqual([ln.text for ln in lines], ["ip 10.0.0.1", "ip 10.0.0.1/24"])
        self.assertEqual([ln.location.line for ln in lines], [2, 3])
        self.assertEqual(list(diagnostics), [])

    def test_terminators(self) -> None:
        """
        C{$NAME} needs whitespace, C{,}, C{)} or the end after it.
        """
        self.assertEqual(texts("$A=x\nv $A,$A) $A\t$Ab ${A}b\n"), ["v x,x) x\t$Ab xb"])

    def test_blanksAroundEquals(self) -> None:
        self.assertEqual(texts("$A = 5\nv $A\n"), ["v 5"])

    def test_emptyValue(self) -> None:
        self.assertEqual(texts("$A=\nv $A w\n"), ["v  w"])

    def test_undefinedLeftAlone(self) -> None:
        lines, diagnostics = run('$A=1\nscript "/bin/echo $HOME ${X}"\n')
        self.assertEqual(lines[0].tokens, ("script", "/bin/echo $HOME ${X}"))
        self.assertEqual(list(diagnostics), [])

    def test_noDefinitionsNoSubstitution(self) -> None:
        self.assertEqual(texts("a $B\n"), ["a $B"])

    def test_redefinition(self) -> None:
        self.assertEqual(texts("$A=1\nv $A\n$A=2\nv $A\n"), ["v 1", "v 2"])

    def test_recursive(self) -> None:
        self.assertEqual(texts("$B=2\n$A=1 $B\nv $A\n$B=3\nv $A\n"), ["v 1 2", "v 1 3"])

    def test_recursionDoesNotHang(self) -> None:
        lines, diagnostics = run("$A=$B\n$B=$A\nv $A\nw\n")
        self.assertEqual([ln.text for ln in lines][-1], "w")
        self.assertTrue(diagnostics.items)
        self.assertEqual(diagnostics.items[0].location, Location("k.conf", 3))

    def test_growingDefinitionStops(self) -> None:
        lines, diagnostics = run("$A=x $A\nv $A\n")
        self.assertTrue(
            messages(diagnostics)[0].startswith("k.conf:2: Parameter substitution on line")
        )
        lines, diagnostics = run("$A=" + "y" * 600 + " $A\nv $A\n")
        self.assertIn("would exceed maximum line length", messages(diagnostics)[0])

    def test_substitutionCreatesBraces(self) -> None:
        self.assertEqual(
            texts("$OPEN=vrrp_instance VI_1 {\n$OPEN\n}\n"), ["vrrp_instance VI_1", "{", "}"]
        )

    def test_substitutionCreatesComment(self) -> None:
        self.assertEqual(texts("$C=a # b\nv $C\n"), ["v a"])

    def test_multiline(self) -> None:
        text = (
            "$INST=vrrp_instance VI_1 { \\\n"
            "  state BACKUP \\\n"
            "\\\n"
            "  priority $PRI\n"
            "$PRI=50\n"
            "$INST\n"
            "}\n"
        )
        lines, diagnostics = run(text)
        self.assertEqual(
            [(ln.location.line, ln.text) for ln in lines],
            [
                (6, "vrrp_instance VI_1"),
                (6, "{"),
                (6, "state BACKUP"),
                (6, "priority 50"),
                (7, "}"),
            ],
        )
        self.assertEqual(list(diagnostics), [])

    def test_multilineFirstLineEmpty(self) -> None:
        self.assertEqual(texts("$M=\\\na 1 \\\nb 2\nx\n$M\n"), ["x", "a 1", "b 2"])

    def test_multilineEndsAtEmptyLine(self) -> None:
        self.assertEqual(texts("$M=\\\na \\\n\nb\n$M\n"), ["b", "a"])

    def test_multilineCommentLinesSkipped(self) -> None:
        self.assertEqual(texts("$M=\\\n# hi\na \\\nb\n$M\n"), ["a", "b"])

    def test_multilineNotUsableMidLine(self) -> None:
        self.assertEqual(texts("$M=\\\na \\\nb\nx $M y\n"), ["x $M y"])

    def test_multilineAtEndOfLine(self) -> None:
        self.assertEqual(texts("$M=\\\na \\\nb\nx $M\n"), ["x a", "b"])

    def test_nestedMultiline(self) -> None:
        text = "$IN=\\\ni1 \\\ni2\n$OUT=\\\no1 \\\n$IN \\\no2\n$OUT\n"
        self.assertEqual(texts(text), ["o1", "i1", "i2", "o2"])

    def test_recursiveMultilineStops(self) -> None:
        lines, diagnostics = run("$M=\\\na \\\n$M\n$M\nz\n")
        self.assertEqual(lines[-1].text, "z")
        self.assertIn("nested too deeply", messages(diagnostics)[0])

    def test_backslashElsewhereIsLiteral(self) -> None:
        """
        No general line continuation.
        """
        self.assertEqual([ln.tokens for ln in run("a b\\\nc\n")[0]], [("a", "b\\"), ("c",)])

    def test_pwdAndInstance(self) -> None:
        directory = tempfile.mkdtemp()
        diagnostics = Diagnostics()
        lines = preprocessText(
            "d ${_PWD} $_INSTANCE\n", os.path.join(directory, "k.conf"), diagnostics, "lb1"
        )
        self.assertEqual(lines[0].tokens, ("d", directory, "lb1"))

    def test_random(self) -> None:
        values = {
            int(ln.tokens[1]) for ln in run("~SEQ(i, 200) r ${_RANDOM 5 7}\n", randomSeed=1)[0]
        }
        self.assertEqual(values, {5, 6, 7})
        self.assertTrue(0 <= int(run("r ${_RANDOM}\n")[0][0].tokens[1]) <= 32767)
        self.assertEqual(
            run("r ${_RANDOM 9}\n", randomSeed=3)[0][0].tokens, ("r", str(_seeded(3, 9, 32767)))
        )

    def test_randomBadParameters(self) -> None:
        lines, diagnostics = run('r "${_RANDOM 1 2 3}"\nr "${_RANDOM 9 1}"\n')
        self.assertEqual([ln.tokens[1] for ln in lines], ["${_RANDOM 1 2 3}", "${_RANDOM 9 1}"])
        self.assertEqual(len(diagnostics), 2)

    def test_env(self) -> None:
        lines, diagnostics = run("e ${_ENV FOO}x ${_ENV NOPE}y\n", environ={"FOO": "bar"})
        self.assertEqual(lines[0].tokens, ("e", "barx", "y"))
        lines, diagnostics = run("e ${_ENV}\n", environ={})
        self.assertEqual(len(diagnostics), 1)

    def test_userDefinitionWithParameters(self) -> None:
        lines, diagnostics = run('$A=1\nv "${A 2}"\n')
        self.assertEqual(lines[0].text, 'v "${A 2}"')
        self.assertEqual(
            messages(diagnostics), ["k.conf:2: Definition 'A' does not take parameters"]
        )

    def test_unsubstitutedReferenceIsSplitAtBraces(self) -> None:
        """
        As in keepalived, an unquoted C{${X}} left alone is split at its
        braces like any other text.
        """
        self.assertEqual(texts("$A=1\nv ${X}\n"), ["v $", "{", "X", "}"])

    def test_notADefinition(self) -> None:
        """
        C{$1=...} is not a definition; the line passes through.
        """
        self.assertEqual(texts("$1=x\n"), ["$1=x"])


def _seeded(seed: int, low: int, high: int) -> int:
    import random

    return random.Random(seed).randint(low, high)


class SequenceTests(SynchronousTestCase):
    """
    C{~SEQ}, C{~SEQx}, C{~LST} (step 7).
    """

    def test_seqForms(self) -> None:
        self.assertEqual(texts("~SEQ(i, 3) v $i\n"), ["v 1", "v 2", "v 3"])
        self.assertEqual(texts("~SEQ(i, -2) v $i\n"), ["v -1", "v -2"])
        self.assertEqual(texts("~SEQ(i, 5, 3) v ${i}\n"), ["v 5", "v 4", "v 3"])
        self.assertEqual(texts("~SEQ(i, 0, 5, 12) v $i\n"), ["v 0", "v 5", "v 10"])
        self.assertEqual(texts("~SEQ(i, 10, -4, 1) v $i\n"), ["v 10", "v 6", "v 2"])

    def test_seqLocations(self) -> None:
        lines, _ = run("a\n~SEQ(i, 2) v $i {\n")
        self.assertEqual(
            [(ln.location.line, ln.text) for ln in lines],
            [(1, "a"), (2, "v 1"), (2, "{"), (2, "v 2"), (2, "{")],
        )

    def test_seqBases(self) -> None:
        self.assertEqual(texts("~SEQ(i, 0x10, 0x11) v $i\n"), ["v 16", "v 17"])
        self.assertEqual(texts("~SEQ(i, 010, 011) v $i\n"), ["v 8", "v 9"])

    def test_seqHex(self) -> None:
        self.assertEqual(
            texts("~SEQx(i, 9, 12) ip fe80::$i\n"),
            ["ip fe80::9", "ip fe80::a", "ip fe80::b", "ip fe80::c"],
        )
        lines, diagnostics = run("~SEQx(i, -1, 2) v\n")
        self.assertEqual(lines, [])
        self.assertEqual(
            messages(diagnostics),
            ["k.conf:1: ~SEQx is only valid for positive numbers '~SEQx(i, -1, 2) v'"],
        )

    def test_seqParametersFromDefinitions(self) -> None:
        self.assertEqual(texts("$N=3\n$S=2\n~SEQ(i, $S, $N) v $i\n"), ["v 2", "v 3"])

    def test_seqMultilineParameter(self) -> None:
        lines, diagnostics = run("$M=\\\n1 \\\n2\n~SEQ(i, $M) v\n")
        self.assertEqual(lines, [])
        self.assertIn("multiline", messages(diagnostics)[0])

    def test_chained(self) -> None:
        self.assertEqual(
            texts("~SEQ(i, 2) ~SEQ(j, 3, 4) v ${i}.${j}\n"), ["v 1.3", "v 1.4", "v 2.3", "v 2.4"]
        )

    def test_lst(self) -> None:
        self.assertEqual(texts("~LST(n, a, b, c) v $n\n"), ["v a", "v b", "v c"])

    def test_lstGroups(self) -> None:
        self.assertEqual(
            texts("~LST({A, B}, {1, 2}, {3}, {4,5}) v ${A}-${B}.\n"), ["v 1-2.", "v 3-.", "v 4-5."]
        )

    def test_lstTooManyValues(self) -> None:
        lines, diagnostics = run("~LST({A}, {1, 2}) v\n")
        self.assertEqual(lines, [])
        self.assertEqual(len(diagnostics), 1)

    def test_lstAndSeq(self) -> None:
        self.assertEqual(
            texts("~LST(h, x, y) ~SEQ(i, 2) $h$i\n".replace("$h$i", "${h}${i}")),
            ["x1", "x2", "y1", "y2"],
        )

    def test_nestedInBlock(self) -> None:
        self.assertEqual(
            texts("virtual_ipaddress {\n~SEQ(i, 2) 192.0.2.$i\n}\n"),
            ["virtual_ipaddress", "{", "192.0.2.1", "192.0.2.2", "}"],
        )

    def test_loopVariableRemovedAfterwards(self) -> None:
        self.assertEqual(texts("~SEQ(i, 1) a $i\nb $i\n~SEQ(i, 1) c $i\n"), ["a 1", "b $i", "c 1"])

    def test_loopVariableAlreadyDefined(self) -> None:
        lines, diagnostics = run("$i=5\n~SEQ(i, 2) v $i\n")
        self.assertEqual(lines, [])
        self.assertEqual(len(diagnostics), 1)

    def test_invalid(self) -> None:
        for spec in (
            "~SEQ(i)",
            "~SEQ i, 2)",
            "~SEQ(i, 1, 0, 5)",
            "~SEQ(i, 5, -1, 9)",
            "~SEQ(i, a)",
            "~SEQ(i, 1, 2, 3, 4)",
            "~LST(a)",
            "~LST(a, b",
        ):
            lines, diagnostics = run(spec + " v\n")
            self.assertEqual(lines, [], spec)
            self.assertEqual(len(diagnostics), 1, spec)
            self.assertEqual(diagnostics.items[0].location, Location("k.conf", 1))

    def test_hugeSequenceRefused(self) -> None:
        lines, diagnostics = run("~SEQ(i, 0x7fffffff) v\n")
        self.assertEqual(lines, [])
        self.assertIn("too many values", messages(diagnostics)[0])

    def test_otherTildeLine(self) -> None:
        self.assertEqual(texts("$A=1\n~FOO $A\n"), ["~FOO $A"])


class IncludeTests(SynchronousTestCase):
    """
    C{include} and its variants (step 9) and C{-e}.
    """

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def load(self, main: str, **kw):
        path = self.write("keepalived.conf", main)
        diagnostics = Diagnostics()
        lines = preprocessFile(path, diagnostics, "main", **kw)
        return lines, diagnostics

    def where(self, lines) -> list[tuple[str, int, str]]:
        return [
            (os.path.relpath(ln.location.file, self.dir), ln.location.line, ln.text) for ln in lines
        ]

    def test_relative(self) -> None:
        self.write("conf.d/a.conf", "a 1\ninclude sub/b.conf\n")
        self.write("conf.d/sub/b.conf", "\nb 2\n")
        lines, diagnostics = self.load("x\ninclude conf.d/a.conf\ny\n")
        self.assertEqual(
            self.where(lines),
            [
                ("keepalived.conf", 1, "x"),
                ("conf.d/a.conf", 1, "a 1"),
                ("conf.d/sub/b.conf", 2, "b 2"),
                ("keepalived.conf", 3, "y"),
            ],
        )
        self.assertEqual(list(diagnostics), [])

    def test_glob(self) -> None:
        self.write("d/2.conf", "two\n")
        self.write("d/1.conf", "one\n")
        self.write("d/x.txt", "no\n")
        lines, _ = self.load("include d/*.conf\n")
        self.assertEqual([ln.text for ln in lines], ["one", "two"])

    def test_braces(self) -> None:
        self.write("d/b.conf", "b\n")
        self.write("d/a.conf", "a\n")
        self.write("d/c.conf", "c\n")
        lines, _ = self.load("include d/{c,a}.conf\n")
        self.assertEqual([ln.text for ln in lines], ["c", "a"])

    def test_absolute(self) -> None:
        other = self.write("abs/x.conf", "x\n")
        lines, _ = self.load(f"include {other}\n")
        self.assertEqual([ln.text for ln in lines], ["x"])

    def test_pwdInIncludedFile(self) -> None:
        self.write("sub/x.conf", "p ${_PWD}\n")
        lines, _ = self.load("include sub/x.conf\np ${_PWD}\n")
        self.assertEqual([ln.tokens[1] for ln in lines], [os.path.join(self.dir, "sub"), self.dir])

    def test_definitionsCrossFiles(self) -> None:
        self.write("defs.conf", "$PRI=150\n")
        lines, _ = self.load("include defs.conf\npriority $PRI\n")
        self.assertEqual([ln.text for ln in lines], ["priority 150"])

    def test_loop(self) -> None:
        self.write("a.conf", "a\ninclude b.conf\n")
        self.write("b.conf", "b\ninclude a.conf\n")
        lines, diagnostics = self.load("include a.conf\nend\n")
        self.assertEqual([ln.text for ln in lines], ["a", "b", "end"])
        self.assertEqual(
            messages(diagnostics),
            [
                f"{os.path.join(self.dir, 'b.conf')}:2: include loop: "
                f"'{os.path.join(self.dir, 'a.conf')}' is already being read - skipping"
            ],
        )

    def test_selfInclude(self) -> None:
        lines, diagnostics = self.load("x\ninclude keepalived.conf\n")
        self.assertEqual([ln.text for ln in lines], ["x"])
        self.assertEqual(len(diagnostics), 1)
        self.assertEqual(diagnostics.items[0].severity, Severity.ERROR)

    def test_missingPlain(self) -> None:
        """
        Plain C{include} never errors: a missing file is only reported (a
        note; C{-t} exits 0), a wildcard matching nothing not even that.
        """
        lines, diagnostics = self.load("include nope.conf\ninclude nope/*.conf\ninclude *.none\nz\n")
        self.assertEqual([ln.text for ln in lines], ["z"])
        self.assertEqual(messages(diagnostics), [
            f"{self.dir}/keepalived.conf:1: Config files missing 'nope.conf'.",
            f"{self.dir}/keepalived.conf:2: Config files missing 'nope/*.conf'."])
        self.assertEqual({d.severity for d in diagnostics}, {Severity.NOTE})
        self.assertEqual(diagnostics.exitCode(), 0)
        self.assertFalse(diagnostics.refusesStart)

    def test_missingAllConfig(self) -> None:
        lines, diagnostics = self.load("include nope.conf\nz\n", allConfig=True)
        self.assertEqual([ln.text for ln in lines], ["z"])
        path = os.path.join(self.dir, "keepalived.conf")
        self.assertEqual(messages(diagnostics), [f"{path}:1: Config files missing 'nope.conf'."])
        self.assertEqual(diagnostics.worst, Severity.FATAL)
        # keepalived's parent stops reading: "not configured"
        self.assertEqual(diagnostics.exitCode(), 6)
        self.assertEqual(diagnostics.startExitCode(), 6)

    def test_variants(self) -> None:
        self.write("d/a.conf", "a\n")
        cases = {
            "includer nope.conf": 0,
            "includem nope.conf": 1,
            "includem d/*.none": 0,
            "includew d/*.none": 1,
            "includew nope.conf": 1,
            "includeb d/{a,zz}.conf": 1,
            "includem d/{a,zz}.conf": 0,
            "includea d/{a,zz}.conf": 1,
            "includea d/*.none": 1,
            "include d/{a,zz}.conf": 0,
        }
        for line, errors in cases.items():
            lines, diagnostics = self.load(line + "\n")
            fatal = [d for d in diagnostics if d.severity is Severity.FATAL]
            self.assertEqual(len(fatal), errors, (line, messages(diagnostics)))
            self.assertEqual(diagnostics.exitCode(), 6 if errors else 0)

    def test_braceMissingStopsInclude(self) -> None:
        self.write("d/a.conf", "a\n")
        self.assertEqual([ln.text for ln in self.load("include d/{a,zz}.conf\n")[0]], ["a"])
        lines, diagnostics = self.load("includeb d/{a,zz}.conf\n")
        self.assertEqual(lines, [])
        self.assertIn("Some config files missing", messages(diagnostics)[0])

    def test_unreadable(self) -> None:
        os.mkdir(os.path.join(self.dir, "adir"))
        script = self.write("x.sh", "a\n")
        os.chmod(script, 0o755)
        lines, diagnostics = self.load("include adir\ninclude x.sh\n")
        self.assertEqual(lines, [])
        self.assertEqual(messages(diagnostics), [
            # (named as written, as keepalived names them)
            f"{self.dir}/keepalived.conf:1: Configuration file 'adir/' is a directory - skipping",
            f"{self.dir}/keepalived.conf:2: Configuration file 'x.sh' is not a regular "
            "non-executable file - skipping"])
        self.assertEqual(diagnostics.exitCode(), 0)
        lines, diagnostics = self.load("includer adir\nincluder x.sh\n")
        self.assertEqual(lines, [])
        self.assertEqual(len(diagnostics), 2)
        self.assertIn("is a directory", messages(diagnostics)[0])
        self.assertIn("not a regular non-executable file", messages(diagnostics)[1])
        self.assertEqual(diagnostics.exitCode(), 6)

    def test_includeCheckKeyword(self) -> None:
        lines, diagnostics = self.load("global_defs {\ninclude_check\n}\ninclude nope.conf\n")
        self.assertEqual(diagnostics.exitCode(), 6)
        lines, diagnostics = self.load(
            "include_check match\ninclude_check -match\ninclude nope.conf\n"
        )
        self.assertEqual(diagnostics.exitCode(), 0)
        lines, diagnostics = self.load("include_check bogus match\ninclude nope.conf\n")
        # Unknown options are the schema's to report; the known ones apply.
        self.assertEqual(len(diagnostics), 1)
        self.assertIn("Config files missing", messages(diagnostics)[0])

    def test_includeCheckRestoredAfterFile(self) -> None:
        self.write("inner.conf", "include_check\n")
        lines, diagnostics = self.load("include inner.conf\ninclude nope.conf\n")
        self.assertEqual(diagnostics.exitCode(), 0)

    def test_includeWordAlone(self) -> None:
        self.assertEqual(
            [ln.text for ln in self.load("include\nincluded x\n")[0]], ["include", "included x"]
        )

    def test_topFileMissing(self) -> None:
        diagnostics = Diagnostics()
        path = os.path.join(self.dir, "missing.conf")
        self.assertEqual(preprocessFile(path, diagnostics), [])
        self.assertEqual(messages(diagnostics), [f"Config files missing '{path}'."])
        # refused at start ("not configured"), but keepalived -t exits 0 (4 with -e)
        self.assertEqual(diagnostics.worst, Severity.FATAL)
        self.assertTrue(diagnostics.refusesStart)
        self.assertEqual(diagnostics.startExitCode(), 6)
        self.assertEqual(diagnostics.exitCode(), 0)
        diagnostics = Diagnostics()
        preprocessFile(path, diagnostics, allConfig=True)
        self.assertEqual(diagnostics.exitCode(), 4)

    def test_topFileDirectory(self) -> None:
        diagnostics = Diagnostics()
        self.assertEqual(preprocessFile(self.dir, diagnostics), [])
        self.assertEqual(diagnostics.worst, Severity.FATAL)
        self.assertEqual(messages(diagnostics), [f"Configuration file '{self.dir}/' is a directory - skipping"])
        self.assertEqual(diagnostics.exitCode(), 0)

    def test_bytesDecoding(self) -> None:
        """
        Files are bytes: invalid UTF-8 is kept (surrogate-escaped) and can be
        turned back into the original bytes.
        """
        path = os.path.join(self.dir, "bin.conf")
        with open(path, "wb") as f:
            f.write(b"name caf\xc3\xa9 \xff\xfe\n")
        lines = preprocessFile(path, Diagnostics())
        self.assertEqual(lines[0].tokens, ("name", "café", "\udcff\udcfe"))
        self.assertEqual(lines[0].tokens[2].encode("utf-8", "surrogateescape"), b"\xff\xfe")


def _sampleFiles() -> list[str]:
    found = []
    for dirpath, _, files in os.walk(SAMPLES):
        for name in files:
            if name != "README.md":
                found.append(os.path.join(dirpath, name))
    return sorted(found)


class SampleTests(SynchronousTestCase):
    """
    keepalived's own sample configurations are lexically valid.
    """

    def test_samples(self) -> None:
        files = _sampleFiles()
        if not files:
            self.fail(f"no samples under {SAMPLES}")
        for path in files:
            diagnostics = Diagnostics()
            lines = preprocessFile(path, diagnostics, "main")
            bad = [str(d) for d in diagnostics if d.severity >= Severity.ERROR]
            self.assertEqual(bad, [], path)
            if os.path.basename(path).startswith("keepalived.conf."):
                self.assertTrue(lines, path)

    def test_conditionalSample(self) -> None:
        path = os.path.join(SAMPLES, "keepalived.conf.conditional_conf")
        high = [ln.text for ln in preprocessFile(path, Diagnostics(), "high")]
        low = [ln.text for ln in preprocessFile(path, Diagnostics(), "low")]
        self.assertIn("net_namespace high", high)
        self.assertNotIn("net_namespace low", high)
        self.assertIn("priority 85", low)
        self.assertNotIn("priority 170", low)


class FuzzTests(SynchronousTestCase):
    """
    No input makes the preprocessor raise; problems are diagnostics.
    """

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                list("ab $@~{}\"'#!\\\n\t=(),x0_")
                + ["~SEQ(", "~SEQx(", "~LST(", "$A=", "${", "include ", "@main ", "\x00", "\r", "é"]
                + ["$A", "${_RANDOM ", "${_ENV ", "\\\n", "1, ", "0x7f"]
            ),
            max_size=120,
        ).map("".join)
    )
    def test_syntaxSoup(self, text: str) -> None:
        self.check(text)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=400), st.sampled_from(["surrogateescape", "replace"]))
    def test_bytes(self, data: bytes, errors: str) -> None:
        self.check(data.decode("utf-8", errors))

    @settings(max_examples=100, deadline=None)
    @given(st.text(max_size=200))
    def test_text(self, text: str) -> None:
        self.check(text)

    def check(self, text: str) -> None:
        diagnostics = Diagnostics()
        lines = preprocessText(text, "/nonexistent/f.conf", diagnostics, "main", environ={})
        for line in lines:
            self.assertIsInstance(line, LogicalLine)
            self.assertTrue(line.tokens)
            self.assertEqual(line.location.file, "/nonexistent/f.conf")
            self.assertGreaterEqual(line.location.line, 1)
        for d in diagnostics:
            self.assertIsInstance(d.message, str)
