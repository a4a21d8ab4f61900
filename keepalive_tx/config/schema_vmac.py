# -*- test-case-name: tests.unit.test_config_vmac -*-
"""
The VMAC keywords of a C{vrrp_instance} (C{use_vmac}, C{use_ipvlan},
C{use_vmac_addr}, C{vmac_xmit_base}), the C{vmac_prefix} /
C{vmac_addr_prefix} globals, and keepalived's end-of-instance rules for them
(L{completeVmac}), with keepalived's messages (docs/keepalived-compat.md,
"VMAC and ipvlan").

Pure: names of existing interfaces are not looked at here (the run-time
part, L{keepalive_tx.net.vmac}, does that).
"""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Any

from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.model import VirtualAddress, Vmac
from keepalive_tx.config.schema import Builder, Context

__all__ = ["completeVmac", "familyHint", "parseVmacMac", "useIpvlan", "useVmac",
           "vmacAddrPrefix", "vmacPrefix", "vmacXmitBase", "vipText"]

_IFNAMSIZ = 16
#: RFC 5798's virtual router MAC, 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID)
_RFC_PREFIX = b"\x00\x00\x5e\x00"
_HEX = set(string.hexdigits + ":")
_IPVLAN_MODES = ("bridge", "private", "vepa")


def validIfname(name: str) -> bool:
    """
    The kernel's rule for interface names: 1-15 bytes, not C{.} or C{..},
    no C{/}, C{:} or white space.
    """
    if not name or len(name.encode()) >= _IFNAMSIZ or name in (".", ".."):
        return False
    return not any(c in "/:" or c.isspace() for c in name)


def parseVmacMac(text: str) -> tuple[bytes | None, bool]:
    """
    A C{use_vmac} MAC as keepalived reads it: 6 octets of one or two hex
    digits separated by colons, or 5 octets (optionally with a trailing
    colon), the sixth then being the VRID; octets past the sixth are
    ignored.

    @return: C{(mac, useVrid)}; C{mac} is C{None} when the text is invalid
        (C{useVrid}: the last octet is a placeholder for the VRID).
    """
    octets = text.split(":")
    if len(octets) == 6 and octets[5] == "":
        octets = octets[:5]
    if len(octets) < 5:
        return None, False
    useVrid = len(octets) == 5
    values = []
    for octet in octets[:5] if useVrid else octets[:6]:
        if not 1 <= len(octet) <= 2 or not all(c in string.hexdigits for c in octet):
            return None, False
        values.append(int(octet, 16))
    if useVrid:
        values.append(0)
    return bytes(values), useVrid


def vipText(address: VirtualAddress) -> str:
    """
    A VIP as keepalived prints it: the address, and C{/prefix} unless it is
    /32 or /128.
    """
    iface = address.address
    if iface.network.prefixlen == iface.max_prefixlen:
        return str(iface.ip)
    return f"{iface.ip}/{iface.network.prefixlen}"


def _vmacBuilder(b: Builder) -> dict[str, Any]:
    vm = b.get("vmacBuilder")
    if vm is None:
        vm = b["vmacBuilder"] = {}
    return vm


# -- keywords -------------------------------------------------------------


