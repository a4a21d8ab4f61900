"""
Tests for HTTP_GET / SSL_GET C{regex} (L{keepalive_tx.config.pcre},
L{keepalive_tx.check.httpregex}):
PCRE2 translation, the streamed bounded matcher, the checker verdicts and
the configuration diagnostics, all without sockets.
"""

from __future__ import annotations

import hashlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.http import HttpChecker, HttpUrl
from keepalive_tx.check.httpregex import RegexSpec
from keepalive_tx.config import parseText
from keepalive_tx.config.pcre import OPTION_NAMES, RegexError, optionProblem, translate


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


def run(spec: RegexSpec, pieces: list[bytes]) -> bool:
    m = spec.matcher()
    for p in pieces:
        m.feed(p)
    m.finish()
    return m.matched


def reference(spec: RegexSpec, body: bytes) -> bool:
    """
    The answer with the whole body in memory: a match of the compiled
    pattern starting in [min, max] (and before the first newline from min
    with firstline).
    """
    if spec.minOffset > len(body):
        return False
    limit = spec.maxOffset
    if spec.firstline:
        nl = body.find(b"\n", spec.minOffset)
        if nl >= 0:
            limit = nl if limit is None else min(limit, nl)
    m = spec.compiled.search(body, spec.minOffset)
    return m is not None and (limit is None or m.start() <= limit)


# patterns whose matches (with their lookaround) span a few bytes
LOCAL = [
    "abc",
    "a.c",
    "(?<=x)ab",
    "^ab",
    "ab$",
    r"\bab\b",
    r"a[bc]{2,3}x",
    r"c\n",
    "(?m)^x",
    "(?m)b$",
    "a(?!b)",
    "x(?=a)",
    r"\Aa",
    r"b\Z",
    r"b\z",
    "[[:space:]]c",
    r"\h\R",
]
pieces = st.sampled_from(
    [b"a", b"b", b"c", b"x", b" ", b"\n", b"ab", b"abc", b"xab", b"ab\n", b"bc", b"\tc\r\n"]
)
bodies = st.lists(pieces, min_size=0, max_size=150).map(b"".join)


class TranslateTests(SynchronousTestCase):
    """
    PCRE2 syntax is translated to re syntax, or rejected.
    """

    def test_translations(self) -> None:
        cases = {
            "[[:digit:]]+": "[0-9]+",
            "[^[:alpha:]_]": "[^a-zA-Z_]",
            r"\Qa.b*\E+": r"a\.b\*+",
            r"\x{41}\o{101}\e": r"\x41\x41\x1b",
            r"(?<n>a)\k<n>\k{n}\g{n}": "(?P<n>a)(?P=n)(?P=n)(?P=n)",
            "(?'n'a)": "(?P<n>a)",
            r"(a)\g1\g{1}": r"(a)(?:\1)(?:\1)",
            r"\z": r"\Z",
            r"\Z": r"(?=\n?\Z)",
            "[]a]": r"[\]a]",
            "(?<=a)(?<!b)(?:c)(?=d)(?!e)": "(?<=a)(?<!b)(?:c)(?=d)(?!e)",
            r"\d\w\s\b\.": r"\d\w\s\b\.",
        }
        for pcre, python in cases.items():
            self.assertEqual(translate(pcre), python, pcre)

    def test_verticalAndHorizontalSpace(self) -> None:
        """
        PCRE's \\v is a class (Python's is one character), \\h and \\R too.
        """
        spec = RegexSpec(r"a\vb\hc\Rd")
        self.assertTrue(spec.compiled.search(b"a\rb\tc\r\nd"))
        self.assertTrue(spec.compiled.search(b"a\x0bb c\nd"))
        self.assertFalse(spec.compiled.search(b"a b c\nd"))

    def test_extendedComments(self) -> None:
        """
        With C{extended}, C{#} comments are not translated (a [ in them is no
        class).
        """
        spec = RegexSpec("a b # [unclosed \\K\n c", ("extended",))
        self.assertTrue(spec.compiled.search(b"xabc"))

    def test_rejected(self) -> None:
        for bad in [
            r"a\Kb",
            r"\G",
            r"\p{L}",
            r"\X",
            "(?|a)",
            "(?R)",
            "(?1)",
            "(?&n)",
            "(*UTF)a",
            "[[:^digit:]]",
            "[[:nope:]]",
            r"\x{100}",
            r"\g<n>",
            r"\k1",
            "(a",
            "[a",
            "a\\",
        ]:
            self.assertRaises(RegexError, RegexSpec, bad)

    def test_errorOffset(self) -> None:
        e = self.assertRaises(RegexError, RegexSpec, r"abc\K")
        self.assertEqual(e.offset, 3)

    def test_options(self) -> None:
        """
        keepalived's option names: mapped, no-ops, unsupported, unknown.
        """
        self.assertEqual(len(OPTION_NAMES), 24)
        self.assertTrue(RegexSpec("ABC", ("caseless",)).compiled.search(b"abc"))
        self.assertTrue(RegexSpec("^b", ("multiline",)).compiled.search(b"a\nb"))
        self.assertFalse(RegexSpec("^b").compiled.search(b"a\nb"))
        self.assertTrue(RegexSpec("a.b", ("dotall",)).compiled.search(b"a\nb"))
        self.assertTrue(RegexSpec("a b", ("extended",)).compiled.search(b"ab"))
        self.assertIsNone(optionProblem("caseless"))
        self.assertIsNone(optionProblem("no_start_optimize"))
        self.assertIn("not supported", optionProblem("utf") or "")
        self.assertIn("unknown", optionProblem("CASELESS") or "")


