# -*- test-case-name: tests.unit.test_net_vmac -*-
"""
VMAC (macvlan) and ipvlan interfaces through rtnetlink: created, brought up
and configured as keepalived does, deleted at stop.

L{VmacLinks} carries out L{keepalive_tx.net.vmac.VmacSpec}s on a
L{keepalive_tx.net.netlink.RouteChannel} (synchronous ~0.1-0.5 ms requests
on the reactor thread, see that module), the sysctls through
L{keepalive_tx.net.sysctl.VmacSysctls}, addresses through an
L{keepalive_tx.net.addresses.IAddressManager}.  Steps, keepalived's order:

  1. an existing interface of the name: a private macvlan on the right
     parent with the right MAC (or an L2 ipvlan) is used as it is; one on
     another parent is deleted and created again; one with the wrong MAC or
     mode is updated;
  2. created (C{RTM_NEWLINK}, C{NLM_F_CREATE|NLM_F_EXCL}): macvlan mode
     private or ipvlan mode L2 (flags bridge/private/vepa), the parent's
     link group unless C{group} is configured;
  3. marked ours: C{IFLA_IFALIAS} L{ALIAS} with our pid, so that a later
     run can tell a VMAC a killed run left behind (L{VmacLinks.cleanStale});
  4. IPv4 macvlans: the sysctls; IPv6 off unless needed
     (C{disable_ipv6}); no automatic link-local (C{addr_gen_mode} none);
  5. up; an IPv6 macvlan then gets its parent's link-local address
     (adverts leave from it, RFC 5798 7.4); an ipvlan its configured
     address.

L{VmacRegistry} is what a VRRP service hands to its successor at a reload:
which interfaces are in use by whom, and the sysctls to put back; an
interface is deleted when its last user lets it go.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from twisted.logger import Logger

from keepalive_tx.net.addresses import Vip
from keepalive_tx.net.netlink import (
    IFF_UP,
    RTM_DELLINK,
    RTM_GETLINK,
    RTM_NEWLINK,
    NetlinkError,
    RouteChannel,
)
from keepalive_tx.net.sysctl import ProcSys, VmacSysctls, conf
from keepalive_tx.net.vmac import ExistingLink, VmacSpec, linkLocalFor, macText

__all__ = ["ALIAS", "VmacLinks", "VmacRegistry", "aliasPid", "createMessage", "existingFromMessage"]

#: what our interfaces' alias starts with (C{ip link} shows it)
ALIAS = "keepalive_tx vrrp pid="
_ALIAS_RE = re.compile(re.escape(ALIAS) + r"(\d+)$")
_NLM_F_EXCL = 0x200
_NLM_F_CREATE = 0x400
_ADDR_GEN_MODE_NONE = 1
_IPVLAN_MODE_L2 = 0
_MACVLAN_MODE_PRIVATE = 1


_IFLA_LINKINFO = 18
_IFLA_INFO_KIND = 1
_IFLA_INFO_DATA = 2
_IFLA_IPVLAN_MODE = 1
_IFLA_IPVLAN_FLAGS = 2


def _rtattr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


class _linkmsgWithTail(ifinfmsg):
    """
    An C{ifinfmsg} with attributes appended as raw bytes after encoding:
    pyroute2's ipvlan codec has no C{IFLA_IPVLAN_FLAGS}, so the ipvlan link
    info is built here (C{tail}).
    """

    tail = b""

    def encode(self) -> Any:
        result = super().encode()
        if self.tail:
            self.data.extend(self.tail)
            struct.pack_into("=I", self.data, 0, len(self.data))
            self["header"]["length"] = len(self.data)
        return result


def ipvlanLinkInfo(flags: int) -> bytes:
    """
    C{IFLA_LINKINFO} for an L2 ipvlan with C{flags} (bridge 0, private 1,
    vepa 2).
    """
    data = (_rtattr(_IFLA_IPVLAN_MODE, struct.pack("=H", _IPVLAN_MODE_L2))
            + _rtattr(_IFLA_IPVLAN_FLAGS, struct.pack("=H", flags)))
    return _rtattr(_IFLA_LINKINFO, _rtattr(_IFLA_INFO_KIND, b"ipvlan\0") + _rtattr(_IFLA_INFO_DATA, data))


def aliasPid(alias: str | None) -> int | None:
    """
    The pid in one of our aliases, or C{None} if it is not ours.
    """
    match = _ALIAS_RE.match(alias or "")
    return int(match.group(1)) if match else None


def existingFromMessage(msg: Any) -> ExistingLink | None:
    """
    A macvlan/ipvlan from an C{RTM_NEWLINK} message (C{None} for others).
    """
    try:
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        if kind not in ("macvlan", "ipvlan"):
            return None
        data = info.get_attr("IFLA_INFO_DATA")
        mode = None
        if data is not None and hasattr(data, "get_attr"):
            mode = data.get_attr("IFLA_MACVLAN_MODE" if kind == "macvlan" else "IFLA_IPVLAN_MODE")
        mac = msg.get_attr("IFLA_ADDRESS")
        return ExistingLink(
            index=int(msg["index"]), name=str(msg.get_attr("IFLA_IFNAME")), kind=kind,
            mac=bytes.fromhex(mac.replace(":", "")) if isinstance(mac, str) else None,
            mode=mode, baseIndex=msg.get_attr("IFLA_LINK"), alias=msg.get_attr("IFLA_IFALIAS"),
            up=bool(int(msg["flags"]) & IFF_UP))
    except Exception:
        return None


# -- messages -----------------------------------------------------------------


def _linkMsg(index: int = 0) -> ifinfmsg:
    msg = _linkmsgWithTail()
    msg["family"] = socket.AF_UNSPEC
    msg["index"] = index
    return msg


def createMessage(spec: VmacSpec, baseIndex: int, group: int | None,
                  updateIndex: int | None = None) -> ifinfmsg:
    """
    C{RTM_NEWLINK} creating C{spec} on parent C{baseIndex} (or, with
    C{updateIndex}, fixing an existing macvlan's MAC and mode).
    """
    msg = _linkMsg(updateIndex or 0)
    attrs: list[tuple[str, Any]] = []
    if spec.kind == "macvlan":
        attrs.append(("IFLA_LINKINFO", {"attrs": [
            ("IFLA_INFO_KIND", "macvlan"),
            ("IFLA_INFO_DATA", {"attrs": [("IFLA_MACVLAN_MODE", _MACVLAN_MODE_PRIVATE)]})]}))
    else:
        msg.tail = ipvlanLinkInfo(spec.ipvlanFlags)
    if updateIndex is None:
        attrs += [("IFLA_LINK", baseIndex), ("IFLA_IFNAME", spec.name)]
        if group is not None:
            attrs.append(("IFLA_GROUP", group))
    if spec.mac is not None:
        attrs.append(("IFLA_ADDRESS", macText(spec.mac)))
    msg["attrs"] = attrs
    return msg


def upMessage(index: int) -> ifinfmsg:
    msg = _linkMsg(index)
    msg["flags"] = msg["change"] = IFF_UP
    return msg


def addrGenModeNoneMessage(index: int) -> ifinfmsg:
    """
    No automatic (EUI-64) link-local address: RFC 5798 7.4 wants adverts
    from a real address, not one derived from the virtual MAC.
    """
    msg = _linkMsg(index)
    msg["attrs"] = [("IFLA_AF_SPEC", {"attrs": [("AF_INET6", {"attrs": [
        ("IFLA_INET6_ADDR_GEN_MODE", _ADDR_GEN_MODE_NONE)]})]})]
    return msg


def attrMessage(index: int, name: str, value: Any) -> ifinfmsg:
    msg = _linkMsg(index)
    msg["attrs"] = [(name, value)]
    return msg


# -- state shared across a reload -------------------------------------------------


class VmacRegistry:
    """
    The interfaces in use and by whom, and the sysctls to put back; shared
    by a VRRP service and its successor after a reload.
    """

    def __init__(self, sysctls: VmacSysctls | None = None) -> None:
        self.sysctls = sysctls if sysctls is not None else VmacSysctls()
        self.users: dict[str, set[object]] = {}
        self.specs: dict[str, VmacSpec] = {}

    def claim(self, spec: VmacSpec, owner: object) -> None:
        self.users.setdefault(spec.name, set()).add(owner)
        self.specs[spec.name] = spec

    def release(self, owner: object) -> list[VmacSpec]:
        """
        Drop C{owner}'s claims; return the interfaces nobody uses any more.
        """
        free = []
        for name, users in list(self.users.items()):
            if owner not in users:
                continue
            users.discard(owner)
            if not users:
                del self.users[name]
                free.append(self.specs.pop(name))
        return free


# -- the manager -----------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VmacLinks:
    """
    Creates, keeps and deletes the VMAC/ipvlan interfaces of one VRRP
    service (C{owner}) in the namespace of C{channel}.  Never raises:
    failures are logged and reported as C{False}.
    """

    log = Logger()

    def __init__(self, channel: RouteChannel, addresses: Any, registry: VmacRegistry | None = None,
                 owner: object = None, *, groups: Callable[[str], int] | None = None,
                 proc: ProcSys | None = None, pid: int | None = None,
                 alive: Callable[[int], bool] = _alive) -> None:
        """
        @param addresses: an L{keepalive_tx.net.addresses.IAddressManager}.
        @param groups: C{name -> number} for C{group} names (iproute2's
            C{group} file), raising C{ValueError} for unknown ones.
        """
        self.channel = channel
        self.addresses = addresses
        self.registry = registry if registry is not None else VmacRegistry()
        self.owner = owner if owner is not None else self
        self.groups = groups
        self.proc = proc if proc is not None else self.registry.sysctls.proc
        self.pid = os.getpid() if pid is None else pid
        self.alive = alive

    # -- queries -----------------------------------------------------------------

    def ifindex(self, name: str) -> int | None:
        try:
            return self.channel.ifindex(name)
        except NetlinkError:
            return None

    def existing(self) -> list[ExistingLink]:
        """
        The macvlan and ipvlan interfaces there are (a dump filtered by kind
        in the kernel).
        """
        found = []
        for kind in ("macvlan", "ipvlan"):
            msg = _linkMsg()
            msg["attrs"] = [("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)]})]
            try:
                replies = self.channel.request(msg, RTM_GETLINK, dump=True)
            except NetlinkError as e:
                self.log.error("Cannot list {kind} interfaces: {error}", kind=kind, error=str(e))
                continue
            found += [link for link in map(existingFromMessage, replies) if link is not None]
        return found

    def _link(self, name: str) -> tuple[ExistingLink | None, Any]:
        msg = _linkMsg()
        msg["attrs"] = [("IFLA_IFNAME", name)]
        try:
            replies = self.channel.request(msg, RTM_GETLINK)
        except NetlinkError as e:
            if e.code not in (errno.ENODEV, errno.ENOENT):
                self.log.error("Cannot query interface {name}: {error}", name=name, error=str(e))
            return None, None
        for reply in replies:
            return existingFromMessage(reply), reply
        return None, None

    def _baseInfo(self, base: str) -> tuple[int | None, bytes | None, int]:
        """
        The parent's index, MAC and link group.
        """
        msg = _linkMsg()
        msg["attrs"] = [("IFLA_IFNAME", base)]
        try:
            for reply in self.channel.request(msg, RTM_GETLINK):
                mac = reply.get_attr("IFLA_ADDRESS")
                return (int(reply["index"]),
                        bytes.fromhex(mac.replace(":", "")) if isinstance(mac, str) else None,
                        int(reply.get_attr("IFLA_GROUP") or 0))
        except NetlinkError:
            pass
        return None, None, 0

    def _request(self, msg: Any, kind: int, flags: int = 0, what: str = "") -> bool:
        try:
            self.channel.request(msg, kind, flags)
        except NetlinkError as e:
            self.log.error("{what}: {error}", what=what, error=str(e))
            return False
        return True

    # -- stale interfaces --------------------------------------------------------

    def cleanStale(self, keep: Iterable[str], existing: Iterable[ExistingLink] | None = None
                   ) -> list[str]:
        """
        Delete the VMACs a run that no longer exists (killed) left behind,
        except C{keep} (they are used again).

        @param existing: L{existing}'s answer, if just asked.
        @return: the names deleted.
        """
        keep = set(keep)
        removed = []
        for link in self.existing() if existing is None else existing:
            pid = aliasPid(link.alias)
            if pid is None or pid == self.pid or link.name in keep or self.alive(pid):
                continue
            self.log.warn("Removing VMAC interface {name} left behind by a previous run (pid {pid})",
                          name=link.name, pid=pid)
            if self._request(attrMessage(link.index, "IFLA_IFNAME", link.name), RTM_DELLINK,
                             what=f"Cannot remove VMAC interface {link.name}"):
                removed.append(link.name)
        return removed

    # -- creating ------------------------------------------------------------------

    def ensure(self, spec: VmacSpec, ready: Callable[[int, int], None] | None = None) -> bool:
        """
        Have C{spec}'s interface, configured and up, and claim it.

        @param ready: called with the interface's index and its parent's
            once it exists, before it is brought up (keepalived sets its
            firewall rules for a VMAC there), or when it is taken over as it
            is.
        """
        who, what = f"({spec.owner})", "ipvlan" if spec.kind == "ipvlan" else "VMAC"
        baseIndex, baseMac, baseGroup = self._baseInfo(spec.base)
        if baseIndex is None:
            self.log.error("{who} Cannot create {what} interface {name}: no interface {base}",
                           who=who, what=what, name=spec.name, base=spec.base)
            return False
        link, _ = self._link(spec.name)
        if (link is not None and link.up and self.registry.specs.get(spec.name) == spec
                and link.baseIndex == baseIndex and link.mac == (spec.mac or baseMac)):
            # already set up by the service we take over from (reload): claim it
            if spec.kind == "macvlan" and spec.family == 4:
                self.registry.sysctls.vmacCreated(self.owner, spec.name, spec.base, configure=False)
            self.registry.claim(spec, self.owner)
            if ready is not None:
                ready(link.index, baseIndex)
            return True
        if link is None and self.ifindex(spec.name) is not None:
            self.log.error("{what} {name} conflicts with existing interface", what=what,
                           name=spec.name)
            return False
        if link is not None and link.kind != spec.kind:
            self.log.error("{what} {name} conflicts with existing interface", what=what,
                           name=spec.name)
            return False
        if link is not None and link.baseIndex != baseIndex:
            self.log.info("{who} Removing old VMAC interface {name} due to conflicting interface",
                          who=who, name=spec.name)
            if not self._request(attrMessage(link.index, "IFLA_IFNAME", spec.name), RTM_DELLINK,
                                 what=f"{who} Error removing VMAC interface {spec.name}"):
                return False
            link = None
        if link is None:
            group = self._group(spec, baseGroup)
            if not self._request(createMessage(spec, baseIndex, group), RTM_NEWLINK,
                                 _NLM_F_CREATE | _NLM_F_EXCL,
                                 what=f"{who}: Unable to create {what} interface {spec.name}"):
                return False
            self.log.info("{who}: Success creating {what} interface {name}", who=who, what=what,
                          name=spec.name)
        elif spec.kind == "macvlan" and (link.mac != spec.mac or link.mode != "private"):
            self.log.info("{who} Update old VMAC interface {name} due to wrong MAC/mode ", who=who,
                          name=spec.name)
            self._request(createMessage(spec, baseIndex, None, updateIndex=link.index),
                          RTM_NEWLINK, what=f"{who}: Unable to update VMAC interface {spec.name}")
        index = self.ifindex(spec.name)
        if index is None:
            return False
        self._request(attrMessage(index, "IFLA_IFALIAS", f"{ALIAS}{self.pid}"), RTM_NEWLINK,
                      what=f"{who} Cannot mark {spec.name}")
        if ready is not None:
            ready(index, baseIndex)
        self._configure(spec, index, baseMac)
        self.registry.claim(spec, self.owner)
        if spec.netlinkNotify:
            # others listening to netlink hear about the parent again
            self._request(attrMessage(baseIndex, "IFLA_GROUP", baseGroup), RTM_NEWLINK,
                          what=f"{who} Cannot notify {spec.base}")
        return True

    def _group(self, spec: VmacSpec, baseGroup: int) -> int:
        if spec.group is None:
            return baseGroup
        try:
            return int(spec.group, 0)
        except ValueError:
            pass
        if self.groups is not None:
            try:
                return self.groups(spec.group)
            except ValueError:
                pass
        self.log.error("({owner}) VMAC group {group} not found - using {base}'s", owner=spec.owner,
                       group=spec.group, base=spec.base)
        return baseGroup

    def _configure(self, spec: VmacSpec, index: int, baseMac: bytes | None) -> None:
        who = f"({spec.owner})"
        if spec.kind == "macvlan" and spec.family == 4:
            self.registry.sysctls.vmacCreated(self.owner, spec.name, spec.base)
        self.proc.set(conf(spec.name, "disable_ipv6", 6), 0 if spec.ipv6 else 1)
        if spec.kind == "macvlan":
            self._request(addrGenModeNoneMessage(index), RTM_NEWLINK,
                          what=f"{who} Error setting ADDR_GEN_MODE to NONE on {spec.name}")
        self._request(upMessage(index), RTM_NEWLINK, what=f"{who} Cannot bring {spec.name} up")
        if spec.linkLocal:
            address = self._baseLinkLocal(spec.base, baseMac)
            if address is None or not self.addresses.add(Vip(
                    address=ipaddress.IPv6Interface(f"{address}/64"), ifname=spec.name, nodad=True,
                    preferredLifetime=0)):
                self.log.info("{who} adding link-local address to {name} failed", who=who,
                              name=spec.name)
        if spec.ipvlanAddress is not None:
            vip = Vip(address=spec.ipvlanAddress, ifname=spec.name,
                      nodad=spec.ipvlanAddress.version == 6)
            if not self.addresses.add(vip):
                self.log.info("{who}: Failed to add interface address to {name}", who=who,
                              name=spec.name)

    def _baseLinkLocal(self, base: str, baseMac: bytes | None) -> ipaddress.IPv6Address | None:
        """
        The parent's link-local address, else one made from its MAC.
        """
        try:
            index = self.channel.ifindex(base)
            found = self.channel.addresses(socket.AF_INET6, index) if index is not None else []
        except NetlinkError:
            found = []
        for info in found:
            if info.address.is_link_local:
                return info.address  # type: ignore[return-value]
        return linkLocalFor(baseMac) if baseMac else None

    # -- deleting ------------------------------------------------------------------

    def present(self, name: str) -> bool:
        return self.ifindex(name) is not None

    def release(self) -> list[str]:
        """
        Let go of our interfaces: those nobody else uses are deleted, then
        the sysctls nobody needs are put back.

        @return: the names deleted.
        """
        removed = []
        for spec in self.registry.release(self.owner):
            index = self.ifindex(spec.name)
            if index is None:
                continue
            link, _ = self._link(spec.name)
            if link is not None and aliasPid(link.alias) not in (None, self.pid):
                continue  # taken over by another process meanwhile
            if self._request(attrMessage(index, "IFLA_IFNAME", spec.name), RTM_DELLINK,
                             what=f"({spec.owner}) Error removing VMAC interface {spec.name}"):
                self.log.info("({owner}) Success removing VMAC interface {name}", owner=spec.owner,
                              name=spec.name)
                removed.append(spec.name)
        self.registry.sysctls.release(self.owner)
        return removed
