# -*- test-case-name: tests.unit.test_net_nftables -*-
"""
The nf_tables vocabulary our firewall speaks: constants, the expressions of
a rule and the operations of a transaction, as plain values.
L{keepalive_tx.net.nftplan} decides which operations keepalived's layout
needs; L{keepalive_tx.net.nftables} encodes them as netlink messages.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Bitwise", "Cmp", "Counter", "DeleteTable", "Dup", "Element", "Elements", "Lookup", "Meta",
    "NewChain", "NewRule", "NewSet", "NewTable", "Payload", "Verdict",
]

# nf_tables protocol families (NFPROTO_*), hooks and verdicts
IPV4 = 2
IPV6 = 10
HOOK_INPUT = 1
HOOK_OUTPUT = 3
NF_DROP = 0
NF_ACCEPT = 1
NFT_GOTO = -4
# payload bases, meta keys
NETWORK_HEADER = 1
TRANSPORT_HEADER = 2
META_IIF = 4
META_OIF = 5
META_IIFNAME = 6
META_OIFNAME = 7
META_L4PROTO = 16
META_OIFKIND = 27
# nft's data types (its datatype.h), as keepalived encodes set keys
TYPE_IPADDR = 7
TYPE_IP6ADDR = 8
TYPE_IFINDEX = 20
TYPE_ICMPV6_TYPE = 29
TYPE_IFNAME = 41
TYPE_BITS = 6
IFNAMSIZ = 16
# set flags
SET_CONSTANT = 0x2
SET_MAP = 0x8



# -- expressions (those keepalived uses) ----------------------------------------

@dataclass(frozen=True)
class Payload:
    base: int
    offset: int
    length: int
    dreg: int = 1


@dataclass(frozen=True)
class Meta:
    key: int
    dreg: int = 2


@dataclass(frozen=True)
class Cmp:
    data: bytes
    sreg: int = 1


@dataclass(frozen=True)
class Bitwise:
    mask: bytes
    xor: bytes
    sreg: int = 1
    dreg: int = 1


@dataclass(frozen=True)
class Lookup:
    """
    C{@SET} (a set), or with C{dreg} a map lookup into that register;
    C{setId} as keepalived gives it for its VMAC rules.
    """

    set: str
    sreg: int = 1
    dreg: int | None = None
    setId: int = 0


@dataclass(frozen=True)
class Dup:
    """
    C{dup to <address register> device <interface register>}.
    """

    addressReg: int
    deviceReg: int


@dataclass(frozen=True)
class Counter:
    pass


@dataclass(frozen=True)
class Verdict:
    code: int
    chain: str | None = None


# -- operations ----------------------------------------------------------------

@dataclass(frozen=True)
class NewTable:
    family: int


@dataclass(frozen=True)
class DeleteTable:
    family: int


@dataclass(frozen=True)
class NewChain:
    family: int
    name: str
    hook: int | None = None  # None: a regular chain (goto target)


@dataclass(frozen=True)
class NewSet:
    """
    A set, or a map when C{dataType} is given.
    """

    family: int
    name: str
    keyType: int
    keyLength: int
    constant: bool = False
    dataType: int | None = None
    dataLength: int = 0

    @property
    def bigEndian(self) -> bool:
        """
        keepalived's key byte order user data: big endian for address sets.
        """
        return self.keyType in (TYPE_IPADDR, TYPE_IP6ADDR)

    @property
    def flags(self) -> int:
        return (SET_CONSTANT if self.constant else 0) | (0 if self.dataType is None else SET_MAP)


@dataclass(frozen=True)
class NewRule:
    family: int
    chain: str
    expressions: tuple[object, ...]


@dataclass(frozen=True)
class Elements:
    """
    Add (C{add}) or delete set elements (keys encoded as the set wants them;
    for a map, C{data} holds each key's value).
    """

    family: int
    set: str
    keys: tuple[bytes, ...]
    add: bool = True
    exclusive: bool = True
    data: tuple[bytes, ...] = ()


#: a set's element: its key, or C{(key, value)} in a map
Element = bytes | tuple[bytes, bytes]
