# -*- test-case-name: tests.unit.test_genhash -*-
"""
C{genhash}: print the MD5 digest of a web page's body, for HTTP_GET/SSL_GET
C{digest} lines -- keepalived's command, same options and output.

    genhash -s IP -p PORT -u URL [-S] [-I] [-V HOST] [-P 1.0|1.0C|1.1]
            [-t SECS] [-m FWMARK] [-v] [-h]

Output as Debian keepalived 2.2.7: the 32 lower-case hex digits and a newline
on stdout; a response without a header end gives C{no data received from
remote webserver} on stderr; a failed fetch prints keepalived's reason
(C{Connection failed}, C{Timeout WEB read}, ...) on stdout.  All of these
exit 0, like keepalived; usage errors print the usage on stderr and exit 1.
The status code is not checked.  C{-m} (fwmark) is accepted and ignored.
"""

from __future__ import annotations

import getopt
import ipaddress
import sys
from typing import TextIO

from keepalive_tx.check.base import ConnectOptions
from keepalive_tx.check.http import HttpChecker, HttpUrl, StatusCodes
from keepalive_tx.check.tls import TlsClientOptions

DEFAULT_TIMEOUT = 5.0

_SHORT = "hvSs:V:p:u:m:P:t:I"
_LONG = [
    "help",
    "verbose",
    "use-ssl",
    "server=",
    "use-virtualhost=",
    "port=",
    "url=",
    "fwmark=",
    "protocol=",
    "timeout=",
    "use-sni",
]

_USAGE = """\
Usage: {prog} COMMAND [OPTIONS]
Commands:
   -s server-address -p port -u url
   -S -s server-address -p port -u url
   -h

Options:
Either long or short options are allowed.
   --use-ssl         -S       Use SSL connection to remote server.
   --use-sni         -I       Use SNI during SSL handshake (uses virtualhost setting; see -V).
   --server          -s       Use the specified remote server address.
   --port            -p       Use the specified remote server port.
   --url             -u       Use the specified remote server url.
   --use-virtualhost -V       Use the specified virtualhost in GET query.
   --verbose         -v       Use verbose mode output.
   --help            -h       Display this short inlined help screen.
   --fwmark          -m       Use the specified FW mark.
   --protocol        -P       Use the specified HTTP protocol - '1.0', 1.0c', '1.1'.
                                1.0c means 1.0 with 'Connection: close'
   --timeout         -t       Timeout in seconds
"""

HTTP_HEADER_HEXA = "-----------------------[    HTTP Header Buffer    ]-----------------------\n"
HTTP_HEADER_ASCII = "-----------------------[ HTTP Header Ascii Buffer ]-----------------------\n"
HTML_HEADER_HEXA = "-----------------------[        HTML Buffer        ]-----------------------\n"
HTML_HASH = "-----------------------[    HTML hash resulting    ]-----------------------\n"
HTML_HASH_FINAL = "-----------------------[ HTML hash final resulting ]-----------------------\n"


class UsageError(Exception):
    """
    Bad command line; the message (possibly empty) precedes the usage.
    """


class GenhashOptions:
    """
    Parsed genhash options.
    """

    server: str
    port: int
    url: str
    ssl = False
    sni = False
    virtualhost: str | None = None
    protocol = "1.0"
    timeout = DEFAULT_TIMEOUT
    verbose = False
    help = False