class MatcherTests(SynchronousTestCase):
    """
    L{RegexMatcher} over a body in pieces.
    """

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(LOCAL),
        st.sampled_from([(), ("firstline",)]),
        bodies,
        st.lists(st.integers(0, 400), max_size=40),
        st.integers(0, 60),
        st.one_of(st.none(), st.integers(0, 300)),
    )
    def test_anyChunking(self, pattern, options, body, cuts, low, span) -> None:
        """
        With a small window (16 bytes) and any split of the body, the
        verdict is the one of a search over the whole body.
        """
        spec = RegexSpec(
            pattern,
            options,
            minOffset=low,
            maxOffset=None if span is None else low + span,
            window=16,
            margin=4,
        )
        self.assertEqual(
            run(spec, split(body, cuts)), reference(spec, body), (body, split(body, cuts))
        )

    @settings(max_examples=100, deadline=None)
    @given(
        st.binary(max_size=2000), st.lists(st.integers(0, 3000), max_size=30), st.integers(0, 1999)
    )
    def test_markerAnywhere(self, noise, cuts, where) -> None:
        """
        A marker put anywhere in a binary body is found whatever the reads,
        with the default window; regex_no_match inverts the outcome.
        """
        where %= len(noise) + 1
        body = noise[:where] + b"<status>OK</status>" + noise[where:]
        self.assertTrue(run(RegexSpec(r"<status>(OK|UP)</status>"), split(body, cuts)))
        self.assertFalse(run(RegexSpec(r"<status>DOWN</status>"), split(body, cuts)))
        m = RegexSpec(r"<status>OK", noMatch=True).matcher()
        for p in split(body, cuts):
            m.feed(p)
        m.finish()
        self.assertEqual(
            (m.matched, m.passed, m.matchStart), (True, False, body.find(b"<status>OK"))
        )

    def test_everyAlignment(self) -> None:
        """
        A match (or a false end-of-buffer match) placed at every position
        relative to the 16-byte search windows, read in several ways.
        """
        cases = [
            ("a[bc]{2,3}x", b"abcbx"),
            ("ab$", b"ab"),
            ("ab$", b"abz"),
            (r"ab\b", b"abc"),
            ("(?<=xy)ab", b"xyab"),
        ]
        for pattern, text in cases:
            spec = RegexSpec(pattern, window=16, margin=4)
            for k in range(40):
                for tail in (b"", b"." * 20):
                    body = b"." * k + text + tail
                    for size in (1, 3, 7, 16, 100):
                        chunks = [body[i : i + size] for i in range(0, len(body), size)]
                        self.assertEqual(
                            run(spec, chunks), reference(spec, body), (pattern, k, tail, size)
                        )

    def test_offsetsInclusive(self) -> None:
        """
        The match must start within [min, max], both inclusive, counted from
        the first body byte.
        """
        body = b"0123456789OK"
        for low, high, expected in [
            (10, 10, True),
            (0, 10, True),
            (11, None, False),
            (0, 9, False),
            (10, None, True),
            (0, None, True),
        ]:
            spec = RegexSpec("OK", minOffset=low, maxOffset=high)
            self.assertEqual(run(spec, [body[:5], body[5:11], body[11:]]), expected, (low, high))

    def test_lookbehindBeforeMinOffset(self) -> None:
        """
        Bytes before regex_min_offset are context for lookbehind and \\b, as
        with PCRE's start offset; ^ does not match at the offset.
        """
        self.assertTrue(run(RegexSpec("(?<=ab)c", minOffset=2), [b"abc"]))
        self.assertFalse(run(RegexSpec(r"\bbc", minOffset=1), [b"abc"]))
        self.assertFalse(run(RegexSpec("^c", minOffset=2), [b"abc"]))
        self.assertTrue(run(RegexSpec("^c", ("multiline",), minOffset=2), [b"a\nc"]))

    def test_firstline(self) -> None:
        """
        firstline: the match starts at or before the first newline (from the
        minimum offset), and may continue past it.
        """
        self.assertTrue(run(RegexSpec("b\nc", ("firstline",)), [b"ab", b"\ncd"]))
        self.assertFalse(run(RegexSpec("c", ("firstline",)), [b"ab\n", b"cd"]))
        self.assertTrue(run(RegexSpec("c", ("firstline",), minOffset=3), [b"ab\n", b"cd\n"]))

    def test_endAssertionsWaitForData(self) -> None:
        """
        $, \\b and lookahead at the end of what has been read so far are not
        trusted until the next read or the end of the body.
        """
        spec = RegexSpec(r"ok$", window=16, margin=4)
        m = spec.matcher()
        m.feed(b"x" * 14 + b"ok")  # a search runs: "ok" ends the buffer
        self.assertFalse(m.done)
        m.feed(b"ay" + b"z" * 40)
        m.finish()
        self.assertFalse(m.matched)
        self.assertTrue(run(spec, [b"x" * 14 + b"ok"]))

    def test_earlyDecision(self) -> None:
        """
        A match is decided as soon as a window is searched, and the rest of
        the body is ignored; past max offset + window, a miss is decided.
        """
        m = RegexSpec("OK", window=16, margin=4).matcher()
        m.feed(b"..OK" + b"." * 20)
        self.assertEqual((m.done, m.matched, m.matchStart), (True, True, 2))
        m = RegexSpec("OK", maxOffset=3, window=16, margin=4).matcher()
        m.feed(b"." * 30)
        m.feed(b"OK" * 10)
        self.assertTrue(m.done)
        self.assertFalse(m.matched)

    def test_bounded(self) -> None:
        """
        A long body without a match keeps at most about two windows plus
        one read; bytes before regex_min_offset are not kept at all.
        """
        spec = RegexSpec("NEVER", window=65536)
        m = spec.matcher()
        piece = bytes(range(256)) * 256  # 64 KiB
        most = 0
        for _ in range(64):  # 4 MiB
            m.feed(piece)
            most = max(most, len(m._buf))
        m.finish()
        self.assertFalse(m.matched)
        self.assertLessEqual(most, 2 * 65536 + len(piece) + 256)
        m = RegexSpec("x", minOffset=10_000_000).matcher()
        for _ in range(64):
            m.feed(piece)
            self.assertEqual(len(m._buf), 0)

    def test_longGreedyBounded(self) -> None:
        """
        An end-sensitive greedy pattern over a long body costs bounded work
        and memory (matches longer than the window are not guaranteed).
        """
        spec = RegexSpec("a.*$", ("dotall",), window=1024, margin=16)
        m = spec.matcher()
        for _ in range(200):
            m.feed(b"a" * 1000)
            self.assertLessEqual(len(m._buf), 3 * 1024 + 16)
        m.finish()
        self.assertTrue(m.matched)

    def test_emptyBody(self) -> None:
        self.assertFalse(run(RegexSpec("."), []))
        self.assertTrue(run(RegexSpec("^$"), []))


