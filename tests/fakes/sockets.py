"""
A socket in memory, the factories that hand it out, and the OS layer the
raw-socket transports (VRRP, BFD) take.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from twisted.internet.testing import MemoryReactor


class FakeSocket:
    """
    A non-blocking socket in memory: records what the code under test does
    to it and replays what the test queued. Stream, datagram, raw, packet
    and netlink sockets alike: each user calls the methods its kind has.

    @ivar options: C{(level, name, value)} of every C{setsockopt}, in order
        (see L{option}).
    @ivar sent: the bytes accepted by each C{send} (a stream's are
        C{b"".join(sent)}).
    @ivar sentTo: C{(data, address)} of each C{sendto} and C{sendmsg}.
    @ivar sendFlags: the flags of each C{sendto} and C{sendmsg} (0 when
        none were given).
    @ivar ancillary: the ancillary data of each C{sendto} (none) and C{sendmsg}.
    @ivar incoming: what C{recv}, C{recvfrom} and C{recvmsg} return in turn
        (an exception in it is raised instead); when it is empty they raise
        C{EAGAIN}.
    @ivar errors: raised by the next C{send}s, C{sendto}s or C{sendmsg}s,
        one each, before anything is sent.
    @ivar sendError: raised by every send after L{errors} (L{None}: sends
        succeed).
    @ivar sendLimit: at most this many bytes are accepted per C{send}.
    @ivar failOn: method name -> what every call of that method raises.
    @ivar failOption: C{setsockopt} of this option name raises C{EPERM}.
    @ivar portsInUse: C{bind} to one of these ports raises C{EADDRINUSE}.
    @ivar connectResults: what successive C{connect_ex} calls return.
    @ivar soError: what C{getsockopt(SOL_SOCKET, SO_ERROR)} returns.
    @ivar name: what C{getsockname} returns.
    """

    def __init__(self, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM,
                 proto: int = 0, *, incoming: Iterable[object] = (),
                 sendError: BaseException | None = None) -> None:
        self.family, self.type, self.proto = family, type, proto
        self.blocking = True
        self.closed = False
        self.bound: object = None
        self.connected: object = None
        self.name: object = ("0.0.0.0", 4242)
        self.options: list[tuple[int, int, object]] = []
        self.sent: list[bytes] = []
        self.sentTo: list[tuple[bytes, object]] = []
        self.sendFlags: list[int] = []
        self.ancillary: list[list[tuple[int, int, bytes]]] = []
        self.incoming: list[object] = list(incoming)
        self.errors: list[BaseException] = []
        self.sendError = sendError
        self.sendLimit: int | None = None
        self.failOn: dict[str, BaseException] = {}
        self.failOption: int | None = None
        self.portsInUse: set[int] = set()
        self.connectResults = [errno.EINPROGRESS, errno.EISCONN]
        self.soError = 0

    def _call(self, method: str) -> None:
        error = self.failOn.get(method)
        if error is not None:
            raise error

    def _sending(self) -> None:
        if self.errors:
            raise self.errors.pop(0)
        if self.sendError is not None:
            raise self.sendError

    def option(self, level: int, name: int) -> object:
        """
        The value C{setsockopt} set for C{(level, name)}, which must have
        been set exactly once.
        """
        values = [v for lv, n, v in self.options if (lv, n) == (level, name)]
        if len(values) != 1:
            raise AssertionError(f"option {level}/{name} set {len(values)} times")
        return values[0]

    def fileno(self) -> int:
        return -1 if self.closed else 42

    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def setsockopt(self, level: int, name: int, value: object) -> None:
        self._call("setsockopt")
        if name == self.failOption:
            raise OSError(errno.EPERM, "Operation not permitted")
        self.options.append((level, name, value))

    def getsockopt(self, level: int, name: int) -> int:
        assert (level, name) == (socket.SOL_SOCKET, socket.SO_ERROR), (level, name)
        return self.soError

    def getsockname(self) -> object:
        return self.name

    def bind(self, address: tuple) -> None:
        self._call("bind")
        if len(address) > 1 and address[1] in self.portsInUse:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self.bound = address

    def connect(self, address: object) -> None:
        self._call("connect")
        self.connected = address

    def connect_ex(self, address: object) -> int:
        self.connected = address
        return self.connectResults.pop(0)

    def send(self, data: bytes) -> int:
        self._sending()
        n = len(data) if self.sendLimit is None else min(len(data), self.sendLimit)
        self.sent.append(bytes(data[:n]))
        return n

    def sendto(self, data: bytes, flagsOrAddress: object, address: object = None) -> int:
        self._sending()
        if address is None:
            flags, address = 0, flagsOrAddress
        else:
            assert isinstance(flagsOrAddress, int)
            flags = flagsOrAddress
        self.sentTo.append((bytes(data), address))
        self.sendFlags.append(flags)
        self.ancillary.append([])
        return len(data)

    def sendmsg(self, buffers: Iterable[bytes], ancdata: Iterable[tuple[int, int, bytes]] = (),
                flags: int = 0, address: object = None) -> int:
        self._sending()
        data = b"".join(buffers)
        self.sentTo.append((data, address))
        self.sendFlags.append(flags)
        self.ancillary.append(list(ancdata))
        return len(data)

    def _received(self) -> object:
        if not self.incoming:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        item = self.incoming.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def recv(self, size: int) -> bytes:
        item = self._received()
        assert isinstance(item, bytes)
        return item

    def recvfrom(self, size: int) -> tuple[bytes, object]:
        return self._received()  # type: ignore[return-value]

    def recvmsg(self, size: int, ancsize: int = 0, flags: int = 0) -> tuple:
        return self._received()  # type: ignore[return-value]

    def close(self) -> None:
        self.closed = True


class FakeSocketFactory:
    """
    Hands out L{FakeSocket}s, as C{socket.socket(family, type, proto)}
    would, and keeps them in L{sockets}.

    @ivar refuse: C{(type, proto)} pairs the "kernel" refuses (C{EACCES}).
    @ivar failOn: method name -> error every new socket raises on it.
    """

    def __init__(self, failOn: str | None = None, refuse: Iterable[tuple[int, int]] = ()) -> None:
        self.sockets: list[FakeSocket] = []
        self.failOn = ({failOn: OSError(errno.EACCES, "Permission denied")}
                       if failOn is not None else {})
        self.refuse = set(refuse)

    def __call__(self, family: int, type: int, proto: int = 0) -> FakeSocket:
        if (type, proto) in self.refuse:
            raise PermissionError(errno.EACCES, "Permission denied")
        s = FakeSocket(family, type, proto)
        s.failOn = dict(self.failOn)
        self.sockets.append(s)
        return s


class FakeSocketSystem:
    """
    The injectable OS layer of the raw-socket transports (VRRP's and BFD's
    C{system}): sockets from a L{FakeSocketFactory}, interface indexes
    from a table.

    @ivar socketError: raised by every C{socket} call instead.
    @ivar failOption: given to every new socket (see L{FakeSocket}).
    @ivar portsInUse: given to every new socket (see L{FakeSocket}).
    """

    def __init__(self, interfaces: dict[str, int] | None = None,
                 portsInUse: Iterable[int] = (), socketError: OSError | None = None,
                 portRange: str = "32768 60999\n") -> None:
        self.interfaces = {"eth0": 7} if interfaces is None else interfaces
        self.portsInUse = set(portsInUse)
        self.socketError = socketError
        self.failOption: int | None = None
        self.portRange = portRange
        self.sockets: list[FakeSocket] = []

    def socket(self, family: int, type: int, proto: int) -> FakeSocket:
        if self.socketError is not None:
            raise self.socketError
        s = FakeSocket(family, type, proto)
        s.failOption = self.failOption
        s.portsInUse = self.portsInUse
        self.sockets.append(s)
        return s

    def ifNameToIndex(self, name: str) -> int:
        if name not in self.interfaces:
            raise OSError(errno.ENODEV, "No such device")
        return self.interfaces[name]

    def localPortRange(self) -> str:
        return self.portRange


def deliver(reactor: MemoryReactor) -> None:
    """
    Let every reader registered with C{reactor} read.
    """
    for reader in list(reactor.readers):
        reader.doRead()