def useVmac(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{use_vmac [[name] IFNAME] [MAC] [netlink_notify_msg] [group G]}.
    """
    vm = _vmacBuilder(b)
    vm["vmac"] = True
    vm.setdefault("location", line.location)
    args = line.tokens[1:]
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if ":" in word:  # interface names cannot contain a colon
            if "mac" in vm:
                ctx.error(line, "VMAC interface address already specified")
                continue
            if not set(word) <= _HEX:
                ctx.error(line, f"VMAC invalid MAC address {word}")
                continue
            mac, useVrid = parseVmacMac(word)
            if mac is None:
                ctx.error(line, f"VMAC invalid MAC address {word} - ignored")
            elif mac[0] & 0x01:
                ctx.error(line, f"VMAC MAC address is multicast {word} - ignoring")
            elif mac[:4] == _RFC_PREFIX and mac[4] in (1, 2):
                ctx.error(line, f"VMAC MAC address not allowed to be RFC5798 address ({word}) - ignoring")
            else:
                vm["mac"], vm["macUseVrid"] = mac, useVrid
            continue
        if word == "netlink_notify_msg":
            vm["netlinkNotifyMsg"] = True
            continue
        i = _groupOrName(ctx, line, b, vm, args, i, ipvlan=False)


def useIpvlan(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{use_ipvlan [[name] IFNAME] [IP[/PREFIX]] [bridge|private|vepa] [group G]}.
    """
    who = f"({b['name']})"
    vm = _vmacBuilder(b)
    if vm.get("ipvlan"):
        ctx.error(line, f"{who} use_ipvlan already specified")
        return
    vm["ipvlan"] = True
    vm.setdefault("location", line.location)
    vm["ipvlanLocation"] = line.location
    args = line.tokens[1:]
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word in _IPVLAN_MODES:
            if "ipvlanMode" in vm:
                ctx.error(line, f"{who} ipvlan type already specified - ignoring '{word}'")
            else:
                vm["ipvlanMode"] = word
            continue
        address = _ipvlanAddress(word)
        if address is not None:
            if "ipvlanAddress" in vm:
                ctx.error(line, f"{who} ipvlan address already specified - ignoring '{word}'")
            else:
                vm["ipvlanAddress"] = address
            continue
        i = _groupOrName(ctx, line, b, vm, args, i, ipvlan=True)


def _ipvlanAddress(word: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    address, _, prefix = word.partition("/")
    if prefix and not prefix.isdigit():
        return None
    try:
        ip = ipaddress.ip_address(address)
        return ipaddress.ip_interface(f"{ip}/{prefix}" if prefix else ip)
    except ValueError:
        return None


def _groupOrName(ctx: Context, line: LogicalLine, b: Builder, vm: dict[str, Any],
                 args: tuple[str, ...], i: int, *, ipvlan: bool) -> int:
    """
    C{group G}, C{name NAME} or a bare interface name at C{args[i - 1]};
    return the index of the next word.
    """
    word = args[i - 1]
    if word == "group" and i < len(args):
        text = args[i]
        if re.fullmatch(r"[0-9]+|0x[0-9a-fA-F]+", text) and int(text, 0) > 0xFFFFFFFF:
            what = f"({b['name']}) ipvlan group" if ipvlan else "VMAC group"
            ctx.error(line, f"{what} {text} not found")
        else:
            vm["group"] = text
        return i + 1
    if word == "name" and i < len(args):
        word = args[i]
        i += 1
    _name(ctx, line, b, vm, word, ipvlan=ipvlan)
    return i


def _name(ctx: Context, line: LogicalLine, b: Builder, vm: dict[str, Any], name: str, *,
          ipvlan: bool) -> None:
    who = f"({b['name']})"
    if "name" in vm:
        if ipvlan:
            ctx.error(line, f"{who} IPVLAN interface already specified - ignoring '{name}'")
        else:
            ctx.error(line, "VMAC interface name already specified")
        return
    if ipvlan and len(name.encode()) >= _IFNAMSIZ:
        ctx.error(line, f"{who} IPVLAN interface name '{name}' too long - ignoring")
        return
    if not ipvlan and not validIfname(name):
        ctx.error(line, f"VMAC interface name '{name}' too long or invalid characters - ignoring")
        return
    vm["name"] = name
    vm["nameLocation"] = line.location


def vmacXmitBase(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{vmac_xmit_base} (arguments are ignored, as keepalived does).
    """
    b["vmacXmitBase"] = True


def _prefix(field: str, what: str):
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        if len(line.tokens) < 2:
            ctx.error(line, f"{line.keyword}: missing parameter")
            return
        if field in b:
            ctx.error(line, f"{what} has already been specified - ignoring {line.tokens[1]}")
            return
        b[field] = line.tokens[1]

    return handler


vmacPrefix = _prefix("vmacPrefix", "vmac prefix")
vmacAddrPrefix = _prefix("vmacAddrPrefix", "vmac_addr prefix")


# -- end of instance --------------------------------------------------------


def familyHint(b: Builder) -> int | None:
    """
    The family a C{use_ipvlan} address gives the instance: keepalived takes
    the instance family from whichever comes first in the file, the ipvlan
    address or the first VIP.
    """
    vm = b.get("vmacBuilder") or {}
    address = vm.get("ipvlanAddress")
    if address is None:
        return None
    vips = b.get("virtualIpaddresses") or ()
    first = vips[0].location if vips else None
    here = vm.get("ipvlanLocation")
    if first is not None and here is not None and (first.file, first.line) < (here.file, here.line):
        return None
    return address.version


def completeVmac(ctx: Context, b: Builder, *, family: int, strict: bool,
                 takenNames: dict[str, str]) -> None:
    """
    keepalived's end-of-instance rules for VMACs: unicast needs
    C{vmac_xmit_base}; strict mode forbids a configured MAC and
    C{vmac_xmit_base}; C{promote_secondaries} is implied; an IPv4 ipvlan
    needs an address; per-VIP C{use_vmac} is checked against the
    instance's C{use_vmac} / C{use_vmac_addr}.  Sets C{b["vmac"]} (a
    L{Vmac}) and the VIPs' C{useVmac}.

    @param takenNames: VMAC names of earlier instances (name -> instance),
        updated with this one's.
    """
    name, loc = b["name"], b["location"]
    who = f"({name})"
    vm = b.pop("vmacBuilder", None) or {}
    isVmac, isIpvlan = bool(vm.get("vmac")), bool(vm.get("ipvlan"))
    vmacName = vm.get("name")
    if vmacName is not None and vmacName in takenNames:
        ctx.error(vm.get("nameLocation"),
                  f"{who} VRRP instance {takenNames[vmacName]} is already using {vmacName} - ignoring name")
        vmacName = None
    if (isVmac or isIpvlan) and b.get("unicastPeers"):
        if not b.get("interface"):
            ctx.error(loc, f"{who}: Cannot use VMAC/ipvlan with unicast and no interface - clearing use_vmac")
            isVmac = isIpvlan = False
        elif not b.get("vmacXmitBase"):
            ctx.error(loc, f"{who} unicast with use_vmac requires vmac_xmit_base - setting")
            b["vmacXmitBase"] = True
    mac = vm.get("mac")
    if strict and mac is not None:
        ctx.error(loc, f"{who}: cannot specify MAC address with strict mode - clearing")
        mac = None
    if mac is not None and vm.get("macUseVrid"):
        mac = mac[:5] + bytes([b["virtualRouterId"]])
    if isVmac and strict and b.get("vmacXmitBase"):
        ctx.error(loc, f"{who} xmit_base is incompatible with strict mode - resetting")
        b["vmacXmitBase"] = False
    if (isVmac or isIpvlan) and b.get("promoteSecondaries"):
        ctx.error(loc, f"{who} promote_secondaries is automatically set for vmacs - ignoring")
        b["promoteSecondaries"] = False
    fault = None
    address = vm.get("ipvlanAddress") if isIpvlan else None
    if isIpvlan:
        if address is not None and address.version != family:
            ctx.error(vm.get("ipvlanLocation"), f"{who} ipvlan address[{vm['ipvlanAddress']}] MUST match "
                      "vrrp instance family !!! Skipping...")
            address = None
        if family == 4 and address is None:
            ctx.error(loc, f"{who} IPv4 ipvlan requires a source ip address to be configured. "
                      "setting instance to fault state")
            fault = "IPv4 ipvlan without an address"
    if b.get("vmacXmitBase") and not isVmac:
        ctx.error(loc, f"{who} vmac_xmit_base is only valid with a vmac")
        b["vmacXmitBase"] = False
    _checkVipVmacs(ctx, b, who, family, isVmac)
    if not (isVmac or isIpvlan):
        b["useVmacAddr"] = bool(b.get("useVmacAddr"))
        return
    if vmacName is not None:
        takenNames[vmacName] = name
    b["vmac"] = Vmac(
        name=vmacName,
        mac=":".join(f"{x:02x}" for x in mac) if mac is not None else None,
        ipvlan=isIpvlan,
        ipvlanAddress=address,
        ipvlanMode=vm.get("ipvlanMode") if isIpvlan else None,
        netlinkNotifyMsg=bool(vm.get("netlinkNotifyMsg")),
        group=vm.get("group"),
        fault=fault,
    )


def _checkVipVmacs(ctx: Context, b: Builder, who: str, family: int, isVmac: bool) -> None:
    interface = b.get("interface")
    vmacAddr = bool(b.get("useVmacAddr"))
    for field in ("virtualIpaddresses", "virtualIpaddressesExcluded"):
        kept = []
        for a in b.get(field) or ():
            if a.useVmac:
                onInstanceIf = a.dev is None or a.dev == interface
                if onInstanceIf and isVmac and a.family == family:
                    ctx.error(a.location, f"{who} use_vmac specified for VIP/eVIP {vipText(a)} and vrrp instance")
                    a = _withUseVmac(a, False)
                elif (not onInstanceIf or a.family != family) and vmacAddr:
                    ctx.error(a.location, f"{who} use_vmac_addr specified and use_vmac specified for VIP/eVIP "
                              f"{vipText(a)}")
                    a = _withUseVmac(a, False)
            kept.append(a)
        if field in b:
            b[field] = kept


def _withUseVmac(a: VirtualAddress, value: bool) -> VirtualAddress:
    from dataclasses import replace

    return replace(a, useVmac=value)
