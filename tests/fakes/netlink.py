"""
Netlink in memory: an rtnetlink "kernel" behind a socket that decodes our
requests with pyroute2 and answers as Linux does, and the channels the
link, VMAC and nftables code talk to.
"""

from __future__ import annotations

import errno
import ipaddress
import struct
from typing import Any

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
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from keepalive_tx.net import nftplan as P
from keepalive_tx.net.netlink import (
    IFF_LOWER_UP,
    IFF_RUNNING,
    IFF_UP,
    AddressInfo,
    LinkInfo,
    NetlinkError,
)

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_MULTI, NLM_F_REPLACE, NLM_F_CAPPED = 0x2, 0x100, 0x100

#: a link that is up, running, with carrier
UP = IFF_UP | IFF_RUNNING | IFF_LOWER_UP


def encode(msg, msgType: int, seq: int, flags: int = 0) -> bytes:
    """
    C{msg} as the kernel sends it: header filled in, encoded.
    """
    msg["header"]["type"] = msgType
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


def ack(request: bytes, code: int = 0) -> bytes:
    """
    Linux's NLMSG_ERROR: an ACK echoes the request header (NLM_F_CAPPED),
    an error echoes the whole request.
    """
    _, _, _, seq, pid = struct.unpack_from("=IHHII", request)
    echo = request if code else request[:16]
    flags = 0 if code else NLM_F_CAPPED
    return struct.pack("=IHHIIi", 20 + len(echo), NLMSG_ERROR, flags, seq, pid, -code) + echo


def done(seq: int) -> bytes:
    """
    The NLMSG_DONE that ends a dump.
    """
    return struct.pack("=IHHIIi", 20, NLMSG_DONE, NLM_F_MULTI, seq, 0, 0)


def asDumpReply(stored: bytes, msgType: int, seq: int) -> bytes:
    """
    A stored request re-sent as one message of a dump (type, NLM_F_MULTI, seq).
    """
    length = struct.unpack_from("=I", stored)[0]
    return struct.pack("=IHHII", length, msgType, NLM_F_MULTI, seq, 0) + stored[16:]


