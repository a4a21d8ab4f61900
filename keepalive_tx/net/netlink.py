# -*- test-case-name: tests.unit.test_net_addresses,tests.unit.test_net_links -*-
"""
How keepalive_tx talks rtnetlink: pyroute2 for the message codec, our own
non-blocking socket for the I/O.

Findings (pyroute2 0.9.7, Python 3.11.7, Linux 6.18, 2 shared cores; measured
with scratch scripts run in a throw-away namespace, 200-500 iterations):

  - C{pyroute2.IPRoute} (the synchronous API) is a wrapper around
    C{AsyncIPRoute}.  Its constructor creates a B{private asyncio event loop}
    (C{asyncio.new_event_loop()}, C{status['event_loop'] == 'new'}) stored in
    a C{threading.local} and kept for the object's lifetime; every call
    (C{addr('add', ...)}, C{link('get', ...)}, dumps) is
    C{loop.run_until_complete(coroutine)} on that private loop.  It starts
    B{no threads} (C{threading.active_count()} stays 1) and holds 4 fds (the
    netlink socket, the loop's epoll fd and its self-pipe pair).  The command
    socket is B{not} subscribed to any multicast group until C{bind()} is
    called (C{/proc/net/netlink} shows groups 00000000), despite the
    C{groups=RTMGRP_DEFAULTS} default.
  - Cost per call, IPRoute, measured inside a running default (epoll)
    Twisted reactor: constructor ~0.9-1.6 ms; C{addr add} median 395 us, p95
    ~0.6-0.8 ms, max 1.6-2.8 ms; C{addr del} about the same; C{link get}
    ~0.6 ms; an empty C{addr dump} ~0.3 ms.  The reactor thread is blocked
    for exactly that long (the kernel answers rtnetlink requests
    synchronously, so the loop never really waits).
  - Calling an IPRoute from a second thread silently creates a second loop
    and a second socket for that thread (thread-local state), ~1.9 ms for the
    first call.
  - B{Under C{AsyncioSelectorReactor} the synchronous IPRoute is unusable}:
    inside a reactor callback the asyncio loop is running, so
    C{IPRoute()} picks it up via C{get_running_loop()} and
    C{run_until_complete()} raises C{RuntimeError: This event loop is
    already running} (an IPRoute built before C{reactor.run()} fails the
    same way: a second loop cannot run while the reactor's loop runs).
  - C{IPRoute(netns=NAME)} / C{pyroute2.netns.create_socket} B{fork} a child
    (multiprocessing, mode C{fork}) that C{setns()}es, creates the socket and
    passes the fd back: 6-11 ms, blocking; and the default
    C{flags=os.O_CREAT} silently B{creates} a missing namespace.  The daemon
    does not need it (it is started inside its namespace with
    C{ip netns exec}); the integration tests use C{create_socket(...,
    flags=0)} to hand us sockets living in a lab namespace.
  - The same request on a plain non-blocking C{AF_NETLINK} socket, encoded
    with pyroute2's C{ifaddrmsg} and parsed with C{MarshalRtnl}: C{addr add}
    median 108 us (p95 253 us), of which 63 us is pyroute2's Python encoding;
    an address dump ~50 us.  C{RTM_GETLINK} for one interface costs ~370 us
    (pyroute2 decodes the whole ifinfmsg), C{SIOCGIFINDEX} on the netlink
    socket ~1 us, so L{RouteChannel.ifindex} uses the ioctl.  End to end,
    L{keepalive_tx.net.addresses.NetlinkAddressManager.add} (index lookup +
    add + ACK) median ~0.26 ms (p95 ~0.5 ms) under the default reactor and
    ~0.32 ms under C{AsyncioSelectorReactor}, where it works unchanged.
    In 500 requests the reply/ACK was B{always}
    already queued when C{send()} returned: rtnetlink processes requests
    inside C{sendmsg()} and dumps continue inside C{recvmsg()}, so a
    non-blocking C{recv()} never saw C{EAGAIN}.

Choice:

  - B{Commands} (address add/delete, link and address queries) are
    synchronous short calls on the reactor thread through L{RouteChannel}: a
    non-blocking, close-on-exec C{NETLINK_ROUTE} socket with no multicast
    groups, requests built from pyroute2 message classes, replies parsed with
    L{RtnlMarshal} (pyroute2's C{MarshalRtnl}, narrowed).  ~0.1 ms per
    address, no asyncio, no threads, same behaviour under every reactor (epoll, poll, select, asyncio).  It
    can never block: a missing reply is an error (C{EAGAIN}), the socket is
    then reopened so late replies cannot be mistaken for later ones.
  - B{Events} (link up/down, addresses appearing/disappearing) come from a
    second socket subscribed to C{RTMGRP_LINK | RTMGRP_IPV4_IFADDR |
    RTMGRP_IPV6_IFADDR} whose fd is registered with the reactor
    (L{keepalive_tx.net.links.LinkMonitor}, an
    C{abstract.FileDescriptor}): no polling, no threads.
  - Nothing outside C{keepalive_tx.net} touches pyroute2 or netlink.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    nlmsg,
)
from pyroute2.netlink.marshal import Marshal
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_GETRULE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTM_SETLINK,
    RTM_VALUES,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

__all__ = [
    "IFF_LOWER_UP",
    "IFF_RUNNING",
    "IFF_UP",
    "MONITOR_GROUPS",
    "ROUTE_MONITOR_GROUPS",
    "RTM_DELROUTE",
    "RTM_DELRULE",
    "RTM_DELADDR",
    "RTM_DELLINK",
    "RTM_GETADDR",
    "RTM_GETLINK",
    "RTM_NEWADDR",
    "RTM_NEWLINK",
    "AddressInfo",
    "LinkInfo",
    "NetlinkError",
    "RouteChannel",
    "RouteSocket",
    "RtnlMarshal",
    "SocketOwner",
    "SyncNetlinkChannel",
    "addressFromMessage",
    "linkFromMessage",
    "openRouteSocket",
    "parseMessages",
]

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_LOWER_UP = 0x10000

MONITOR_GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
#: route and rule notifications (RTNLGRP_IPV4_ROUTE, _IPV6_ROUTE, _IPV4_RULE,
#: _IPV6_RULE as bind() bits): only subscribed when virtual routes/rules exist
ROUTE_MONITOR_GROUPS = (1 << 6) | (1 << 10) | (1 << 7) | (1 << 18)

_SOL_NETLINK = 270
_SIOCGIFINDEX = 0x8933
_NETLINK_EXT_ACK = 11
_RECV_SIZE = 1 << 16
_RCVBUF = 1 << 20


class RouteSocket(Protocol):
    """
    What we need of a netlink socket (a real C{socket.socket} or a test fake).
    """

    def send(self, data: bytes) -> int: ...

    def recv(self, bufsize: int) -> bytes: ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...


def openRouteSocket(groups: int = 0) -> socket.socket:
    """
    Open a non-blocking, close-on-exec C{NETLINK_ROUTE} socket bound to the
    multicast C{groups} (0: a command socket) with a 1 MiB receive buffer.

    The socket lives in the network namespace of the calling process.
    """
    sock = socket.socket(
        socket.AF_NETLINK,
        socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        socket.NETLINK_ROUTE,
    )
    try:
        for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, _RCVBUF)
                break
            except OSError:
                continue
        if not groups:
            try:  # error strings ("ipv4: Invalid scope value.") in NLMSG_ERROR
                sock.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)
            except OSError:
                pass
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


class NetlinkError(Exception):
    """
    A netlink request failed.

    @ivar code: the errno (positive), e.g. C{errno.EEXIST}.
    """

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        super().__init__(code, message or errno.errorcode.get(code, str(code)))

    def __str__(self) -> str:
        return f"[{errno.errorcode.get(self.code, self.code)}] {self.args[1]}"


class RtnlMarshal(Marshal):
    """
    pyroute2's C{MarshalRtnl} narrowed to the messages we send and receive:
    links, addresses, routes and rules (others decode as plain C{nlmsg}).

    C{MarshalRtnl} imports every rtnetlink codec (traffic control alone is
    40 modules, ~1.4 MB resident); the decoding of these four families is
    the same.
    """

    msg_map = {
        RTM_NEWLINK: ifinfmsg,
        RTM_DELLINK: ifinfmsg,
        RTM_GETLINK: ifinfmsg,
        RTM_SETLINK: ifinfmsg,
        RTM_NEWADDR: ifaddrmsg,
        RTM_DELADDR: ifaddrmsg,
        RTM_GETADDR: ifaddrmsg,
        RTM_NEWROUTE: rtmsg,
        RTM_DELROUTE: rtmsg,
        RTM_GETROUTE: rtmsg,
        RTM_NEWRULE: fibmsg,
        RTM_DELRULE: fibmsg,
        RTM_GETRULE: fibmsg,
    }

    def fix_message(self, msg: nlmsg) -> None:
        """
        Name the event (C{msg["event"]}, e.g. C{"RTM_NEWLINK"}) as C{MarshalRtnl} does.
        """
        try:
            msg["event"] = RTM_VALUES[msg["header"]["type"]]
        except Exception:
            pass


def parseMessages(marshal: Marshal, data: bytes) -> list[nlmsg]:
    """
    Decode one datagram into netlink messages; garbage gives an empty list.
    """
    try:
        return list(marshal.parse(data))
    except Exception:
        return []


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """
    One interface as rtnetlink describes it.

    @ivar flags: C{ifi_flags} (C{IFF_*}).
    @ivar operstate: RFC 2863 operational state name (C{"UP"},
        C{"LOWERLAYERDOWN"}, C{"UNKNOWN"}, ...), or C{None}.
    @ivar carrier: C{IFLA_CARRIER} when the kernel sent it.
    """

    index: int
    name: str
    flags: int
    mac: bytes | None = None
    operstate: str | None = None
    carrier: bool | None = None

    @property
    def up(self) -> bool:
        """
        Usable for VRRP, keepalived's rule: C{IFF_UP} and C{IFF_RUNNING}.

        The kernel sets C{IFF_RUNNING} exactly when the interface is
        administratively up and its operstate is C{UP} or C{UNKNOWN}
        (C{dev_get_flags()}), so carrier loss (operstate C{DOWN} /
        C{LOWERLAYERDOWN}, e.g. the far end of a veth or the switch port
        going away) clears it while C{IFF_UP} stays set.
        """
        return bool(self.flags & IFF_UP) and bool(self.flags & IFF_RUNNING)


@dataclass(frozen=True, slots=True)
class AddressInfo:
    """
    One address as rtnetlink describes it.

    @ivar interface: the local address with its prefix length.
    @ivar peer: the peer address for point-to-point addresses, else C{None}.
    @ivar flags: C{IFA_FLAGS} if present, else C{ifa_flags}.
    """

    index: int
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    label: str | None = None
    scope: int = 0
    flags: int = 0
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    broadcast: ipaddress.IPv4Address | None = None
    preferred: int | None = None

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return self.interface.ip


def linkFromMessage(msg: nlmsg) -> LinkInfo | None:
    """
    Turn an C{RTM_NEWLINK}/C{RTM_DELLINK} message into a L{LinkInfo}.
    """
    try:
        name = msg.get_attr("IFLA_IFNAME")
        if name is None:
            return None
        mac = msg.get_attr("IFLA_ADDRESS")
        carrier = msg.get_attr("IFLA_CARRIER")
        operstate = msg.get_attr("IFLA_OPERSTATE")
        return LinkInfo(
            index=int(msg["index"]),
            name=str(name),
            flags=int(msg["flags"]),
            mac=bytes.fromhex(mac.replace(":", "")) if isinstance(mac, str) else None,
            operstate=str(operstate) if operstate is not None else None,
            carrier=bool(carrier) if carrier is not None else None,
        )
    except Exception:
        return None


def addressFromMessage(msg: nlmsg) -> AddressInfo | None:
    """
    Turn an C{RTM_NEWADDR}/C{RTM_DELADDR} message into an L{AddressInfo}.
    """
    try:
        local = msg.get_attr("IFA_LOCAL")
        address = msg.get_attr("IFA_ADDRESS")
        mine = local if local is not None else address
        if mine is None:
            return None
        peer = None
        if local is not None and address is not None and address != local:
            peer = ipaddress.ip_address(address)
        flags = msg.get_attr("IFA_FLAGS")
        brd = msg.get_attr("IFA_BROADCAST")
        cacheinfo = msg.get_attr("IFA_CACHEINFO")
        preferred = None
        if cacheinfo is not None:
            preferred = int(cacheinfo.get("ifa_preferred"))
        return AddressInfo(
            index=int(msg["index"]),
            interface=ipaddress.ip_interface(f"{mine}/{int(msg['prefixlen'])}"),
            label=msg.get_attr("IFA_LABEL"),
            scope=int(msg["scope"]),
            flags=int(flags) if flags is not None else int(msg["flags"]),
            peer=peer,
            broadcast=ipaddress.IPv4Address(brd) if brd else None,
            preferred=preferred,
        )
    except Exception:
        return None


class SocketOwner:
    """
    Holds one netlink socket in C{_socket}, opened on demand by the
    subclass; L{close} lets go of it.
    """

    _socket: Any = None

    def close(self) -> None:
        """
        Close the socket, if open (a later request opens a new one).
        """
        sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


class SyncNetlinkChannel(SocketOwner):
    """
    The request/answer exchange shared by our synchronous netlink channels
    (rtnetlink here, generic netlink for IPVS): send one request on a
    non-blocking socket and collect its answer, which the kernel has always
    queued by the time C{send} returns (see the module docstring).

    Subclasses provide C{_socket} (opened before L{_exchange}), C{_marshal}
    and the exception class they raise (L{errorClass}: built as
    C{errorClass(errno, text)}).
    """

    errorClass: type[Exception] = NetlinkError
    _marshal: Marshal
    _sequence: int = 0

    def _exchange(self, msg: nlmsg, msgType: int, flags: int = 0, *,
                  dump: bool = False) -> list[nlmsg]:
        """
        Send C{msg} as C{msgType}; return the answer's data messages.

        Non-dump requests get C{NLM_F_ACK} and end at the kernel's ACK;
        dumps end at C{NLMSG_DONE}.  Any failure closes the socket (so a
        late answer cannot be taken for a later request's) and raises
        L{errorClass}: the kernel's errno, C{EAGAIN} when no reply was
        queued, the socket's errno, or C{EINVAL} for a codec failure.
        """
        fail = self.errorClass
        self._sequence = sequence = self._sequence % 0x7FFFFFFF + 1
        header = msg["header"]
        header["type"] = msgType
        header["flags"] = flags | NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        header["sequence_number"] = sequence
        header["pid"] = 0
        try:
            msg.encode()
            self._socket.send(bytes(msg.data))
            return self._collect(sequence)
        except fail:
            raise
        except BlockingIOError as e:
            self.close()
            raise fail(errno.EAGAIN, "no synchronous netlink reply") from e
        except OSError as e:
            self.close()
            raise fail(e.errno or errno.EIO, str(e)) from e
        except Exception as e:
            self.close()
            raise fail(errno.EINVAL, f"netlink codec: {e}") from e

    def _collect(self, sequence: int) -> list[nlmsg]:
        fail = self.errorClass
        result: list[nlmsg] = []
        while True:
            data = self._socket.recv(_RECV_SIZE)
            if not data:
                raise fail(errno.EIO, "empty netlink read")
            for reply in parseMessages(self._marshal, data):
                header = reply["header"]
                if header.get("sequence_number") != sequence:
                    continue  # a late answer to an abandoned request
                kind = header.get("type")
                if kind == NLMSG_ERROR:
                    error = header.get("error")
                    if error is not None:
                        code = abs(int(getattr(error, "code", errno.EIO)))
                        args = getattr(error, "args", ())
                        text = str(args[1]) if len(args) > 1 and args[1] else ""
                        raise fail(code, text or os.strerror(code))
                    return result
                if kind == NLMSG_DONE:
                    return result
                result.append(reply)


class RouteChannel(SyncNetlinkChannel):
    """
    Synchronous rtnetlink requests on a non-blocking socket (see the module
    docstring for why this never blocks and what it costs).

    The socket is opened lazily by C{socketFactory} (called with C{0}: no
    multicast groups) and reopened after any error.
    """

    def __init__(self, socketFactory: Callable[[int], RouteSocket] = openRouteSocket) -> None:
        self._socketFactory = socketFactory
        self._socket: RouteSocket | None = None
        self._marshal = RtnlMarshal()
        self._sequence = 0

    def open(self) -> None:
        """
        Open the socket now (e.g. in C{privilegedStartService}).
        """
        if self._socket is None:
            self._socket = self._socketFactory(0)

    def request(
        self, msg: nlmsg, msgType: int, flags: int = 0, *, dump: bool = False
    ) -> list[nlmsg]:
        """
        Send one request and collect its answer.

        Non-dump requests get C{NLM_F_ACK} and end at the kernel's ACK;
        dumps (C{dump=True}: C{NLM_F_DUMP}) end at C{NLMSG_DONE}.  (Whether
        it is a dump cannot be read off C{flags}: C{NLM_F_REPLACE} and
        C{NLM_F_ROOT} are the same bit.)

        @param flags: extra C{NLM_F_*} (C{NLM_F_CREATE}, C{NLM_F_REPLACE}...).

        @return: the answer's data messages (not the ACK / DONE).
        @raise NetlinkError: the kernel refused (its errno), or the socket
            failed, or no reply was queued (C{EAGAIN}).
        """
        try:
            self.open()
        except OSError as e:
            raise NetlinkError(e.errno or errno.EIO, str(e)) from e
        return self._exchange(msg, msgType, flags, dump=dump)

    # -- queries --------------------------------------------------------

    def link(self, ifname: str) -> LinkInfo | None:
        """
        The interface called C{ifname}, or C{None} if there is none.

        @raise NetlinkError: on other failures.
        """
        msg = ifinfmsg()
        msg["family"] = socket.AF_UNSPEC
        msg["attrs"] = [("IFLA_IFNAME", ifname)]
        try:
            replies = self.request(msg, RTM_GETLINK)
        except NetlinkError as e:
            if e.code in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        for reply in replies:
            info = linkFromMessage(reply)
            if info is not None:
                return info
        return None

    def ifindex(self, ifname: str) -> int | None:
        """
        The index of C{ifname} in the socket's namespace, or C{None}.

        C{SIOCGIFINDEX} on the netlink socket itself (the kernel answers it
        for the socket's namespace): ~1 us, against ~370 us for an
        C{RTM_GETLINK} whose reply pyroute2 decodes in full.  Falls back to
        L{link} when the socket cannot do ioctls (test fakes).

        @raise NetlinkError: when the fallback query fails.
        """
        raw = ifname.encode()
        if not raw or len(raw) >= 16 or b"/" in raw:
            return None
        try:
            self.open()
            assert self._socket is not None
            reply = fcntl.ioctl(self._socket.fileno(), _SIOCGIFINDEX, struct.pack("16si", raw, 0))
            return int(struct.unpack_from("16si", reply)[1])
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENXIO):
                return None
        except (ValueError, TypeError):
            pass
        info = self.link(ifname)
        return None if info is None else info.index

    def links(self) -> list[LinkInfo]:
        """
        All interfaces.
        """
        msg = ifinfmsg()
        msg["family"] = socket.AF_UNSPEC
        found = (linkFromMessage(m) for m in self.request(msg, RTM_GETLINK, dump=True))
        return [info for info in found if info is not None]

    def addresses(self, family: int = socket.AF_UNSPEC, index: int | None = None) -> list[AddressInfo]:
        """
        All addresses of C{family} (both when C{AF_UNSPEC}), optionally only
        those on interface C{index}.
        """
        msg = ifaddrmsg()
        msg["family"] = family
        found = (addressFromMessage(m) for m in self.request(msg, RTM_GETADDR, dump=True))
        return [a for a in found if a is not None and (index is None or a.index == index)]