def parseArgs(argv: list[str]) -> GenhashOptions:
    """
    @param argv: the arguments, without the program name.
    @raise UsageError: on any error, or for C{-h}.
    """
    try:
        opts, rest = getopt.gnu_getopt(argv, _SHORT, _LONG)
    except getopt.GetoptError as e:
        raise UsageError(str(e)) from None
    o = GenhashOptions()
    server = port = url = None
    for name, value in opts:
        if name in ("-h", "--help"):
            raise UsageError("")
        elif name in ("-v", "--verbose"):
            o.verbose = True
        elif name in ("-S", "--use-ssl"):
            o.ssl = True
        elif name in ("-I", "--use-sni"):
            o.sni = True
        elif name in ("-s", "--server"):
            try:
                server = str(ipaddress.ip_address(value))
            except ValueError:
                raise UsageError(f"server should be an IP, not {value}") from None
        elif name in ("-p", "--port"):
            if not value.isdigit() or not 1 <= int(value) <= 65535:
                raise UsageError(f"invalid port number '{value}'")
            port = int(value)
        elif name in ("-u", "--url"):
            url = value
        elif name in ("-V", "--use-virtualhost"):
            o.virtualhost = value
        elif name in ("-P", "--protocol"):
            if value.upper() not in ("1.0", "1.0C", "1.1"):
                raise UsageError(f"invalid HTTP protocol version '{value}'")
            o.protocol = value.upper()
        elif name in ("-t", "--timeout"):
            try:
                o.timeout = float(value)
            except ValueError:
                raise UsageError(f"invalid timeout '{value}'") from None
            if not o.timeout > 0:
                raise UsageError(f"invalid timeout '{value}'")
        elif name in ("-m", "--fwmark"):
            if not value.isdigit():
                raise UsageError(f"invalid fwmark '{value}'")
    if rest:
        raise UsageError(f"Unexpected argument(s): {' '.join(rest)}")
    if server is None or port is None or url is None:
        raise UsageError("")
    o.server, o.port, o.url = server, port, url
    return o


def dumpBuffer(data: bytes, out: TextIO) -> None:
    """
    keepalived's hex/ASCII dump: C{0000  48 54 ... - ...   HTTP/1.1 ...}.
    """
    for off in range(0, len(data), 16):
        row = data[off : off + 16]
        hexes = [f"{b:02x}" for b in row] + ["  "] * (16 - len(row))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row).ljust(16)
        out.write(f"{off:04d}  {' '.join(hexes[:8])} - {' '.join(hexes[8:])}   {text}\n")


def genhash(reactor, o: GenhashOptions, stdout: TextIO, stderr: TextIO):
    """
    Fetch the page and print the result.

    @return: a Deferred firing when done.
    """
    tls = TlsClientOptions(enableSni=o.sni) if o.ssl else None
    checker = HttpChecker(
        reactor,
        ConnectOptions(o.server, o.port, connectTimeout=o.timeout),
        [HttpUrl(o.url, statusCodes=StatusCodes(((100, 599),)))],
        protocol=o.protocol,
        virtualhost=o.virtualhost,
        tls=tls,
    )
    body: list[bytes] = []
    started = reactor.seconds()
    d = checker.fetch(0, digest=True, bodySink=body.append if o.verbose else None)

    def done(attempt) -> None:
        parser = attempt.parser
        result = attempt.result
        if o.verbose and parser.header is not None:
            stdout.write(HTTP_HEADER_HEXA)
            dumpBuffer(parser.header, stdout)
            stdout.write(HTTP_HEADER_ASCII)
            stdout.write(parser.header.decode("latin-1") + "\n")
            if body:
                stdout.write(HTML_HEADER_HEXA)
                dumpBuffer(b"".join(body), stdout)
        if parser.header is None:
            if result.reason.startswith("Read, "):
                stderr.write("no data received from remote webserver\n")
            else:
                stdout.write(result.reason + "\n")
        elif not parser.complete:
            stdout.write(result.reason + "\n")
        else:
            digest = parser.hexdigest()
            if o.verbose:
                stdout.write("\n" + HTML_HASH)
                dumpBuffer(bytes.fromhex(digest), stdout)
                stdout.write(HTML_HASH_FINAL)
            stdout.write(digest + "\n")
        if o.verbose:
            usecs = int((reactor.seconds() - started) * 1e6)
            stdout.write(f"\nGlobal response time for [{o.url}] = {usecs} usecs\n")

    return d.addCallback(done)


def main(argv: list[str] | None = None) -> None:
    """
    Console-script entry point (C{genhash = keepalive_tx.genhash:main}).
    """
    from twisted.internet.task import react

    if argv is None:
        argv = sys.argv
    try:
        o = parseArgs(list(argv[1:]))
    except UsageError as e:
        if str(e):
            sys.stderr.write(f"{e}\n")
        sys.stderr.write(_USAGE.format(prog=argv[0] if argv else "genhash"))
        sys.exit(1)
    react(lambda reactor: genhash(reactor, o, sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