class FakeRtnetlinkKernel:
    """
    A NETLINK_ROUTE socket with a tiny kernel behind it: links by name,
    addresses keyed by C{(index, address)}, routes and rules kept as the
    raw requests that created them; answers are queued at C{send}.

    @ivar requests: every decoded request.
    @ivar mute: if set, requests get no answer at all (C{recv}: C{EAGAIN}).
    @ivar failWith: errno answered to every add (address, route, rule).
    """

    def __init__(self, links: dict[str, int] | None = None) -> None:
        self.links = {"eth0": 2, "eth1": 3} if links is None else links
        self.addresses: dict[tuple[int, str], object] = {}
        self.routes: dict[tuple, bytes] = {}
        self.rules: dict[tuple, bytes] = {}
        self.requests: list = []
        self.replies: list[bytes] = []
        self.mute = False
        self.failWith: int | None = None
        self.closed = False
        self.marshal = MarshalRtnl()

    # socket API
    def send(self, data: bytes) -> int:
        (msg,) = list(self.marshal.parse(data))
        self.requests.append(msg)
        if not self.mute:
            self.replies.extend(self.answer(msg, data))
        return len(data)

    def recv(self, size: int) -> bytes:
        if not self.replies:
            raise BlockingIOError(errno.EAGAIN, "empty")
        return self.replies.pop(0)

    def fileno(self) -> int:
        return -1  # no ioctls: RouteChannel.ifindex falls back to RTM_GETLINK

    def close(self) -> None:
        self.closed = True

    # the kernel
    @staticmethod
    def routeKey(msg) -> tuple:
        return (msg["family"], msg.get_attr("RTA_TABLE"), msg.get_attr("RTA_DST"), msg["dst_len"],
                msg["tos"], msg.get_attr("RTA_PRIORITY") or 0)

    @staticmethod
    def ruleKey(msg) -> tuple:
        return (msg["family"], msg.get_attr("FRA_PRIORITY"), msg.get_attr("FRA_SRC"),
                msg.get_attr("FRA_TABLE"))

    def answer(self, msg, data: bytes) -> list[bytes]:
        kind = msg["header"]["type"]
        if kind == RTM_GETLINK:
            return self._link(msg, data)
        if kind in (RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR):
            return self._address(msg, data)
        return self._routeOrRule(msg, data)

    def _link(self, msg, data: bytes) -> list[bytes]:
        name = msg.get_attr("IFLA_IFNAME")
        if name not in self.links:
            return [ack(data, errno.ENODEV)]
        reply = ifinfmsg()
        reply["index"] = self.links[name]
        reply["flags"] = 0x10043
        reply["attrs"] = [("IFLA_IFNAME", name), ("IFLA_ADDRESS", "02:00:c0:00:02:0b")]
        return [encode(reply, RTM_NEWLINK, msg["header"]["sequence_number"]), ack(data)]

    def _address(self, msg, data: bytes) -> list[bytes]:
        kind = msg["header"]["type"]
        seq = msg["header"]["sequence_number"]
        if kind == RTM_NEWADDR:
            if self.failWith:
                return [ack(data, self.failWith)]
            key = (msg["index"], msg.get_attr("IFA_LOCAL"))
            if key in self.addresses and not msg["header"]["flags"] & NLM_F_REPLACE:
                return [ack(data, errno.EEXIST)]
            self.addresses[key] = msg
            return [ack(data)]
        if kind == RTM_DELADDR:
            key = (msg["index"], msg.get_attr("IFA_LOCAL"))
            if self.addresses.pop(key, None) is None:
                return [ack(data, errno.EADDRNOTAVAIL)]
            return [ack(data)]
        out = []
        for (index, local), stored in self.addresses.items():
            if msg["family"] not in (0, stored["family"]):
                continue
            reply = ifaddrmsg()
            reply["family"] = stored["family"]
            reply["prefixlen"] = stored["prefixlen"]
            reply["index"] = index
            reply["attrs"] = [("IFA_ADDRESS", local), ("IFA_LOCAL", local)]
            out.append(encode(reply, RTM_NEWADDR, seq, NLM_F_MULTI))
        return out + [done(seq)]

    def _routeOrRule(self, msg, data: bytes) -> list[bytes]:
        kind = msg["header"]["type"]
        seq = msg["header"]["sequence_number"]
        for new, delete, get, table, keyOf in (
            (RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE, self.routes, self.routeKey),
            (RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE, self.rules, self.ruleKey),
        ):
            if kind == new:
                if self.failWith:
                    return [ack(data, self.failWith)]
                if keyOf(msg) in table:
                    return [ack(data, errno.EEXIST)]
                table[keyOf(msg)] = data
                return [ack(data)]
            if kind == delete:
                if table.pop(keyOf(msg), None) is None:
                    return [ack(data, errno.ESRCH if new == RTM_NEWROUTE else errno.ENOENT)]
                return [ack(data)]
            if kind == get:
                out = [asDumpReply(raw, new, seq) for raw in table.values()]
                return out + [done(seq)]
        return [ack(data, errno.EOPNOTSUPP)]


class FakeLinkSnapshots:
    """
    Snapshot queries, answered from lists the test edits.
    """

    def __init__(self) -> None:
        self.linkList = [LinkInfo(1, "lo", UP), LinkInfo(2, "eth0", UP)]
        self.addressList = [AddressInfo(2, ipaddress.ip_interface("192.0.2.11/24"))]
        self.closed = False
        self.error: NetlinkError | None = None

    def links(self) -> list[LinkInfo]:
        if self.error:
            raise self.error
        return list(self.linkList)

    def addresses(self) -> list[AddressInfo]:
        return list(self.addressList)

    def link(self, ifname: str) -> LinkInfo | None:
        if self.error:
            raise self.error
        return next((i for i in self.linkList if i.name == ifname), None)

    def close(self) -> None:
        self.closed = True


