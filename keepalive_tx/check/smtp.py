# -*- test-case-name: tests.unit.test_check_smtp -*-
"""
SMTP_CHECK (keepalived's C{check_smtp.c}): connect, expect a C{220} banner,
send C{HELO <helo_name>}, expect C{250}, send C{QUIT}, expect C{221}.

One C{connectTCP} to an IP literal per attempt (no resolver).
C{connect_timeout} bounds the connect and then each wait for a reply.
Multi-line replies (C{220-...} continuation lines) are read to their last
line, whose code decides (keepalived only looks at the first line of each
read, which breaks on multi-line banners).  Legacy C{host {}} blocks are
expanded by the config model into one checker per endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from keepalive_tx.check.base import CheckResult, ConnectOptions
from keepalive_tx.check.udp import connectOptionsFrom

if TYPE_CHECKING:
    from twisted.internet.interfaces import IConnector, IDelayedCall

    from keepalive_tx.config.model_lvs import SmtpCheck

DEFAULT_HELO = "smtpchecker.keepalived.org"

#: the dialogue: (expected code, failure reason, next command or None)
_STEPS = (
    (220, "Bad greeting banner from", "HELO"),
    (250, "Bad HELO response from", "QUIT"),
    (221, "Bad QUIT response from", None),
)


class _SmtpProtocol(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 4096

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt
        self.step = 0

    def connectionMade(self) -> None:
        self.attempt.connected(self)

    def lineReceived(self, line: bytes) -> None:
        if self.step >= len(_STEPS) or self.attempt.deferred is None:
            return  # already decided
        line = line.rstrip(b"\r")
        if len(line) >= 4 and line[3:4] == b"-":
            return  # continuation of a multi-line reply
        code = int(line[:3]) if len(line) >= 3 and line[:3].isdigit() else -1
        expected, reason, command = _STEPS[self.step]
        if code != expected:
            self.attempt.fail(reason)
            return
        self.step += 1
        if command is None:
            self.attempt.succeed()
            return
        if command == "HELO":
            self.sendLine(b"HELO " + self.attempt.checker.heloName.encode("ascii", "replace"))
        else:
            self.sendLine(b"QUIT")
        self.attempt.armTimer()

    def sendLine(self, line: bytes) -> None:
        self.transport.write(line + b"\r\n")

    def lineLengthExceeded(self, line: bytes) -> None:
        self.attempt.fail("Line too long from")

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        self.attempt.fail("Read failure from")


class _Factory(ClientFactory):
    noisy = False

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt

    def buildProtocol(self, addr: Any) -> _SmtpProtocol:
        return _SmtpProtocol(self.attempt)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        if reason.check(error.TimeoutError):
            self.attempt.fail("Connection timeout to")
        else:
            self.attempt.fail("Error connecting to")


class _Attempt:
    def __init__(self, checker: SmtpChecker) -> None:
        self.checker = checker
        self.deferred: Deferred[CheckResult] | None = Deferred(self._cancel)
        self.connector: IConnector | None = None
        self.protocol: _SmtpProtocol | None = None
        self.timer: IDelayedCall | None = None

    def connected(self, protocol: _SmtpProtocol) -> None:
        self.protocol = protocol
        self.armTimer()

    def armTimer(self) -> None:
        self._disarm()
        self.timer = self.checker.reactor.callLater(
            self.checker.options.connectTimeout, self._timedOut
        )

    def _disarm(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _timedOut(self) -> None:
        self.timer = None
        self.fail("Read timeout from")

    def _close(self) -> None:
        self._disarm()
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.abortConnection()
        elif self.connector is not None:
            self.connector.disconnect()

    def succeed(self) -> None:
        d, self.deferred = self.deferred, None
        self._disarm()
        if self.protocol is not None:
            self.protocol.transport.loseConnection()
        if d is not None:
            d.callback(CheckResult(True))

    def fail(self, reason: str) -> None:
        d, self.deferred = self.deferred, None
        if d is None:
            return
        self._close()
        d.callback(CheckResult(False, reason))

    def _cancel(self, d: Deferred[CheckResult]) -> None:
        self.deferred = None
        self._close()
        d.callback(CheckResult(False, "SMTP check cancelled to"))


class SmtpChecker:
    """
    One SMTP_CHECK endpoint.
    """

    kind = "SMTP_CHECK"

    def __init__(self, reactor: Any, options: ConnectOptions, heloName: str = DEFAULT_HELO) -> None:
        """
        @param reactor: an C{IReactorTCP} and C{IReactorTime}.
        """
        self.reactor = reactor
        self.options = options
        self.heloName = heloName
        self._bind = options.bindAddress()
        self._description = options.describe()

    @classmethod
    def fromConfig(cls, reactor: Any, config: SmtpCheck) -> SmtpChecker:
        return cls(reactor, connectOptionsFrom(config), config.heloName)

    def describe(self) -> str:
        return self._description

    def check(self, target: int = 0) -> Deferred[CheckResult]:
        """
        Run the dialogue once.

        @return: a Deferred firing with a L{CheckResult}; it never fails;
            cancelling it aborts the connection.
        """
        o = self.options
        attempt = _Attempt(self)
        d = attempt.deferred
        try:
            attempt.connector = self.reactor.connectTCP(
                o.connectIp, o.connectPort, _Factory(attempt), o.connectTimeout, self._bind
            )
        except Exception as e:  # e.g. bad bind address
            attempt.fail(f"SMTP socket error ({e}) to")
        return d