class CheckerTests(SynchronousTestCase):
    """
    The regex verdict in L{HttpChecker}, after status and digest.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.opts = ConnectOptions("192.0.2.7", 8080, connectTimeout=4)

    def check(self, url: HttpUrl, response: list[bytes], **kw) -> CheckResult:
        checker = HttpChecker(self.reactor, self.opts, [url], **kw)
        results: list[CheckResult] = []
        checker.check(0).addCallback(results.append)
        proto = self.reactor.tcpClients[-1][2].buildProtocol(None)
        proto.makeConnection(StringTransport())
        for piece in response:
            proto.dataReceived(piece)
        if not results:
            proto.connectionLost(Failure(error.ConnectionDone()))
        return results[0]

    def test_regexVerdicts(self) -> None:
        head = b"HTTP/1.0 200 OK\r\n\r\n"
        ok = self.check(
            HttpUrl("/", regex=RegexSpec("Sta(tus)?: up")), [head + b"<p>Sta", b"tus: up</p>"]
        )
        self.assertEqual(
            ok, CheckResult(True, "Regex match success to", "Regex match success to {chk} url(/)")
        )
        bad = self.check(HttpUrl("/", regex=RegexSpec("status: up")), [head + b"status: down"])
        self.assertEqual(bad, CheckResult(False, "Regex match failed"))
        self.assertEqual(
            bad.logLine("[192.0.2.7]:tcp:8080"), "Regex match failed server [192.0.2.7]:tcp:8080."
        )
        inverted = self.check(
            HttpUrl("/", regex=RegexSpec("error", noMatch=True)), [head + b"fine"]
        )
        self.assertTrue(inverted.ok)
        inverted = self.check(
            HttpUrl("/", regex=RegexSpec("error", noMatch=True)), [head + b"an error"]
        )
        self.assertFalse(inverted.ok)

    def test_headerIsNotSubject(self) -> None:
        """
        The header is not matched, and offsets count from the body.
        """
        head = b"HTTP/1.0 200 OK\r\nX-Health: up\r\n\r\n"
        self.assertFalse(self.check(HttpUrl("/", regex=RegexSpec("X-Health")), [head + b"body"]).ok)
        url = HttpUrl("/", regex=RegexSpec("body", minOffset=0, maxOffset=0))
        self.assertTrue(self.check(url, [head + b"body"]).ok)

    def test_statusFirst(self) -> None:
        r = self.check(HttpUrl("/", regex=RegexSpec("x")), [b"HTTP/1.0 500 Err\r\n\r\nx"])
        self.assertEqual(r.reason, "HTTP status code error to")

    def test_digestAndRegex(self) -> None:
        """
        With both, both must pass; the digest is judged first.
        """
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
        body = b"hello world"
        good = hashlib.md5(body).hexdigest()
        both = self.check(
            HttpUrl("/", digest=good, regex=RegexSpec("o w")), [head + body[:5], body[5:]]
        )
        self.assertEqual(both.reason, "Regex match success to")
        noRegex = self.check(HttpUrl("/", digest=good, regex=RegexSpec("xyz")), [head + body])
        self.assertEqual(noRegex.reason, "Regex match failed")
        noDigest = self.check(HttpUrl("/", digest="0" * 32, regex=RegexSpec("o w")), [head + body])
        self.assertEqual(noDigest.reason, "MD5 digest error to")

    def test_subjectIsWhatIsHashed(self) -> None:
        """
        Content-Length bounds the subject; a chunked body is matched with
        its framing unless decoded, like the digest.
        """
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
        self.assertFalse(self.check(HttpUrl("/", regex=RegexSpec("tail")), [head + b"bodytail"]).ok)
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
        self.assertFalse(self.check(HttpUrl("/", regex=RegexSpec("abcdef")), [chunked]).ok)
        self.assertTrue(self.check(HttpUrl("/", regex=RegexSpec("abc\r\n3")), [chunked]).ok)
        self.assertTrue(
            self.check(HttpUrl("/", regex=RegexSpec("abcdef")), [chunked], decodeChunked=True).ok
        )


CONF = """
virtual_server 192.0.2.1 80 {
  protocol TCP
  lb_algo rr
  lb_kind DR
  real_server 192.0.2.2 80 {
    HTTP_GET {
      url {
        path /a
%s
      }
    }
  }
}
"""


class ConfigTests(SynchronousTestCase):
    """
    The url's regex keywords in the configuration.
    """

    def parse(self, body: str):
        result = parseText(CONF % body, "t.conf")
        urls = result.model.virtualServers[0].realServers[0].checkers[0].urls
        return urls[0], [str(d) for d in result.diagnostics]

    def test_fields(self) -> None:
        url, diags = self.parse(
            '        regex "<h1>\\\\d+ (ok|up)"\n        regex_options caseless dotall\n'
            "        regex_no_match\n        regex_min_offset 4\n        regex_max_offset 400\n"
        )
        self.assertEqual(diags, [])
        self.assertEqual(
            (url.regex, url.regexOptions, url.regexNoMatch, url.regexMinOffset, url.regexMaxOffset),
            (r"<h1>\d+ (ok|up)", ("caseless", "dotall"), True, 4, 400),
        )

    def test_escapesAsKeepalived(self) -> None:
        """
        The pattern is read with quotes and backslash escapes processed, as
        keepalived does: a lone backslash before a letter is lost (warned).
        """
        url, diags = self.parse('        regex "\\d+ \\t"\n')
        self.assertEqual(url.regex, "d+ \t")
        self.assertEqual(len(diags), 1)
        self.assertIn("'\\d' is 'd'", diags[0])

    def test_diagnostics(self) -> None:
        cases = {
            "        regex a b\n": "t.conf:10: regex missing or too many fields - ignoring",
            '        regex "(a"\n': "t.conf:10: Invalid regex: '(a' at offset 0: missing ), unterminated subpattern - ignoring regex",
            "        regex_no_match\n": "t.conf:8: regex parameters specified without regex - ignoring them",
            "        regex x\n        regex_min_offset 9\n        regex_max_offset 8\n": "t.conf:8: regex min offset 9 > regex_max_offset 8 - ignoring",
            "        regex x\n        regex_options caseless frob\n": "t.conf:11: unknown regex option 'frob' - ignoring",
        }
        for text, expected in cases.items():
            url, diags = self.parse(text)
            self.assertEqual(diags, [expected], text)
        url, _ = self.parse(
            "        regex x\n        regex_min_offset 9\n        regex_max_offset 8\n"
        )
        self.assertEqual((url.regex, url.regexMinOffset, url.regexMaxOffset), ("x", None, None))
        url, _ = self.parse('        regex "(a"\n        regex_no_match\n')
        self.assertEqual((url.regex, url.regexNoMatch), (None, False))

    def test_factoryBuildsSpec(self) -> None:
        """
        The checker factory turns the model's fields into a L{RegexSpec}.
        """
        from keepalive_tx.check.factory import _http

        result = parseText(
            CONF % '        regex "up"\n        regex_options caseless firstline\n'
            "        regex_min_offset 2\n        regex_max_offset 9\n",
            "t.conf",
        )
        config = result.model.virtualServers[0].realServers[0].checkers[0]
        built = _http(MemoryReactorClock(), config, None, None, result.model)
        spec = built.checker.urls[0].regex
        self.assertEqual(
            (
                spec.pattern,
                spec.minOffset,
                spec.maxOffset,
                spec.firstline,
                bool(spec.compiled.flags & re.I),
            ),
            ("up", 2, 9, True, True),
        )
