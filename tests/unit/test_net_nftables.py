"""
The hand-written nf_tables encoding of L{keepalive_tx.net.nftables}
checked byte for byte against pyroute2's nf_tables message classes (the
encoder it replaced for speed; see bench/nftables.py), and against the
batches keepalived 2.2.7 sent for its VMACs (tests/data/nftables/).
"""

from __future__ import annotations

import json
import os
import struct
from ipaddress import ip_address
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, nfgen_msg
from pyroute2.netlink.nfnetlink.nftsocket import (
    NFT_MSG_DELSETELEM,
    NFT_MSG_DELTABLE,
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
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.net import nftplan as P
from keepalive_tx.net.nftables import encodeBatch

_NFNL_MSG_BATCH_BEGIN = 0x10
_NFNL_MSG_BATCH_END = 0x11
_UDATA_KEYBYTEORDER = 0
_UDATA_DATABYTEORDER = 1


class _ElementList(nft_set_elem_list_msg):
    """
    pyroute2 numbers the elements of a list 1, 2, ...; libnftnl (and so
    keepalived) types every one NFTA_LIST_ELEM (1), as we do.
    """

    class set_elem(nft_set_elem_list_msg.set_elem):
        header_type = 1


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
        attrs: list[tuple[str, Any]] = [("NFTA_LOOKUP_SREG", e.sreg)]
        if e.dreg is not None:
            attrs.append(("NFTA_LOOKUP_DREG", e.dreg))
        attrs.append(("NFTA_LOOKUP_SET", e.set))
        if e.setId:
            attrs.append(("NFTA_LOOKUP_SET_ID", e.setId))
        return _expr("lookup", *attrs)
    if isinstance(e, P.Dup):
        return _expr("dup", ("NFTA_DUP_SREG_ADDR", e.addressReg),
                     ("NFTA_DUP_SREG_DEV", e.deviceReg))
    if isinstance(e, P.Counter):
        return _expr("counter")
    if isinstance(e, P.Verdict):
        verdict: list[tuple[str, Any]] = [("NFTA_VERDICT_CODE", e.code)]
        if e.chain is not None:
            verdict.append(("NFTA_VERDICT_CHAIN", e.chain))
        return _expr("immediate", ("NFTA_IMMEDIATE_DREG", 0),
                     ("NFTA_IMMEDIATE_DATA", {"attrs": [("NFTA_DATA_VERDICT", {"attrs": verdict})]}))
    raise TypeError(f"not an nftables expression: {e!r}")


class _Reference:
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
            flags = {name for name, on in (("NFT_SET_CONSTANT", op.constant),
                                           ("NFT_SET_MAP", op.dataType is not None)) if on}
            if flags:
                attrs.append(("NFTA_SET_FLAGS", frozenset(flags)))
            order = 2 if op.bigEndian else 1
            userData = struct.pack("=BBI", _UDATA_KEYBYTEORDER, 4, order)
            attrs += [("NFTA_SET_KEY_TYPE", op.keyType), ("NFTA_SET_KEY_LEN", op.keyLength)]
            if op.dataType is not None:
                attrs += [("NFTA_SET_DATA_TYPE", op.dataType), ("NFTA_SET_DATA_LEN", op.dataLength)]
                userData += struct.pack("=BBI", _UDATA_DATABYTEORDER, 4, 1)
            attrs += [("NFTA_SET_ID", self.setId), ("NFTA_SET_USERDATA", userData)]
            self.message(nft_set_msg(), NFT_MSG_NEWSET, op.family, NLM_F_CREATE, attrs)
        elif isinstance(op, P.NewRule):
            attrs = [("NFTA_RULE_TABLE", self.table), ("NFTA_RULE_CHAIN", op.chain),
                     ("NFTA_RULE_EXPRESSIONS", [_expression(e) for e in op.expressions])]
            self.message(nft_rule_msg(), NFT_MSG_NEWRULE, op.family, NLM_F_APPEND | NLM_F_CREATE,
                         attrs)
        elif isinstance(op, P.Elements):
            data = op.data or (None,) * len(op.keys)
            elements = [{"attrs": [("NFTA_SET_ELEM_KEY", _value(key))]
                         + ([] if value is None else [("NFTA_SET_ELEM_DATA", _value(value))])}
                        for key, value in zip(op.keys, data, strict=True)]
            attrs = [("NFTA_SET_ELEM_LIST_TABLE", self.table), ("NFTA_SET_ELEM_LIST_SET", op.set),
                     ("NFTA_SET_ELEM_LIST_ELEMENTS", elements)]
            if op.add:
                flags = NLM_F_CREATE | (NLM_F_EXCL if op.exclusive else 0)
                self.message(_ElementList(), NFT_MSG_NEWSETELEM, op.family, flags, attrs)
            else:
                self.message(_ElementList(), NFT_MSG_DELSETELEM, op.family, 0, attrs)
        else:
            raise TypeError(f"not an nftables operation: {op!r}")


def referenceBatch(ops, table: str, priority: int, sequence: int) -> bytes:
    encoder = _Reference(table, priority, sequence)
    encoder.control(_NFNL_MSG_BATCH_BEGIN)
    for op in ops:
        encoder.add(op)
    encoder.control(_NFNL_MSG_BATCH_END)
    return b"".join(encoder.parts)


class EncodingTests(SynchronousTestCase):
    def test_sameBytesAsPyroute2(self) -> None:
        """
        Every operation of a full IPv4 + IPv6 set-up (counters on, both
        link-local sets), element deletions and table deletions encode to
        the bytes pyroute2's classes make.
        """
        settings = P.FirewallSettings(table="kt", priority=-7, counters=True)
        items = [P.Blocked(ip_address(a), ifindex=3, ifname="eth0") for a in
                 ("192.0.2.1", "198.51.100.7", "2001:db8::1", "fe80::1")]
        items.append(P.Blocked(ip_address("fe80::2"), ifname="eth1", byName=True))
        ops, state = P.changes(P.PlanState(), settings, P.wantedElements(items))
        more, _ = P.changes(state, settings, P.wantedElements(items[1:]))
        ops += more + P.teardown(state)
        self.assertIn(P.Elements(P.IPV4, "vips", (ip_address("192.0.2.1").packed,), add=False), ops)
        for op in ops:
            ours, _, _ = encodeBatch([op], "kt", -7, 100)
            self.assertEqual(ours, referenceBatch([op], "kt", -7, 100), op)
        ours, acked, last = encodeBatch(ops, "kt", -7, 0x7FFFFFFE)
        self.assertEqual(ours, referenceBatch(ops, "kt", -7, 0x7FFFFFFE))
        self.assertEqual((acked[:2], last), ([1, 2], len(ops) + 1))
        self.assertEqual(struct.unpack_from("=I", ours, 8), (0x7FFFFFFF,))

    def test_vmacsSameBytesAsPyroute2(self) -> None:
        """
        The VMAC parts (maps, the report and router-solicitation rules with
        C{dup} and map lookups, elements with values) after a VIP set-up,
        with counters, and their removal.
        """
        settings = P.FirewallSettings(table="kt", priority=-7, counters=True)
        vmacs = [P.VmacRules(7, 2, frozenset({P.IPV4, P.IPV6})), P.VmacRules(9, 3, frozenset({P.IPV6}))]
        blocked = [P.Blocked(ip_address("192.0.2.1"))]
        ops, state = P.changes(P.PlanState(), settings, P.wantedElements(blocked))
        more, state = P.changes(state, settings, P.wantedElements(blocked, vmacs))
        less, _ = P.changes(state, settings, P.wantedElements(blocked, vmacs[1:]))
        self.assertIn(P.Elements(P.IPV4, "vmac_map", (struct.pack("=I", 7),), add=False,
                                 exclusive=False, data=(struct.pack("=I", 2),)), less)
        for op in ops + more + less:
            ours, _, _ = encodeBatch([op], "kt", -7, 100)
            self.assertEqual(ours, referenceBatch([op], "kt", -7, 100), op)


# -- keepalived's own batches ---------------------------------------------------

_CAPTURE = os.path.join(os.path.dirname(__file__), "..", "data", "nftables",
                        "keepalived-2.2.7-vmac.json")
_MESSAGES = {0: nft_table_msg, 2: nft_table_msg, 3: nft_chain_msg, 6: nft_rule_msg,
             9: nft_set_msg, 12: _ElementList, 14: _ElementList}
#: numbered per process by keepalived (and per batch by us); the kernel
#: finds sets by name
_IGNORED = {"NFTA_SET_ID", "NFTA_SET_ELEM_LIST_SET_ID"}


def _canonical(value: Any) -> Any:
    """
    A decoded attribute tree with each level's attributes in type order
    (the kernel reads them by type; libnftnl writes some in another order
    than ours), IDs left out.
    """
    if hasattr(value, "get") and "attrs" in value:
        attrs = [(k, _canonical(v)) for k, v in value["attrs"] if k not in _IGNORED]
        return sorted(attrs, key=lambda kv: kv[0])
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def decodedBatch(data: bytes) -> dict[int, list[tuple[int, int, Any]]]:
    """
    The messages of one batch, by family: C{(type, flags, attributes)},
    sequence numbers left out.
    """
    out: dict[int, list[tuple[int, int, Any]]] = {}
    offset = 0
    while offset < len(data):
        length, kind, flags = struct.unpack_from("=IHH", data, offset)
        if kind >> 8 == NFNL_SUBSYS_NFTABLES:
            msg = _MESSAGES[kind & 0xFF](data[offset:offset + length])
            msg.decode()
            out.setdefault(msg["nfgen_family"], []).append((kind, flags, _canonical(msg)))
        offset += (length + 3) & ~3
    return out


class KeepalivedBatchTests(SynchronousTestCase):
    """
    The batches Debian's keepalived 2.2.7 sent in a namespace (captured
    with strace) against ours for the same events: the same messages with
    the same attributes, family by family (keepalived sets up and fills
    one family at a time within a batch, we set up both first).
    """

    def setUp(self) -> None:
        with open(_CAPTURE) as f:
            self.scenarios = {s["name"]: s for s in json.load(f)["scenarios"]}

    def check(self, name: str, settings: P.FirewallSettings,
              steps: list[tuple[list[P.VmacRules], list[P.Blocked]]]) -> None:
        captured = [bytes.fromhex(b) for b in self.scenarios[name]["batches"]]
        self.assertEqual(len(captured), len(steps) + 1)
        state = P.PlanState()
        batches = []
        for vmacs, blocked in steps:
            ops, state = P.changes(state, settings, P.wantedElements(blocked, vmacs))
            batches.append(ops)
        batches.append(P.teardown(state))
        for i, (ops, theirs) in enumerate(zip(batches, captured, strict=True)):
            ours, _, _ = encodeBatch(ops, settings.table, settings.priority, 0)
            self.assertEqual(decodedBatch(ours), decodedBatch(theirs), f"{name} batch {i}")

    def test_ipv4AndIpv6Vmacs(self) -> None:
        """
        An IPv4 instance's VMAC (index 8), an IPv6 instance's (9), both on
        eth0 (3): created, then deleted at stop, then the tables.
        """
        v4, v6 = (P.VmacRules(8, 3, frozenset({P.IPV4})), P.VmacRules(9, 3, frozenset({P.IPV6})))
        self.check("vmac-ipv4-ipv6", P.FirewallSettings(),
                   [([v4], []), ([v4, v6], []), ([v6], []), ([], [])])

    def test_otherFamilyStrictCounters(self) -> None:
        """
        C{vrrp_strict} and C{nftables_counters}; an IPv4 instance with an
        IPv6 eVIP: its VMAC (10) in both tables, then as MASTER its VIP and
        eVIP blocked, unblocked and the VMAC deleted at stop.
        """
        vmacs = [P.VmacRules(10, 3, frozenset({P.IPV4, P.IPV6}))]
        blocked = [P.Blocked(ip_address("192.0.2.100")), P.Blocked(ip_address("2001:db8::100"))]
        self.check("vmac-other-family-strict-counters", P.FirewallSettings(counters=True),
                   [(vmacs, []), (vmacs, blocked), (vmacs, []), ([], [])])
