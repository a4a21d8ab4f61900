# -*- test-case-name: tests.unit.test_net_nftables -*-
"""
nf_tables over netlink: the operations of L{keepalive_tx.net.nftplan}
encoded with pyroute2's nf_tables message classes and sent as one batch
(one transaction) on our own non-blocking C{NETLINK_NETFILTER} socket.

Why netlink and not libnftables' JSON API (measured with
C{bench/nftables.py}, 2 shared cores, Linux 6.18, nftables 1.0.6):

  - blocking one VIP (one set element added, one deleted) costs a median
    of ~0.1 ms on this socket -- encoding included -- the same as an
    address added through L{keepalive_tx.net.netlink.RouteChannel};
    libnftables' C{json_cmd} takes about as long for a small ruleset but
    is synchronous C code that first reads the ruleset cache of the
    table, and its Python binding is not on PyPI (Debian's
    C{python3-nftables} only, not importable from other Pythons without
    putting all of C{dist-packages} on the path);
  - pyroute2 is already our netlink codec; no new dependency;
  - keepalived itself builds these netlink messages, so sending the same
    expressions gives the same rules, byte for byte (C{nft --debug=netlink
    list ruleset} reads the same under both).

Like rtnetlink, nfnetlink processes a batch inside C{sendmsg()}: every
ACK is queued when C{send()} returns, so the exchange never blocks (a
missing answer is an error, C{EAGAIN}, and the socket is reopened).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, nfgen_msg
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFT_MSG_DELSETELEM,
    NFT_MSG_DELTABLE,
    NFT_MSG_GETTABLE,
    NFT_MSG_NEWCHAIN,
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWSET,
    NFT_MSG_NEWSETELEM,
    NFT_MSG_NEWTABLE,
    nft_chain_msg,
    nft_rule_msg,
    nft_set_elem_list_msg,
    nft_set_msg,
    nft_table_msg,
)

from keepalive_tx.net import nftplan as P
from keepalive_tx.net.netlink import NetlinkError

__all__ = ["NetfilterChannel", "encodeBatch", "openNetfilterSocket"]

_NETLINK_NETFILTER = 12
_NFNL_MSG_BATCH_BEGIN = 0x10
_NFNL_MSG_BATCH_END = 0x11
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_HEADER = struct.Struct("=IHHII")
_RECV_SIZE = 1 << 16
# nftnl's set user data: key byte order (1 host, 2 big endian)
_UDATA_KEYBYTEORDER = 0


def openNetfilterSocket() -> socket.socket:
    """
    A non-blocking, close-on-exec C{NETLINK_NETFILTER} socket in the
    calling process's network namespace.
    """
    sock = socket.socket(socket.AF_NETLINK,
                         socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                         _NETLINK_NETFILTER)
    try:
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


# -- encoding --------------------------------------------------------------------

def _expr(name: str, *attrs: tuple[str, Any]) -> dict[str, Any]:
    return {"attrs": [("NFTA_EXPR_NAME", name), ("NFTA_EXPR_DATA", {"attrs": list(attrs)})]}


def _value(data: bytes) -> dict[str, Any]:
    return {"attrs": [("NFTA_DATA_VALUE", data)]}


def _expression(e: object) -> dict[str, Any]:
    if isinstance(e, P.Payload):
        return _expr("payload", ("NFTA_PAYLOAD_DREG", e.dreg), ("NFTA_PAYLOAD_BASE", e.base),
                     ("NFTA_PAYLOAD_OFFSET", e.offset), ("NFTA_PAYLOAD_LEN", e.length))
    if isinstance(e, P.Meta):
        return _expr("meta", ("NFTA_META_DREG", e.dreg), ("NFTA_META_KEY", e.key))
    if isinstance(e, P.Cmp):
        return _expr("cmp", ("NFTA_CMP_SREG", e.sreg), ("NFTA_CMP_OP", 0),
                     ("NFTA_CMP_DATA", _value(e.data)))
    if isinstance(e, P.Bitwise):
        return _expr("bitwise", ("NFTA_BITWISE_SREG", e.sreg), ("NFTA_BITWISE_DREG", e.dreg),
                     ("NFTA_BITWISE_LEN", len(e.mask)), ("NFTA_BITWISE_MASK", _value(e.mask)),
                     ("NFTA_BITWISE_XOR", _value(e.xor)))
    if isinstance(e, P.Lookup):
        return _expr("lookup", ("NFTA_LOOKUP_SREG", e.sreg), ("NFTA_LOOKUP_SET", e.set))
    if isinstance(e, P.Counter):
        return _expr("counter")
    if isinstance(e, P.Verdict):
        verdict: list[tuple[str, Any]] = [("NFTA_VERDICT_CODE", e.code)]
        if e.chain is not None:
            verdict.append(("NFTA_VERDICT_CHAIN", e.chain))
        return _expr("immediate", ("NFTA_IMMEDIATE_DREG", 0),
                     ("NFTA_IMMEDIATE_DATA", {"attrs": [("NFTA_DATA_VERDICT", {"attrs": verdict})]}))
    raise TypeError(f"not an nftables expression: {e!r}")


class _Encoder:
    """
    Builds one batch: the operations' messages between batch begin and end,
    numbered from C{sequence}.
    """

    def __init__(self, table: str, priority: int, sequence: int) -> None:
        self.table = table
        self.priority = priority
        self.sequence = sequence
        self.setId = 0
        self.acked: list[int] = []
        self.parts: list[bytes] = []

    def _next(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence

    def control(self, kind: int) -> None:
        msg = nfgen_msg()
        msg["res_id"] = NFNL_SUBSYS_NFTABLES
        msg["header"]["type"] = kind
        msg["header"]["flags"] = NLM_F_REQUEST
        msg["header"]["sequence_number"] = self._next()
        msg.encode()
        self.parts.append(bytes(msg.data))

    def message(self, msg: Any, kind: int, family: int, flags: int, attrs: list) -> None:
        msg["attrs"] = attrs
        msg["nfgen_family"] = family
        header = msg["header"]
        header["type"] = (NFNL_SUBSYS_NFTABLES << 8) | kind
        header["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        header["sequence_number"] = sequence = self._next()
        msg.encode()
        self.parts.append(bytes(msg.data))
        self.acked.append(sequence)

    def add(self, op: object) -> None:
        table = ("NFTA_TABLE_NAME", self.table)
        if isinstance(op, P.NewTable):
            self.message(nft_table_msg(), NFT_MSG_NEWTABLE, op.family, NLM_F_CREATE, [table])
        elif isinstance(op, P.DeleteTable):
            self.message(nft_table_msg(), NFT_MSG_DELTABLE, op.family, 0, [table])
        elif isinstance(op, P.NewChain):
            attrs: list[tuple[str, Any]] = [("NFTA_CHAIN_TABLE", self.table), ("NFTA_CHAIN_NAME", op.name)]
            if op.hook is not None:
                attrs += [("NFTA_CHAIN_HOOK", {"attrs": [("NFTA_HOOK_HOOKNUM", op.hook),
                                                         ("NFTA_HOOK_PRIORITY", self.priority)]}),
                          ("NFTA_CHAIN_POLICY", P.NF_ACCEPT), ("NFTA_CHAIN_TYPE", "filter")]
            self.message(nft_chain_msg(), NFT_MSG_NEWCHAIN, op.family, NLM_F_CREATE, attrs)
        elif isinstance(op, P.NewSet):
            self.setId += 1
            attrs = [("NFTA_SET_TABLE", self.table), ("NFTA_SET_NAME", op.name)]
            if op.constant:
                attrs.append(("NFTA_SET_FLAGS", frozenset({"NFT_SET_CONSTANT"})))
            order = 2 if op.bigEndian else 1
            attrs += [("NFTA_SET_KEY_TYPE", op.keyType), ("NFTA_SET_KEY_LEN", op.keyLength),
                      ("NFTA_SET_ID", self.setId),
                      ("NFTA_SET_USERDATA", struct.pack("=BBI", _UDATA_KEYBYTEORDER, 4, order))]
            self.message(nft_set_msg(), NFT_MSG_NEWSET, op.family, NLM_F_CREATE, attrs)
        elif isinstance(op, P.NewRule):
            attrs = [("NFTA_RULE_TABLE", self.table), ("NFTA_RULE_CHAIN", op.chain),
                     ("NFTA_RULE_EXPRESSIONS", [_expression(e) for e in op.expressions])]
            self.message(nft_rule_msg(), NFT_MSG_NEWRULE, op.family, NLM_F_APPEND | NLM_F_CREATE,
                         attrs)
        elif isinstance(op, P.Elements):
            elements = [{"attrs": [("NFTA_SET_ELEM_KEY", _value(key))]} for key in op.keys]
            attrs = [("NFTA_SET_ELEM_LIST_TABLE", self.table), ("NFTA_SET_ELEM_LIST_SET", op.set),
                     ("NFTA_SET_ELEM_LIST_ELEMENTS", elements)]
            if op.add:
                flags = NLM_F_CREATE | (NLM_F_EXCL if op.exclusive else 0)
                self.message(nft_set_elem_list_msg(), NFT_MSG_NEWSETELEM, op.family, flags, attrs)
            else:
                self.message(nft_set_elem_list_msg(), NFT_MSG_DELSETELEM, op.family, 0, attrs)
        else:
            raise TypeError(f"not an nftables operation: {op!r}")


def encodeBatch(ops: Iterable[object], table: str, priority: int,
                sequence: int) -> tuple[bytes, list[int], int]:
    """
    Encode C{ops} as one nf_tables batch.

    @return: the bytes, the sequence numbers the kernel acknowledges, and
        the last sequence number used.
    """
    encoder = _Encoder(table, priority, sequence)
    encoder.control(_NFNL_MSG_BATCH_BEGIN)
    for op in ops:
        encoder.add(op)
    encoder.control(_NFNL_MSG_BATCH_END)
    return b"".join(encoder.parts), encoder.acked, encoder.sequence


# -- the channel ----------------------------------------------------------------

class NetfilterChannel:
    """
    Synchronous nf_tables batches on a non-blocking socket (opened lazily by
    C{socketFactory}, reopened after any failure).
    """

    def __init__(self, table: str, priority: int,
                 socketFactory: Callable[[], Any] = openNetfilterSocket) -> None:
        self.table = table
        self.priority = priority
        self._socketFactory = socketFactory
        self._socket: Any = None
        self._sequence = 0

    def open(self) -> None:
        if self._socket is None:
            try:
                self._socket = self._socketFactory()
            except OSError as e:
                raise NetlinkError(e.errno or errno.EIO, str(e)) from e

    def close(self) -> None:
        if self._socket is not None:
            sock, self._socket = self._socket, None
            try:
                sock.close()
            except OSError:
                pass

    def apply(self, ops: Sequence[object]) -> None:
        """
        Run C{ops} as one transaction (all or nothing).

        @raise NetlinkError: the kernel refused one of them (its errno), or
            the socket failed.
        """
        if not ops:
            return
        self.open()
        data, acked, self._sequence = encodeBatch(ops, self.table, self.priority, self._sequence)
        self._exchange(data, acked)

    def tableExists(self, family: int) -> bool:
        """
        Whether our table exists in C{family} (C{nftplan.IPV4} / C{IPV6}).
        """
        self.open()
        self._sequence = sequence = self._sequence % 0x7FFFFFFF + 1
        msg = nft_table_msg()
        msg["attrs"] = [("NFTA_TABLE_NAME", self.table)]
        msg["nfgen_family"] = family
        msg["header"]["type"] = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
        msg["header"]["sequence_number"] = sequence
        msg.encode()
        try:
            self._exchange(bytes(msg.data), [sequence])
        except NetlinkError as e:
            if e.code == errno.ENOENT:
                return False
            raise
        return True

    def _exchange(self, data: bytes, acked: list[int]) -> None:
        waiting = set(acked)
        try:
            self._socket.send(data)
            while waiting:
                reply = self._socket.recv(_RECV_SIZE)
                if not reply:
                    raise NetlinkError(errno.EIO, "empty netlink read")
                for sequence, code in _answers(reply):
                    if sequence not in waiting:
                        continue
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    waiting.discard(sequence)
        except NetlinkError:
            self.close()
            raise
        except BlockingIOError as e:
            self.close()
            raise NetlinkError(errno.EAGAIN, "no synchronous netlink reply") from e
        except OSError as e:
            self.close()
            raise NetlinkError(e.errno or errno.EIO, str(e)) from e


def _answers(data: bytes) -> list[tuple[int, int]]:
    """
    C{(sequence, errno)} of the ACKs (errno 0) and errors in one datagram;
    a data message (the table of a query) counts as its request's success.
    """
    result = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, sequence, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if kind == _NLMSG_ERROR and offset + _HEADER.size + 4 <= len(data):
            (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            result.append((sequence, abs(code)))
        elif kind != _NLMSG_DONE:
            result.append((sequence, 0))
        offset += (length + 3) & ~3
    return result
