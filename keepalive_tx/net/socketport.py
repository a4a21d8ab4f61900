"""
What the project's own datagram ports share: a non-blocking
C{socket.socket} the reactor reads, closed on the next reactor turn after
C{stopListening} (the VRRP raw port and the BFD receive port).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import abstract, defer, task


class SocketPort(abstract.FileDescriptor):
    """
    An L{abstract.FileDescriptor} over a socket object held in C{_socket}
    (C{None} while closed); subclasses open it in C{startListening} and read
    it in C{doRead}.
    """

    _socket: Any = None
    _stoppedDeferred: defer.Deferred[None]

    def fileno(self) -> int:
        """
        @return: the socket's descriptor, -1 while closed.
        """
        if self._socket is None:
            return -1
        return int(self._socket.fileno())

    def stopListening(self) -> defer.Deferred[None]:
        """
        Stop reading and close the socket (on the next reactor turn).

        @return: a Deferred that fires when the socket is closed.
        """
        self.stopReading()
        if self.disconnecting:
            return self._stoppedDeferred
        if self.connected:
            self._stoppedDeferred = task.deferLater(self.reactor, 0, self.connectionLost)
            self.disconnecting = True
            return self._stoppedDeferred
        return defer.succeed(None)

    def connectionLost(self, reason: Any = None) -> None:
        """
        Close the socket.
        """
        abstract.FileDescriptor.connectionLost(self, reason)
        self.connected = False
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