class FakeRouteChannel:
    """
    Just enough of L{keepalive_tx.net.netlink.RouteChannel}: requests are
    encoded, decoded again with pyroute2 (so what is checked is what the
    kernel would read) and applied to a table of links.
    """

    def __init__(self) -> None:
        self.links: dict[str, dict[str, Any]] = {
            "eth0": {"index": 2, "kind": None, "mac": "02:00:c0:00:02:0b", "group": 3, "flags": 1},
            "eth1": {"index": 3, "kind": None, "mac": "02:00:c0:00:02:0c", "group": 0, "flags": 1},
        }
        self.requests: list[tuple[int, Any]] = []
        self.linkLocals = {2: "fe80::c0ff:fe00:20b"}
        self.nextIndex = 20

    def _decode(self, msg: Any) -> Any:
        msg.encode()
        decoded = ifinfmsg(bytes(msg.data))
        decoded.decode()
        return decoded

    def ifindex(self, name: str) -> int | None:
        link = self.links.get(name)
        return link["index"] if link else None

    def byIndex(self, index: int) -> str:
        return next(n for n, link in self.links.items() if link["index"] == index)

    def addresses(self, family: int, index: int | None = None) -> list:
        from keepalive_tx.net.netlink import AddressInfo

        if index in self.linkLocals:
            return [AddressInfo(index, ipaddress.ip_interface(self.linkLocals[index] + "/64"))]
        return []

    def request(self, msg: Any, kind: int, flags: int = 0, *, dump: bool = False) -> list:
        m = self._decode(msg)
        self.requests.append((kind, m))
        if kind == RTM_GETLINK:
            return self._get(m, dump)
        if kind == RTM_DELLINK:
            del self.links[self.byIndex(m["index"])]
            return []
        if kind == RTM_NEWLINK:
            return self._new(m, flags)
        raise NetlinkError(errno.EOPNOTSUPP)

    def _get(self, m: Any, dump: bool) -> list:
        out = []
        wanted = m.get_attr("IFLA_IFNAME")
        kindFilter = m.get_attr("IFLA_LINKINFO")
        kindFilter = kindFilter.get_attr("IFLA_INFO_KIND") if kindFilter is not None else None
        for name, link in self.links.items():
            if (wanted and name != wanted) or (kindFilter and link["kind"] != kindFilter):
                continue
            out.append(self._reply(name, link))
        if wanted and not out:
            raise NetlinkError(errno.ENODEV)
        return out

    def _reply(self, name: str, link: dict[str, Any]) -> Any:
        r = ifinfmsg()
        r["index"], r["flags"] = link["index"], link["flags"]
        attrs: list = [("IFLA_IFNAME", name), ("IFLA_ADDRESS", link["mac"]),
                       ("IFLA_GROUP", link["group"])]
        if link.get("alias"):
            attrs.append(("IFLA_IFALIAS", link["alias"]))
        if link.get("base"):
            attrs.append(("IFLA_LINK", link["base"]))
        if link["kind"]:
            key = "IFLA_MACVLAN_MODE" if link["kind"] == "macvlan" else "IFLA_IPVLAN_MODE"
            attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", link["kind"]), (
                "IFLA_INFO_DATA", {"attrs": [(key, link["mode"])]})]}))
        r["attrs"] = attrs
        return self._decode(r)

    def _new(self, m: Any, flags: int) -> list:
        info = m.get_attr("IFLA_LINKINFO")
        if m["index"] == 0:
            name = m.get_attr("IFLA_IFNAME")
            if name in self.links:
                raise NetlinkError(errno.EEXIST)
            kind = info.get_attr("IFLA_INFO_KIND")
            data = info.get_attr("IFLA_INFO_DATA")
            mode = data.get_attr("IFLA_MACVLAN_MODE" if kind == "macvlan" else "IFLA_IPVLAN_MODE")
            base = self.links[self.byIndex(m.get_attr("IFLA_LINK"))]
            self.links[name] = {"index": self.nextIndex, "kind": kind, "mode": mode,
                                "mac": m.get_attr("IFLA_ADDRESS") or base["mac"],
                                "base": base["index"], "group": m.get_attr("IFLA_GROUP") or 0,
                                "flags": m["flags"]}
            self.nextIndex += 1
            return []
        link = self.links[self.byIndex(m["index"])]
        if m["change"]:
            link["flags"] = (link["flags"] & ~m["change"]) | m["flags"]
        if m.get_attr("IFLA_ADDRESS"):
            link["mac"] = m.get_attr("IFLA_ADDRESS")
        if info is not None:
            link["mode"] = info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_MACVLAN_MODE")
        if m.get_attr("IFLA_IFALIAS") is not None:
            link["alias"] = m.get_attr("IFLA_IFALIAS")
        return []


class FakeNftChannel:
    """
    Records every transaction; C{tables} is what "exists"; C{fail} makes
    the next C{apply} fail with that errno.
    """

    def __init__(self, tables=()) -> None:
        self.tables = set(tables)
        self.batches: list[list[object]] = []
        self.fail: int | None = None
        self.closed = 0

    def tableExists(self, family: int) -> bool:
        return family in self.tables

    def apply(self, ops) -> None:
        if not ops:
            return
        if self.fail is not None:
            code, self.fail = self.fail, None
            raise NetlinkError(code)
        self.batches.append(list(ops))
        for op in ops:
            if isinstance(op, P.NewTable):
                self.tables.add(op.family)
            elif isinstance(op, P.DeleteTable):
                self.tables.discard(op.family)

    def close(self) -> None:
        self.closed += 1

    def elements(self) -> list[tuple[str, bytes]]:
        """
        The element changes of all transactions, in order.
        """
        return [("+" if op.add else "-", key) for ops in self.batches for op in ops
                if isinstance(op, P.Elements) and op.set == "vips" for key in op.keys]
