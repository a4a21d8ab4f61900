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

Patterns are compiled by L{keepalive_tx.config.pcre} (PCRE2 syntax
translated to Python's C{re}).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from keepalive_tx.config.pcre import compilePattern

DEFAULT_WINDOW = 65536
MARGIN = 256


def _endSensitive(pattern: str) -> bool:
    """
    Whether a match might depend on what follows it (conservative): C{$},
    C{\\b}, C{\\B}, C{\\Z}, lookahead.
    """
    return any(s in pattern for s in ("$", "\\b", "\\B", "\\Z", "(?=", "(?!"))


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
