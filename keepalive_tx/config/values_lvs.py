"""
Pure converters for the argument syntaxes of the LVS keywords: virtual-server
headers, C{virtual_server_group} entries, C{lvs_method} lines, HTTP status-code
ranges, hex payload patterns, persistence granularity, digests.

They take tokens/text and return model values, or raise L{BadValue} whose
message says what is wrong and what is allowed. No diagnostics, no I/O.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import NamedTuple

from keepalive_tx.config.model_lvs import (
    AddressRange,
    ForwardingMethod,
    FwmarkEntry,
    HexPattern,
    IPAddress,
)

UINT32_MAX = 4294967295
INT32_MAX = 2147483647

_NAT = ForwardingMethod("NAT")
_DR = ForwardingMethod("DR")
_TUN = ForwardingMethod("TUN", "ipip")
_SIMPLE_METHODS = {"NAT": _NAT, "DR": _DR, "TUN": _TUN}


_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_fromBytes = int.from_bytes


class BadValue(ValueError):
    """
    An argument could not be converted; C{str(e)} is the user message.
    """


# Real servers repeat across virtual servers: parsed addresses (immutable)
# are shared, up to this many spellings.
_ADDRESSES: dict[str, IPAddress] = {}
_MAX_ADDRESSES = 16384


def parseAddress(text: str, what: str = "IP address") -> IPAddress:
    """
    A numeric IPv4/IPv6 address.
    """
    address = _ADDRESSES.get(text)
    if address is not None:
        return address
    try:
        # Fast path for the common dotted quad (inet_pton is as strict as ipaddress).
        address = IPv4Address(_fromBytes(_pton(_AF_INET, text), "big"))
    except (OSError, ValueError):
        try:
            address = ip_address(text)
        except ValueError:
            raise BadValue(f"invalid {what} '{text}' (numeric IPv4 or IPv6 address expected)") from None
    if len(_ADDRESSES) >= _MAX_ADDRESSES:
        _ADDRESSES.clear()
    _ADDRESSES[text] = address
    return address


def parseUnsigned(text: str, lo: int, hi: int, what: str) -> int:
    """
    A decimal integer in [lo, hi].
    """
    if not text.isdigit() or not text.isascii():
        if text[:1] == "-" and text[1:].isdigit():
            raise BadValue(f"{what} '{text}' is outside range [{lo}, {hi}]")
        raise BadValue(f"invalid {what} '{text}' (decimal integer in [{lo}, {hi}] expected)")
    value = int(text)
    if value < lo or value > hi:
        raise BadValue(f"{what} '{text}' is outside range [{lo}, {hi}]")
    return value


def parsePort(text: str, what: str = "port", lo: int = 0) -> int:
    return parseUnsigned(text, lo, 65535, what)


class VsHeader(NamedTuple):
    """
    The parsed C{virtual_server ...} header: exactly one of C{address},
    C{fwmark}, C{group} is set.
    """

    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    family: int | None = None
    group: str | None = None


def parseFamily(text: str) -> int:
    if text == "inet":
        return 4
    if text == "inet6":
        return 6
    raise BadValue(f"unknown address family '{text}' (inet or inet6 expected)")


def parseVsHeader(args: tuple[str, ...] | list[str]) -> VsHeader:
    """
    C{IP [PORT]} | C{fwmark N [inet|inet6]} | C{group NAME}.
    """
    if not args:
        raise BadValue("virtual_server needs 'IP [PORT]', 'fwmark N [inet|inet6]' or 'group NAME'")
    first = args[0]
    if first == "fwmark":
        if len(args) < 2:
            raise BadValue("virtual_server fwmark: missing mark (1..4294967295)")
        mark = parseUnsigned(args[1], 1, UINT32_MAX, "fwmark")
        family = None
        if len(args) > 2:
            family = parseFamily(args[2])
        if len(args) > 3:
            raise BadValue(f"virtual_server fwmark: unexpected '{' '.join(args[3:])}'")
        return VsHeader(fwmark=mark, family=family)
    if first == "group":
        if len(args) < 2:
            raise BadValue("virtual_server group: missing group name")
        if len(args) > 2:
            raise BadValue(f"virtual_server group: unexpected '{' '.join(args[2:])}'")
        return VsHeader(group=args[1])
    address = parseAddress(first, "virtual server IP address")
    port = None
    if len(args) > 1:
        port = parsePort(args[1], "virtual server port")
    if len(args) > 2:
        raise BadValue(f"virtual_server: unexpected '{' '.join(args[2:])}' after 'IP [PORT]'")
    return VsHeader(address=address, port=port, family=address.version)


def parseServerAddress(args: tuple[str, ...] | list[str], what: str) -> tuple[IPAddress, int | None]:
    """
    C{IP [PORT]} of a real or sorry server.
    """
    if not args:
        raise BadValue(f"{what}: missing 'IP [PORT]'")
    address = parseAddress(args[0], f"{what} IP address")
    port = None
    if len(args) > 1:
        port = parsePort(args[1], f"{what} port")
    if len(args) > 2:
        raise BadValue(f"{what}: unexpected '{' '.join(args[2:])}' after 'IP [PORT]'")
    return address, port


def _rangeEnd(first: IPAddress, text: str) -> IPAddress:
    """
    The end of C{first-text}: a full address, or the last IPv4 octet
    (decimal) / last IPv6 group (hex).
    """
    if isinstance(first, IPv4Address):
        if "." in text:
            end = parseAddress(text, "range end address")
        else:
            if not text.isdigit() or int(text) > 255:
                raise BadValue(f"invalid range end '{text}' (last octet 0..255 or full address expected)")
            end = IPv4Address((int(first) & ~0xFF) | int(text))
    else:
        if ":" in text:
            end = parseAddress(text, "range end address")
        else:
            try:
                group = int(text, 16)
            except ValueError:
                group = -1
            if not 0 <= group <= 0xFFFF or len(text) > 4:
                raise BadValue(f"invalid range end '{text}' (last group 0..ffff in hex or full address expected)")
            end = IPv6Address((int(first) & ~0xFFFF) | group)
    if end.version != first.version:
        raise BadValue(f"range end '{text}' is not the same address family as '{first}'")
    if int(end) < int(first):
        raise BadValue(f"range end '{text}' is below range start '{first}'")
    return end


def parseAddressRange(text: str) -> tuple[IPAddress, IPAddress]:
    """
    C{IP}, C{IP-END} or C{IP/PREFIX} (the range from IP to the end of its
    prefix).
    """
    if "/" in text:
        addr, _, prefix = text.partition("/")
        first = parseAddress(addr)
        bits = 32 if first.version == 4 else 128
        plen = parseUnsigned(prefix, 0, bits, "prefix length")
        host = (1 << (bits - plen)) - 1
        return first, type(first)(int(first) | host)
    if "-" in text:
        addr, _, end = text.partition("-")
        first = parseAddress(addr)
        return first, _rangeEnd(first, end)
    first = parseAddress(text)
    return first, first


def parseVsgEntry(tokens: tuple[str, ...] | list[str]) -> AddressRange | FwmarkEntry:
    """
    One line of a C{virtual_server_group}: C{IP|RANGE [PORT]} or
    C{fwmark N [inet|inet6]}.
    """
    if tokens[0] == "fwmark":
        if len(tokens) < 2:
            raise BadValue("fwmark entry needs a mark (1..4294967295)")
        mark = parseUnsigned(tokens[1], 1, UINT32_MAX, "fwmark")
        family = parseFamily(tokens[2]) if len(tokens) > 2 else None
        if len(tokens) > 3:
            raise BadValue(f"unexpected '{' '.join(tokens[3:])}' after 'fwmark N [inet|inet6]'")
        return FwmarkEntry(mark, family)
    try:
        first, last = parseAddressRange(tokens[0])
    except BadValue as e:
        raise BadValue(
            f"{e}; entries are 'IP [PORT]', 'IP-END [PORT]', 'IP/PREFIX [PORT]' or 'fwmark N [inet|inet6]'"
        ) from None
    port = parsePort(tokens[1], "port") if len(tokens) > 1 else None
    if len(tokens) > 2:
        raise BadValue(f"unexpected '{' '.join(tokens[2:])}' after address and port")
    return AddressRange(first, last, port)


def parseLvsMethod(args: tuple[str, ...] | list[str]) -> ForwardingMethod:
    """
    C{NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]}.
    """
    if not args:
        raise BadValue("missing forwarding method (NAT, DR or TUN)")
    kind = args[0]
    if len(args) == 1:
        method = _SIMPLE_METHODS.get(kind)
        if method is not None:
            return method
    if kind not in _SIMPLE_METHODS:
        raise BadValue(f"unknown forwarding method '{kind}' (NAT, DR or TUN)")
    if kind != "TUN":
        raise BadValue(f"unexpected '{' '.join(args[1:])}' after {kind} (options are only for TUN)")
    ttype = "ipip"
    port = None
    csum = None
    i = 1
    while i < len(args):
        word = args[i]
        if word == "type" and i + 1 < len(args):
            ttype = args[i + 1]
            if ttype not in ("ipip", "gue", "gre"):
                raise BadValue(f"unknown tunnel type '{ttype}' (ipip, gue or gre)")
            i += 2
        elif word == "port" and i + 1 < len(args):
            port = parsePort(args[i + 1], "tunnel port", lo=1)
            i += 2
        elif word in ("nocsum", "csum", "remcsum"):
            csum = word
            i += 1
        else:
            raise BadValue(
                f"unknown tunnel option '{word}' (type ipip|gue|gre, port N, nocsum|csum|remcsum)"
            )
    if (ttype == "gue") != (port is not None):
        raise BadValue("gue tunnels require port, otherwise cannot have port")
    if csum is not None and ttype == "ipip":
        raise BadValue(f"checksum option '{csum}' needs a gue or gre tunnel")
    if csum == "remcsum" and ttype != "gue":
        raise BadValue("remcsum is only valid for gue tunnels")
    return ForwardingMethod("TUN", ttype, port, csum)


def parseStatusCodes(args: tuple[str, ...] | list[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """
    C{status_code N|A-B ...} with codes in 100..599.

    @return: the valid ranges and the invalid words.
    """
    good: list[tuple[int, int]] = []
    bad: list[str] = []
    for word in args:
        low, sep, high = word.partition("-")
        if (
            low.isdigit()
            and (not sep or high.isdigit())
            and 100 <= int(low) <= 599
            and (not sep or int(low) <= int(high) <= 599)
        ):
            good.append((int(low), int(high) if sep else int(low)))
        else:
            bad.append(word)
    return good, bad


_HEX = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}


def parseHexPattern(text: str, wildcards: bool) -> HexPattern:
    """
    keepalived's hex string: blanks separate groups, characters pair into
    bytes within a group (a lone trailing nibble is a byte of its own), and
    with C{wildcards} C{x}/C{X} matches any nibble.
    """
    value = bytearray()
    mask = bytearray()
    for group in text.split():
        for i in range(0, len(group), 2):
            pair = group[i : i + 2]
            v = m = 0
            for ch in pair:
                v <<= 4
                m <<= 4
                n = _HEX.get(ch)
                if n is not None:
                    v |= n
                elif wildcards and ch in "xX":
                    m |= 0xF
                else:
                    allowed = "hex digits or X wildcards" if wildcards else "hex digits"
                    raise BadValue(f"invalid character '{ch}' in hex string '{text}' ({allowed} expected)")
            value.append(v)
            mask.append(m)
    if not value:
        raise BadValue("empty hex string")
    return HexPattern(bytes(value), bytes(mask))


def parseGranularity(text: str, family: int | None) -> tuple[int, int]:
    """
    C{persistence_granularity}: a solid IPv4 netmask or an IPv6 prefix
    length 1..128. The family comes from the VS, else from the text.

    @return: C{(prefixLength, family)}.
    """
    if family is None:
        family = 4 if "." in text else 6
    if family == 6:
        if not text.isdigit() or not 1 <= int(text) <= 128:
            raise BadValue(f"invalid IPv6 persistence_granularity '{text}' (prefix length 1..128 expected)")
        return int(text), 6
    try:
        mask = int(IPv4Address(text))
    except ValueError:
        raise BadValue(f"invalid IPv4 persistence_granularity '{text}' (netmask such as 255.255.255.0 expected)") from None
    inverted = ~mask & 0xFFFFFFFF
    if mask == 0 or inverted & (inverted + 1):
        raise BadValue(f"IPv4 persistence_granularity netmask '{text}' is not solid")
    return 32 - inverted.bit_length(), 4


def parseDigest(text: str) -> str:
    """
    A 32-hex-digit MD5 digest, returned in lower case.
    """
    if len(text) != 32:
        raise BadValue(f"digest '{text}' character length should be 32 rather than {len(text)}")
    if any(c not in _HEX for c in text):
        raise BadValue(f"digest '{text}' is not hexadecimal (32 hex digits expected)")
    return text.lower()
