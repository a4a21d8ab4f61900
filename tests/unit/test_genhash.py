"""
Tests for L{keepalive_tx.genhash}: option parsing and output, no sockets.
"""

from __future__ import annotations

import hashlib
import io

from twisted.internet import error
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx import genhash


class ParseArgsTests(SynchronousTestCase):
    """
    keepalived's genhash options.
    """

    def test_mandatory(self) -> None:
        """
        -s, -p and -u are mandatory.
        """
        for argv in ([], ["-s", "127.0.0.1", "-p", "80"], ["-p", "80", "-u", "/"]):
            self.assertRaises(genhash.UsageError, genhash.parseArgs, argv)

    def test_full(self) -> None:
        """
        All options, short and long.
        """
        o = genhash.parseArgs(
            [
                "-S",
                "-I",
                "--server",
                "::1",
                "-p",
                "443",
                "-u",
                "/x",
                "-V",
                "www",
                "-P",
                "1.0c",
                "-t",
                "2",
                "-v",
            ]
        )
        self.assertEqual(
            (
                o.ssl,
                o.sni,
                o.server,
                o.port,
                o.url,
                o.virtualhost,
                o.protocol,
                o.timeout,
                o.verbose,
            ),
            (True, True, "::1", 443, "/x", "www", "1.0C", 2.0, True),
        )

    def test_messages(self) -> None:
        """
        keepalived's error messages.
        """
        cases = {
            ("-s", "localhost", "-p", "1", "-u", "/"): "server should be an IP, not localhost",
            ("-s", "127.0.0.1", "-p", "abc", "-u", "/"): "invalid port number 'abc'",
            (
                "-s",
                "127.0.0.1",
                "-p",
                "1",
                "-u",
                "/",
                "-P",
                "2.0",
            ): "invalid HTTP protocol version '2.0'",
            ("-s", "127.0.0.1", "-p", "1", "-u", "/", "-t", "abc"): "invalid timeout 'abc'",
            ("-s", "127.0.0.1", "-p", "1", "-u", "/", "extra"): "Unexpected argument(s): extra",
        }
        for argv, message in cases.items():
            e = self.assertRaises(genhash.UsageError, genhash.parseArgs, list(argv))
            self.assertEqual(str(e), message)

    def test_mainUsage(self) -> None:
        """
        main() prints the usage on stderr and exits 1.
        """
        err = io.StringIO()
        self.patch(genhash.sys, "stderr", err)
        e = self.assertRaises(SystemExit, genhash.main, ["genhash", "-s", "localhost"])
        self.assertEqual(e.code, 1)
        self.assertTrue(
            err.getvalue().startswith("server should be an IP, not localhost\nUsage: genhash")
        )


class OutputTests(SynchronousTestCase):
    """
    What genhash prints.
    """

    def fetch(self, answer: bytes | None, verbose: bool = False, lost=error.ConnectionDone):
        reactor = MemoryReactorClock()
        argv = ["-s", "192.0.2.1", "-p", "80", "-u", "/p"] + (["-v"] if verbose else [])
        out, err = io.StringIO(), io.StringIO()
        d = genhash.genhash(reactor, genhash.parseArgs(argv), out, err)
        factory = reactor.tcpClients[0][2]
        if answer is None:
            factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
        else:
            proto = factory.buildProtocol(None)
            t = StringTransport()
            proto.makeConnection(t)
            self.assertEqual(
                t.value(),
                b"GET /p HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:80\r\n\r\n",
            )
            proto.dataReceived(answer)
            proto.connectionLost(Failure(lost()))
        self.successResultOf(d)
        return out.getvalue(), err.getvalue()

    def test_digest(self) -> None:
        """
        32 lower-case hex digits of the body, whatever the status.
        """
        out, err = self.fetch(b"HTTP/1.0 404 Not found\r\nA: b\r\n\r\nbody")
        self.assertEqual((out, err), (hashlib.md5(b"body").hexdigest() + "\n", ""))

    def test_noData(self) -> None:
        """
        No header end: message on stderr.
        """
        self.assertEqual(self.fetch(b""), ("", "no data received from remote webserver\n"))

    def test_connectionFailed(self) -> None:
        """
        Refused: keepalived's reason on stdout.
        """
        self.assertEqual(self.fetch(None), ("Connection failed\n", ""))

    def test_readError(self) -> None:
        """
        A reset after the header: "Read error with".
        """
        self.assertEqual(
            self.fetch(b"HTTP/1.0 200 OK\r\n\r\nab", lost=error.ConnectionLost)[0],
            "Read error with\n",
        )

    def test_verbose(self) -> None:
        """
        Verbose output has keepalived's banners and hex dumps.
        """
        out, _ = self.fetch(b"HTTP/1.1 200 OK\r\n\r\nhi", verbose=True)
        self.assertIn(
            genhash.HTTP_HEADER_HEXA
            + "0000  48 54 54 50 2f 31 2e 31 - 20 32 30 30 20 4f 4b 0d   HTTP/1.1 200 OK.\n",
            out,
        )
        self.assertIn(genhash.HTML_HASH_FINAL + hashlib.md5(b"hi").hexdigest() + "\n", out)
        self.assertIn("Global response time for [/p] = ", out)
