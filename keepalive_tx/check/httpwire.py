# -*- test-case-name: tests.unit.test_check_http -*-
"""
HTTP/1.x wire format of HTTP_GET / SSL_GET / genhash, pure (no I/O).

keepalived compatibility, measured against Debian keepalived 2.2.7's
C{genhash}:

  - request bytes C{GET <path> HTTP/1.<0|1>\\r\\nUser-Agent: KeepAliveClient
    \\r\\n[Connection: close\\r\\n]Host: <host>\\r\\n\\r\\n};
  - the header ends at the first C{\\r\\n\\r\\n} (a response without one is
    "no data received");
  - the status code is the 3 digits after the first space of the status line,
    which must be followed by a space (else 0: failure);
  - C{Content-Length:} is found by a B{case-sensitive} search of the header
    block (so C{X-Content-Length:} counts), digits must end the line; it
    truncates the bytes hashed, a mismatch is only logged;
  - the MD5 covers the body bytes as received: a chunked body is hashed
    B{with} its chunk framing, exactly like keepalived (C{decodeChunked=True}
    hashes the decoded payload instead).

Unlike keepalived, the message end is also recognised from C{Content-Length}
or the chunked framing, so a server that ignores C{Connection: close} does not
run into the read timeout.  Bodies are streamed into C{hashlib.md5}, never
buffered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keepalive_tx.check.httpregex import RegexSpec

MAX_HEADER = 65536
PROTOCOLS = ("1.0", "1.0C", "1.1")


@dataclass(frozen=True, slots=True)
class StatusCodes:
    """
    Allowed HTTP status codes: inclusive ranges within 100..599.
    """

    ranges: tuple[tuple[int, int], ...] = ((200, 299),)

    def __contains__(self, code: object) -> bool:
        return any(lo <= code <= hi for lo, hi in self.ranges)  # type: ignore[operator]

    @classmethod
    def parse(cls, words: Iterable[str]) -> StatusCodes:
        """
        Parse keepalived's C{status_code N|A-B ...}.

        @raise ValueError: for a malformed word or a code outside 100..599.
        """
        ranges = []
        for word in words:
            lo, sep, hi = word.partition("-")
            a = int(lo)
            b = int(hi) if sep else a
            if not (100 <= a <= b <= 599):
                raise ValueError(f"status code {word} out of range 100-599")
            ranges.append((a, b))
        if not ranges:
            raise ValueError("no status code")
        return cls(tuple(ranges))


@dataclass(frozen=True, slots=True)
class HttpUrl:
    """
    One C{url { }} block.

    @ivar digest: expected MD5 of the body (32 hex digits, any case) or
        L{None}.
    @ivar virtualhost: this URL's C{virtualhost}, overriding the checker's.
    @ivar regex: the C{regex} the body must (or, with C{regex_no_match},
        must not) match, or L{None}; see L{keepalive_tx.check.httpregex}.
    """

    path: str
    digest: str | None = None
    statusCodes: StatusCodes = field(default_factory=StatusCodes)
    virtualhost: str | None = None
    regex: RegexSpec | None = None

    def __post_init__(self) -> None:
        if self.digest is not None:
            d = self.digest.lower()
            if len(d) != 32 or any(c not in "0123456789abcdef" for c in d):
                raise ValueError(f"digest {self.digest!r} is not 32 hex digits")
            object.__setattr__(self, "digest", d)


def hostHeader(ip: str, port: int, virtualhost: str | None) -> str:
    """
    @return: the C{Host} value: the virtualhost, or C{ip:port} /
        C{[ipv6]:port}.
    """
    if virtualhost:
        return virtualhost
    if ":" in ip:
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


def buildRequest(path: str, protocol: str, host: str) -> bytes:
    """
    @param protocol: C{"1.0"}, C{"1.0C"} or C{"1.1"} (case-insensitive).
    @return: keepalived's request bytes.
    """
    protocol = protocol.upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"invalid HTTP protocol version '{protocol}'")
    minor = "1" if protocol == "1.1" else "0"
    close = "" if protocol == "1.0" else "Connection: close\r\n"
    return (
        f"GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
    ).encode("latin-1")


def parseStatusCode(header: bytes) -> int:
    """
    keepalived's C{extract_status_code}: the 3 digits between the first space
    of the status line and a following space, else 0.
    """
    i = 0
    n = len(header)
    while i < n and header[i] not in b" \r":
        i += 1
    if i >= n or header[i] != 0x20:
        return 0
    code = header[i + 1 : i + 4]
    if i + 4 >= n or header[i + 4] != 0x20 or not code.isdigit():
        return 0
    return int(code)


_SPACE = b" \t\r\n\v\f"


def parseContentLength(header: bytes) -> int | None:
    """
    keepalived's C{extract_content_length}: first case-sensitive
    C{Content-Length:} anywhere in the header, C{strtoul} rules, the number
    must end the line.
    """
    i = header.find(b"Content-Length:")
    if i < 0:
        return None
    i += 15
    n = len(header)
    while i < n and header[i] in _SPACE:
        i += 1
    negative = False
    if i < n and header[i] in b"+-":
        negative = header[i] == 0x2D
        i += 1
    j = i
    while j < n and 0x30 <= header[j] <= 0x39:
        j += 1
    if j == i or j >= n or header[j] not in b"\r\n":
        return None
    value = int(header[i:j])
    if negative and value:
        return None  # strtoul wraps: effectively "no length"
    if value >= 1 << 64:
        return None
    return value


def isChunked(header: bytes) -> bool:
    """
    @return: whether the header declares C{Transfer-Encoding: ...chunked}.
    """
    if b"chunked" not in header.lower():
        return False
    for line in header.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"transfer-encoding":
            codings = [c.strip() for c in value.lower().split(b",")]
            return codings[-1] == b"chunked"
    return False


# chunk-framing states
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ResponseParser:
    """
    Incremental, sans-I/O parser of one HTTP/1.x response.

    Feed it bytes with L{feed} and call L{eof} on a clean end of stream.

    @ivar complete: the message is over (framing or EOF) or an error occurred.
    @ivar error: why parsing gave up, or L{None}.
    @ivar header: the raw header block, including the final blank line.
    @ivar statusCode: keepalived's status code (0 when malformed).
    @ivar contentLength: keepalived's content length, or L{None}.
    @ivar bodyBytes: body bytes received so far (on the wire).
    """

    def __init__(
        self,
        digest: bool = True,
        decodeChunked: bool = False,
        bodySink: Callable[[bytes], object] | None = None,
    ) -> None:
        self._md5 = hashlib.md5() if digest else None
        self._decode = decodeChunked
        self._sink = bodySink
        self._buf = b""
        self.header: bytes | None = None
        self.complete = False
        self.error: str | None = None
        self.statusCode = 0
        self.contentLength: int | None = None
        self.chunked = False
        self.bodyBytes = 0
        self._hashed = 0
        self._cstate = _SIZE
        self._left = 0
        self._line = b""

    def hexdigest(self) -> str:
        """
        @return: the MD5 of the body hashed so far (lower-case hex).
        """
        return (self._md5 or hashlib.md5()).hexdigest()

    def feed(self, data: bytes) -> None:
        if self.complete:
            return
        if self.header is None:
            old = len(self._buf)
            buf = self._buf + data if old else data
            i = buf.find(b"\r\n\r\n", old - 3 if old > 3 else 0)
            if i < 0:
                if len(buf) > MAX_HEADER:
                    self._fail("header too long")
                self._buf = buf
                return
            self._buf = b""
            self.header = header = buf[: i + 4]
            self.statusCode = parseStatusCode(header)
            self.contentLength = parseContentLength(header)
            self.chunked = isChunked(header)
            data = buf[i + 4 :]
            if not data:
                if self.contentLength == 0 and not self.chunked:
                    self.complete = True
                return
        self._body(data)

    def eof(self) -> None:
        """
        The server closed the connection cleanly.
        """
        if self.chunked and self._decode and not self.complete and self.header is not None:
            self._fail("truncated chunked body")
        self.complete = True

    def _fail(self, why: str) -> None:
        self.error = why
        self.complete = True

    def _emit(self, data: bytes) -> None:
        if self._md5 is not None:
            self._md5.update(data)
        if self._sink is not None:
            self._sink(data)

    def _body(self, data: bytes) -> None:
        n = len(data)
        self.bodyBytes += n
        cl = self.contentLength
        if self.chunked and self._decode:
            self._chunks(data, self._emit)
            return
        if cl is None:
            self._emit(data)
        elif self._hashed < cl:
            take = cl - self._hashed
            self._emit(data if take >= n else data[:take])
            self._hashed += min(take, n)
        if self.chunked:
            self._chunks(data, None)
            if self.error is not None:
                # keepalived does not care about framing: read to EOF
                self.error = None
                self.complete = False
                self.chunked = False
        elif cl is not None and self.bodyBytes >= cl:
            self.complete = True

    def _chunks(self, data: bytes, out: Callable[[bytes], object] | None) -> None:
        pos = 0
        n = len(data)
        while pos < n and not self.complete:
            if self._cstate == _DATA:
                take = min(self._left, n - pos)
                if out is not None:
                    out(data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._cstate = _DATA_END
                continue
            j = data.find(b"\n", pos)
            if j < 0:
                self._line += data[pos:]
                if len(self._line) > 4096:
                    self._fail("bad chunked encoding")
                return
            line = (self._line + data[pos:j]).rstrip(b"\r")
            self._line = b""
            pos = j + 1
            if self._cstate == _SIZE:
                size = line.split(b";", 1)[0].strip()
                try:
                    self._left = int(size, 16)
                except ValueError:
                    self._fail("bad chunked encoding")
                    return
                if self._left < 0:
                    self._fail("bad chunked encoding")
                    return
                self._cstate = _DATA if self._left else _TRAILER
            elif self._cstate == _DATA_END:
                if line:
                    self._fail("bad chunked encoding")
                    return
                self._cstate = _SIZE
            elif not line:  # _TRAILER
                self._cstate = _DONE
                self.complete = True
