"""
Integration tests: MISC_CHECK (and the script runner) with real processes,
SMTP_CHECK against twisted.mail and aiosmtpd, DNS_CHECK against a
twisted.names server, UDP_CHECK and PING_CHECK on loopback (and PING inside a
lab namespace), FILE_CHECK with real files and inotify.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap

from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.mail import smtp
from twisted.names import authority, dns, server
from twisted.trial.unittest import SkipTest, TestCase

from keepalive_tx.check.base import ConnectOptions
from keepalive_tx.check.dns import DnsChecker
from keepalive_tx.check.file import FileChecker
from keepalive_tx.check.misc import MiscChecker
from keepalive_tx.check.ping import PingChecker
from keepalive_tx.check.smtp import SmtpChecker
from keepalive_tx.check.udp import UdpChecker
from keepalive_tx.config.model import Script
from keepalive_tx.config.model_lvs import HexPattern
from keepalive_tx.scripts.procgroup import _PGID_SHIM
from keepalive_tx.scripts.runner import ScriptRunner
from tests.integration.netns import makeLab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def freePort(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


@defer.inlineCallbacks
def waitFor(predicate, timeout: float = 10.0, step: float = 0.02):
    """
    Poll C{predicate} on the reactor until true (fail after C{timeout}).
    """
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            raise AssertionError("condition not reached")
        yield task.deferLater(reactor, step, lambda: None)
        waited += step


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class ScriptTests(TestCase):
    """
    Real processes through L{ScriptRunner} and L{MiscChecker}.
    """

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)

    def script(self, body: str, name: str = "s.sh", mode: int = 0o755) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + textwrap.dedent(body))
        os.chmod(path, mode)
        return path

    def misc(self, path: str, *args: str, **kw) -> MiscChecker:
        script = Script(command=path, argv=(path, *args))
        return MiscChecker(reactor, script, kw.pop("timeout", 10), rsAddress="127.0.0.1", **kw)

    @defer.inlineCallbacks
    def test_exitStatuses(self) -> None:
        """
        Exit 0 is up; 1 is down; with misc_dynamic 12 is up with weight 10.
        """
        path = self.script('exit "$1"\n')
        r0 = yield self.misc(path, "0").check()
        r1 = yield self.misc(path, "1").check()
        r12 = yield self.misc(path, "12", dynamic=True, rsWeight=1).check()
        self.assertEqual((r0.ok, r1.ok, r12.ok, r12.weightDelta), (True, False, True, 9))
        self.assertIn("exited with status 1", r1.logLine(""))

    @defer.inlineCallbacks
    def test_hangingScriptGroupKilled(self) -> None:
        """
        A script outliving misc_timeout fails as "timed out", and the child
        it started in the background dies with it (process group kill).
        """
        pidfile = os.path.join(self.dir, "child.pid")
        path = self.script(f"sleep 60 &\necho $! > {pidfile}\nwait\n")
        result = yield self.misc(path, timeout=0.5).check()
        self.assertEqual(result.reason, "timed out")
        with open(pidfile) as f:
            child = int(f.read())
        yield waitFor(lambda: not alive(child), timeout=5)

    @defer.inlineCallbacks
    def test_termIgnoredThenKilled(self) -> None:
        """
        A script ignoring SIGTERM is SIGKILLed killDelay later.
        """
        path = self.script("trap '' TERM\nwhile :; do sleep 0.05; done\n")
        runner = ScriptRunner(reactor, [path], timeout=0.3, killDelay=0.3)
        result = yield runner.run()
        self.assertTrue(result.timedOut)
        self.assertEqual(result.signal, signal.SIGKILL)
        self.assertEqual(runner.running, 0)

    @defer.inlineCallbacks
    def test_environmentAndProcessGroup(self) -> None:
        """
        The child runs in its own process group (pgid == pid), with IFS,
        LD_PRELOAD and LD_LIBRARY_PATH removed from its environment -- with
        setsid(1) and with the Python shim.
        """
        out = os.path.join(self.dir, "out")
        path = self.script(f'cut -d" " -f5 /proc/$$/stat > {out}\necho $$ >> {out}\n'
                           f"env >> {out}\n")
        environ = dict(os.environ, IFS="+", LD_LIBRARY_PATH="/nonexistent", KTX_MARK="kept")
        wrappers = [[sys.executable, "-S", "-c", _PGID_SHIM]]
        if shutil.which("setsid"):
            wrappers.append([shutil.which("setsid")])
        for wrapper in wrappers:
            result = yield ScriptRunner(reactor, [path], environ=environ,
                                        groupWrapper=wrapper).run()
            self.assertTrue(result.ok, result)
            with open(out) as f:
                lines = f.read().splitlines()
            self.assertEqual(lines[0], lines[1], wrapper)
            self.assertNotEqual(int(lines[0]), os.getpgrp())
            self.assertIn("KTX_MARK=kept", lines)
            self.assertFalse([x for x in lines if x.startswith(("IFS=", "LD_LIBRARY_PATH="))])

    @defer.inlineCallbacks
    def test_notRunnableDisabled(self) -> None:
        """
        A script without x bit and an unknown command are disabled, as
        keepalived disables them: nothing starts, the run reports why.
        """
        path = self.script('exit "$1"\n', mode=0o644)
        result = yield ScriptRunner(reactor, [path, "7"]).run()
        self.assertIsNone(result.exitCode)
        self.assertIn("is not executable", result.error)
        missing = ScriptRunner(reactor, ["no-such-command-ktx"])
        self.assertEqual(missing.disabledReason, "since not found/accessible")

    @defer.inlineCallbacks
    def test_exitEndsLeftovers(self) -> None:
        """
        A script that starts C{sleep 60 &} and exits succeeds at once, and
        the sleep is ended (SIGTERM to the script's process group).
        """
        pidfile = os.path.join(self.dir, "child.pid")
        path = self.script(f"sleep 60 &\necho $! > {pidfile}\nexit 0\n")
        misc = self.misc(path, timeout=30)
        self.addCleanup(misc.runner.killAll)  # the pending SIGKILL of leftovers
        result = yield misc.check()
        self.assertTrue(result.ok, result)
        with open(pidfile) as f:
            child = int(f.read())
        yield waitFor(lambda: not alive(child), timeout=1)

    @defer.inlineCallbacks
    def test_user(self) -> None:
        """
        C{user nobody} runs the script as nobody.
        """
        if os.geteuid() != 0:
            raise SkipTest("needs root to change user")
        os.chmod(self.dir, 0o777)
        out = os.path.join(self.dir, "id")
        path = self.script(f"id -u > {out}\n")
        os.chmod(os.path.dirname(self.dir), 0o755)
        import pwd

        result = yield ScriptRunner(reactor, [path], "nobody").run()
        self.assertTrue(result.ok, result)
        with open(out) as f:
            self.assertEqual(int(f.read()), pwd.getpwnam("nobody").pw_uid)


class RecordingESMTP(smtp.ESMTP):
    helos: list[bytes] = []

    def do_HELO(self, rest):
        self.helos.append(rest)
        return super().do_HELO(rest)


class Silent(Protocol):
    pass


class SmtpTests(TestCase):
    def listen(self, protocol) -> int:
        f = Factory.forProtocol(protocol)
        f.noisy = False
        p = reactor.listenTCP(0, f, interface="127.0.0.1")
        self.addCleanup(p.stopListening)
        return p.getHost().port

    def smtp(self, port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> SmtpChecker:
        return SmtpChecker(reactor, ConnectOptions(host, port, connectTimeout=timeout), "lb.test")

    @defer.inlineCallbacks
    def test_twistedMail(self) -> None:
        RecordingESMTP.helos = []

        def build():
            p = RecordingESMTP()
            p.host = b"mx.test"
            return p

        result = yield self.smtp(self.listen(build)).check()
        self.assertTrue(result.ok, result)
        self.assertEqual(RecordingESMTP.helos, [b"lb.test"])

    @defer.inlineCallbacks
    def test_aiosmtpd(self) -> None:
        """
        A real, independent SMTP server (aiosmtpd) in a subprocess.
        """
        try:
            import aiosmtpd  # noqa: F401
        except ImportError as e:
            if os.environ.get("CI"):
                raise AssertionError("aiosmtpd missing (CI must install it)") from e
            raise SkipTest("aiosmtpd is not installed") from e
        port = freePort()
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        checker = self.smtp(port, timeout=1)
        for _ in range(100):
            result = yield checker.check()
            if result.reason != "Error connecting to":
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertTrue(result.ok, result)

    @defer.inlineCallbacks
    def test_failures(self) -> None:
        refused = yield self.smtp(freePort()).check()
        silent = yield self.smtp(self.listen(Silent), timeout=0.3).check()
        self.assertEqual(refused.reason, "Error connecting to")
        self.assertEqual(silent.reason, "Read timeout from")


class Silence(DatagramProtocol):
    noisy = False

    def datagramReceived(self, data, addr) -> None:
        self.last = data


class Echo(DatagramProtocol):
    noisy = False

    def __init__(self, answer: bytes | None = None) -> None:
        self.answer = answer

    def datagramReceived(self, data, addr) -> None:
        self.transport.write(self.answer if self.answer is not None else data, addr)


class DnsTests(TestCase):
    def setUp(self) -> None:
        zone = os.path.abspath(self.mktemp())
        with open(zone, "w") as f:
            f.write(textwrap.dedent("""\
                zone = [
                    SOA('example.test', mname='ns1.example.test', rname='root.example.test',
                        serial=1, refresh=3600, retry=600, expire=86400, minimum=60),
                    A('www.example.test', '192.0.2.80'),
                ]
            """))
        factory = server.DNSServerFactory(authorities=[authority.PySourceAuthority(zone)])
        factory.noisy = False
        proto = dns.DNSDatagramProtocol(factory)
        proto.noisy = False
        self.port = reactor.listenUDP(0, proto, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    def dns(self, port: int, qtype: str, name: str, timeout: float = 2.0) -> DnsChecker:
        return DnsChecker(reactor, ConnectOptions("127.0.0.1", port, connectTimeout=timeout),
                          qtype, name)

    @defer.inlineCallbacks
    def test_twistedNamesServer(self) -> None:
        """
        SOA and A queries the server answers succeed; NXDOMAIN fails.
        """
        port = self.port.getHost().port
        soa = yield self.dns(port, "SOA", "example.test").check()
        a = yield self.dns(port, "A", "www.example.test.").check()
        nx = yield self.dns(port, "A", "nope.example.test").check()
        self.assertEqual((soa.ok, a.ok), (True, True))
        self.assertEqual(nx.reason, "read error occurred. (rcode = 3)")

    @defer.inlineCallbacks
    def test_timeoutAndRefused(self) -> None:
        silent = reactor.listenUDP(0, Silence(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        timeout = yield self.dns(silent.getHost().port, "SOA", ".", timeout=0.3).check()
        refused = yield self.dns(freePort(socket.SOCK_DGRAM), "SOA", ".").check()
        self.assertEqual(timeout.reason, "read timeout from socket")
        self.assertIn("Connection refused", refused.reason)


class UdpTests(TestCase):
    def listen(self, proto, host: str = "127.0.0.1") -> int:
        p = reactor.listenUDP(0, proto, interface=host)
        self.addCleanup(p.stopListening)
        return p.getHost().port

    def udp(self, port: int, host: str = "127.0.0.1", timeout: float = 0.5, **kw) -> UdpChecker:
        return UdpChecker(reactor, ConnectOptions(host, port, connectTimeout=timeout), **kw)

    @defer.inlineCallbacks
    def test_noErrorAndRefused(self) -> None:
        silent = Silence()
        ok = yield self.udp(self.listen(silent)).check()
        refused = yield self.udp(freePort(socket.SOCK_DGRAM), timeout=2).check()
        refused6 = yield self.udp(freePort(socket.SOCK_DGRAM, "::1"), "::1", timeout=2).check()
        self.assertTrue(ok.ok)
        self.assertEqual(len(silent.last), 16)
        self.assertFalse(refused.ok)
        self.assertFalse(refused6.ok)
        self.assertIn("Connection refused", refused.reason)

    @defer.inlineCallbacks
    def test_requireReply(self) -> None:
        """
        Echoed payloads match a pattern with wildcards; another answer and
        silence fail.
        """
        pattern = HexPattern(bytes([0xDE, 0xA0]), bytes([0x00, 0x0F]))
        echo = self.listen(Echo())
        good = yield self.udp(echo, payload=b"\xde\xad", requireReply=pattern).check()
        bad = yield self.udp(self.listen(Echo(b"\x00\x00")), payload=b"\xde\xad",
                             requireReply=pattern).check()
        short = yield self.udp(echo, payload=b"\xde\xad", requireReply=True,
                               minReplyLength=3).check()
        none = yield self.udp(self.listen(Silence()), requireReply=True, timeout=0.2).check()
        self.assertEqual((good.ok, bad.ok, short.ok, none.ok), (True, False, False, False))


class PingTests(TestCase):
    @defer.inlineCallbacks
    def test_loopback(self) -> None:
        """
        127.0.0.1 and ::1 answer, with whichever socket kind is allowed.
        """
        v4 = PingChecker(reactor, ConnectOptions("127.0.0.1", 0, connectTimeout=2))
        v6 = PingChecker(reactor, ConnectOptions("::1", 0, connectTimeout=2))
        r4 = yield v4.check()
        r6 = yield v6.check()
        if not r4.ok and "socket error" in r4.reason:
            if os.environ.get("CI"):
                raise AssertionError(r4.reason)
            raise SkipTest(f"no ICMP socket available: {r4.reason}")
        self.assertTrue(r4.ok, r4)
        self.assertTrue(r6.ok, r6)

    @defer.inlineCallbacks
    def test_rawSocket(self) -> None:
        """
        Raw sockets (the fallback when ping_group_range refuses us).
        """
        if os.geteuid() != 0:
            raise SkipTest("raw sockets need root")

        def noPingSocket(family, kind, proto=0):
            if kind == socket.SOCK_DGRAM:
                raise PermissionError(13, "Permission denied")
            return socket.socket(family, kind, proto)

        for target in ("127.0.0.1", "::1"):
            c = PingChecker(reactor, ConnectOptions(target, 0, connectTimeout=2),
                            socketFactory=noPingSocket)
            result = yield c.check()
            self.assertTrue(c.useRaw)
            self.assertTrue(result.ok, (target, result))

    def test_labNamespace(self) -> None:
        """
        In a lab namespace (where ping sockets are off by default): h2
        answers, an absent address times out.
        """
        lab = makeLab(self, 2)
        h1, h2 = lab.hosts
        code = textwrap.dedent(f"""\
            import sys
            sys.path.insert(0, {REPO!r})
            from twisted.internet import defer, task
            from keepalive_tx.check.base import ConnectOptions
            from keepalive_tx.check.ping import PingChecker

            def main(reactor):
                ds = []
                for t in sys.argv[1:]:
                    c = PingChecker(reactor, ConnectOptions(t, 0, connectTimeout=1))
                    ds.append(c.check().addCallback(
                        lambda r, t=t: print(t, r.ok, r.reason, flush=True)))
                return defer.gatherResults(ds)

            task.react(main)
        """)
        out = h1.run(sys.executable, "-c", code, h2.ipv4, "192.0.2.99", h2.ipv6).stdout
        lines = {line.split()[0]: line for line in out.splitlines()}
        self.assertIn(" True", lines[h2.ipv4])
        self.assertIn(" True", lines[h2.ipv6])
        self.assertIn("False ICMP connection timeout", lines["192.0.2.99"])


class FileTests(TestCase):
    @defer.inlineCallbacks
    def test_inotify(self) -> None:
        """
        Writes and rename-replacements are seen through inotify (the
        fallback read is an hour away).
        """
        d = os.path.abspath(self.mktemp())
        os.makedirs(d)
        path = os.path.join(d, "weight")
        with open(path, "w") as f:
            f.write("2\n")
        results = []
        c = FileChecker(reactor, path, weight=3, delayLoop=3600)
        c.start(results.append)
        self.addCleanup(c.stop)
        self.assertEqual([r.weightDelta for r in results], [6])
        with open(path, "w") as f:
            f.write("5\n")
        yield waitFor(lambda: len(results) == 2)
        tmp = os.path.join(d, "tmp")
        with open(tmp, "w") as f:
            f.write("-2147483648")
        os.rename(tmp, path)
        yield waitFor(lambda: len(results) == 3)
        os.unlink(path)
        yield waitFor(lambda: len(results) == 4)
        self.assertEqual([(r.ok, r.weightDelta) for r in results],
                         [(True, 6), (True, 15), (False, 0), (True, 0)])
