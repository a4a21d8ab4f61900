# -*- test-case-name: tests.unit.test_check_leantcp -*-
"""
A lean non-blocking TCP client connection for health checks.

C{reactor.connectTCP} costs about as much CPU as the rest of a health check:
a connector, a client transport, a C{callLater(0)} to "resolve" an IP
literal, a connect-timeout DelayedCall, log prefixes and a new
L{Failure} when the connection closes.  A checker that opens thousands of
short connections per second and needs none of that uses L{LeanConnection}
instead: one socket registered directly with the reactor's file-descriptor
set (C{addReader}/C{addWriter}, so it needs an L{IReactorFDSet} reactor that
polls real file descriptors: epoll, poll, select), no timer (the check owns
its single DelayedCall) and shared L{Failure}s for the ends of a connection.

The peer is one object that is both the connection's "factory" and its
protocol (the checkers' attempt objects):

  - C{clientConnectionFailed(connection, reason)} when the connect fails;
  - C{makeConnection(connection)} when it succeeds (L{IProtocol});
  - C{dataReceived(data)} and C{connectionLost(reason)} afterwards;
    C{connectionLost} is called exactly once after C{makeConnection}, also
    when the peer itself closes or aborts the connection.

The connection lets go of the peer once it has reported the end
(C{connectionLost} or C{clientConnectionFailed}): the peer usually holds
the connection too (as its transport), and that cycle would otherwise make
every check garbage for the cyclic collector, whose collections then run
about 15 times a second at 5,000 checks/s (each a pause of the reactor).

The OS layer (C{socket.socket}) is injectable for tests.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import error
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorFDSet

_CONNECTED = (0, errno.EISCONN)
_IN_PROGRESS = (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK, errno.EINTR)
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_SOCK_FLAGS = getattr(socket, "SOCK_NONBLOCK", 0) | getattr(socket, "SOCK_CLOEXEC", 0)
#: shared, immutable failures (one per reason, not one per connection)
CONNECTION_DONE = Failure(error.ConnectionDone())
CONNECTION_LOST = Failure(error.ConnectionLost())
CONNECTION_ABORTED = Failure(error.ConnectionAborted())
#: bytes asked for per C{recv}: a health-check answer is small
RECV_SIZE = 65536


def sockaddrFor(host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    """
    The address family and socket address of an IP literal, without DNS
    (C{AI_NUMERICHOST}; IPv6 scope ids like C{fe80::1%eth0} are resolved).

    @raise OSError: C{host} is not an IP literal (C{socket.gaierror}).
    """
    if ":" not in host:
        socket.inet_pton(socket.AF_INET, host)  # strict dotted quad
        return socket.AF_INET, (host, port)
    family, _, _, _, addr = socket.getaddrinfo(
        host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
    )[0]
    return family, addr


def leanTarget(
    options: Any, bind: tuple[str, int] | None
) -> tuple[int, tuple[Any, ...], tuple[Any, ...] | None] | None:
    """
    The socket family, peer address and bind address for a lean check of
    C{options} (a L{ConnectOptions}), or C{None} when they are not IP
    literals (the check then goes through C{connectTCP}, which reports the
    error per check).
    """
    try:
        family, addr = sockaddrFor(options.connectIp, options.connectPort)
        leanBind = sockaddrFor(*bind)[1] if bind is not None else None
    except (OSError, ValueError):
        return None
    return family, addr, leanBind


class LeanTargetMixin:
    """
    The lean-path state of a TCP or HTTP checker: whether it connects
    through L{LeanConnection} and to which family, address and bind address.

    @ivar lean: the lean path is used.
    @ivar socketFactory: makes the socket (tests replace it).
    """

    lean: bool
    socketFactory: Callable[..., Any]
    _family: int
    _addr: tuple[Any, ...]
    _leanBind: tuple[Any, ...] | None

    def _prepareLean(self, options: Any, bind: tuple[str, int] | None, wanted: bool) -> None:
        """
        Use the lean path if C{wanted} and C{options} names IP literals
        (see L{leanTarget}).
        """
        self.lean = wanted
        self.socketFactory = socket.socket
        self._family, self._addr, self._leanBind = 0, (), None
        if self.lean:
            target = leanTarget(options, bind)
            if target is None:
                self.lean = False
            else:
                self._family, self._addr, self._leanBind = target


class LeanConnection:
    """
    One client TCP connection driven by the reactor's fd set.

    Provides the transport methods the checkers use: C{write},
    C{loseConnection}, C{abortConnection}, C{getPeer}-less.  Also the
    connector method C{disconnect} (stop connecting, or abort).

    @ivar connected: the TCP handshake completed.
    @ivar disconnected: the socket is closed.
    """

    __slots__ = (
        "reactor",
        "peer",
        "family",
        "addr",
        "bindAddr",
        "connected",
        "disconnected",
        "disconnecting",
        "_sock",
        "_fd",
        "_out",
        "_reading",
        "_writing",
    )

    def __init__(
        self,
        reactor: IReactorFDSet,
        family: int,
        addr: tuple[Any, ...],
        bindAddr: tuple[Any, ...] | None,
        peer: Any,
    ) -> None:
        self.reactor = reactor
        self.family = family
        self.addr = addr
        self.bindAddr = bindAddr
        self.peer = peer
        self.connected = False
        self.disconnected = False
        self.disconnecting = False
        self._sock: Any = None
        self._fd = -1
        self._out = b""
        self._reading = False
        self._writing = False

    # -- IFileDescriptor ----------------------------------------------------

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return "LeanConnection"

    # -- connecting ---------------------------------------------------------

    def connect(self, socketFactory: Callable[..., Any] = socket.socket) -> None:
        """
        Open the socket and start connecting; the outcome is reported to the
        peer (possibly before this returns).
        """
        try:
            s = socketFactory(self.family, socket.SOCK_STREAM | _SOCK_FLAGS)
        except OSError as e:
            self._failConnect(error.ConnectError(string=str(e)))
            return
        self._sock = s
        self._fd = s.fileno()
        try:
            if not _SOCK_FLAGS:  # pragma: no cover - Linux has SOCK_NONBLOCK
                s.setblocking(False)
            if self.bindAddr is not None:
                s.bind(self.bindAddr)
        except OSError as e:
            self._failConnect(error.ConnectBindError(e.errno, e.strerror))
            return
        self._connectStep(s.connect_ex(self.addr))

    def _connectStep(self, err: int) -> None:
        if err in _CONNECTED:
            self._connected()
        elif err in _IN_PROGRESS:
            if not self._writing:
                self._writing = True
                self.reactor.addWriter(self)  # type: ignore[arg-type]
        else:
            self._failConnect(error.getConnectError((err, os.strerror(err))))

    def _failConnect(self, exc: Exception) -> None:
        self._close()
        peer, self.peer = self.peer, None
        if peer is not None:
            peer.clientConnectionFailed(self, Failure(exc))

    def _connected(self) -> None:
        self.connected = True
        self.peer.makeConnection(self)
        if self.disconnected:
            return
        if not self._out and self._writing:
            self._writing = False
            self.reactor.removeWriter(self)  # type: ignore[arg-type]
        if not self._reading and not self.disconnecting:
            self._reading = True
            self.reactor.addReader(self)  # type: ignore[arg-type]

    # -- reactor callbacks --------------------------------------------------

    def doWrite(self) -> None:
        if self.disconnected:
            return None
        if not self.connected:
            s = self._sock
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self._connectStep(err or s.connect_ex(self.addr))
            return None
        if self._out:
            self._send()
        if not self._out and self._writing:
            self._writing = False
            self.reactor.removeWriter(self)  # type: ignore[arg-type]
            if self.disconnecting:
                self._lost(CONNECTION_DONE)
        return None

    def doRead(self) -> None:
        if self.disconnected:
            return None
        try:
            data = self._sock.recv(RECV_SIZE)
        except OSError as e:
            if e.errno in _RETRY:
                return None
            self._lost(CONNECTION_LOST)
            return None
        if data:
            self.peer.dataReceived(data)
        else:
            self._lost(CONNECTION_DONE)
        return None

    def connectionLost(self, reason: Failure) -> None:
        """
        Called by the reactor: error or hang-up event, or reactor shutdown.
        """
        if self.disconnected:
            return
        if not self.connected:
            err = 0
            try:
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError:
                pass
            exc = (
                error.getConnectError((err, os.strerror(err)))
                if err
                else error.ConnectError(string=str(reason.value))
            )
            self._failConnect(exc)
            return
        self._lost(reason)

    # -- transport ----------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.disconnected or self.disconnecting or not data:
            return
        if self._out:
            self._out += data
            return
        self._out = data
        self._send()
        if self._out and not self._writing and not self.disconnected:
            self._writing = True
            self.reactor.addWriter(self)  # type: ignore[arg-type]

    def _send(self) -> None:
        try:
            n = self._sock.send(self._out)
        except OSError as e:
            if e.errno in _RETRY:
                return
            self._out = b""
            self._lost(CONNECTION_LOST)
            return
        self._out = self._out[n:]

    def loseConnection(self) -> None:
        """
        Close once pending data is sent.
        """
        if self.disconnected or self.disconnecting:
            return
        if not self.connected:
            self.disconnect()
            return
        self.disconnecting = True
        if not self._out:
            self._lost(CONNECTION_DONE)

    def abortConnection(self) -> None:
        """
        Close now, discarding unsent data.
        """
        if self.disconnected:
            return
        if not self.connected:
            self.disconnect()
            return
        self._lost(CONNECTION_ABORTED)

    def disconnect(self) -> None:
        """
        The connector method: stop connecting (reported as a failed connect
        with L{error.UserError}) or abort the connection.
        """
        if self.disconnected:
            return
        if self.connected:
            self._lost(CONNECTION_ABORTED)
        else:
            self._failConnect(error.UserError(string="connection was aborted"))

    # -- closing ------------------------------------------------------------

    def _lost(self, reason: Failure) -> None:
        self._close()
        peer, self.peer = self.peer, None
        if peer is not None:
            peer.connectionLost(reason)

    def _close(self) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        reactor = self.reactor
        if self._reading:
            self._reading = False
            reactor.removeReader(self)  # type: ignore[arg-type]
        if self._writing:
            self._writing = False
            reactor.removeWriter(self)  # type: ignore[arg-type]
        s, self._sock = self._sock, None
        self._fd = -1
        if s is not None:
            s.close()


def leanReactor(reactor: object) -> bool:
    """
    @return: whether C{reactor} polls real file descriptors, so that
        L{LeanConnection} can be used with it (epoll, poll, select and the
        asyncio selector reactors).
    """
    from twisted.internet.posixbase import PosixReactorBase

    return isinstance(reactor, PosixReactorBase)


class SelfFactory:
    """
    A check attempt that is its own client factory (one object per check
    instead of two): the L{IProtocolFactory} methods a connector calls, as
    no-ops, with L{buildProtocol} returning the attempt itself.
    """

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass

    def startedConnecting(self, connector: object) -> None:
        pass

    def buildProtocol(self, addr: object) -> SelfFactory:
        return self

    def clientConnectionLost(self, connector: object, reason: object) -> None:
        pass
