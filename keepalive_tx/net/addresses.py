# -*- test-case-name: tests.unit.test_net_addresses -*-
"""
Virtual addresses on interfaces: the L{IAddressManager} OS edge.

MASTER adds its VIPs/eVIPs, BACKUP/FAULT/stop remove them (as keepalived's
C{vrrp_state_become_master} and C{vrrp_state_leave_master} do); at
start the configured VIPs are removed if a crashed run (C{kill -9}) left them
behind (L{IAddressManager.removeStale}), so two boxes never both hold them.

Every operation is idempotent (adding a present address or removing an absent
one succeeds), synchronous and short (~0.1-0.2 ms, see
L{keepalive_tx.net.netlink}), works in the network namespace the process runs
in, and never raises: failures are logged and reported as C{False}.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyroute2.netlink.rtnl.ifaddrmsg import (
    IFA_F_HOMEADDRESS,
    IFA_F_MANAGETEMPADDR,
    IFA_F_MCAUTOJOIN,
    IFA_F_NODAD,
    IFA_F_NOPREFIXROUTE,
    ifaddrmsg,
)
from twisted.logger import Logger
from zope.interface import Interface, implementer

from keepalive_tx.net.netlink import (
    RTM_DELADDR,
    RTM_NEWADDR,
    NetlinkError,
    RouteChannel,
)

if TYPE_CHECKING:
    from keepalive_tx.config.model import VirtualAddress

__all__ = [
    "IAddressManager",
    "NetlinkAddressManager",
    "SCOPES",
    "Vip",
    "parseScope",
    "preferredLifetimeFor",
    "resolveBroadcast",
    "vipsFor",
]

# NLM_F_* for new requests (linux/netlink.h)
_NLM_F_REPLACE = 0x100
_NLM_F_CREATE = 0x400
_INFINITY_LIFE_TIME = 0xFFFFFFFF

#: C{ip addr ... scope NAME} values (C{/etc/iproute2/rt_scopes}).
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_SCOPE_NAMES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def parseScope(value: str | int) -> int:
    """
    C{global|site|link|host|nowhere|NUM} to the numeric C{ifa_scope}.

    @raise ValueError: unknown name or number outside 0..255.
    """
    if isinstance(value, int):
        number = value
    elif value.lower() in SCOPES:
        return SCOPES[value.lower()]
    else:
        number = int(value, 0)
    if not 0 <= number <= 255:
        raise ValueError(f"scope {value!r} out of range")
    return number


def resolveBroadcast(
    address: ipaddress.IPv4Interface, spec: ipaddress.IPv4Address | str | None
) -> ipaddress.IPv4Address | None:
    """
    The broadcast address for C{brd SPEC}: C{"+"} sets the host bits, C{"-"}
    clears them, an address is taken as is, C{None} means no C{IFA_BROADCAST}.
    """
    if spec is None:
        return None
    if spec == "+":
        return address.network.broadcast_address
    if spec == "-":
        return address.network.network_address
    return ipaddress.IPv4Address(spec)


def preferredLifetimeFor(address: IPInterface, configured: int | str | None) -> int | None:
    """
    keepalived's rule for C{preferred_lft}: an explicit number wins,
    C{"forever"} means none, and otherwise an IPv6 /128 VIP gets 0
    (deprecated, so it is never picked as a source address) while everything
    else keeps the kernel default (forever).

    @return: seconds, or C{None} for forever.
    """
    if configured == "forever":
        return None
    if configured is not None:
        return int(configured)
    if address.version == 6 and address.network.prefixlen == 128:
        return 0
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Vip:
    """
    One address to put on / take off an interface.

    @ivar address: the address with its prefix length.
    @ivar ifname: the interface (already resolved: VIP C{dev}, the instance
        interface or its VMAC).
    @ivar scope: numeric C{ifa_scope} (L{parseScope}).
    @ivar broadcast: IPv4 C{IFA_BROADCAST} (L{resolveBroadcast}) or C{None}.
    @ivar label: IPv4 label (C{eth0:1}); ignored for IPv6.
    @ivar peer: point-to-point peer (C{IFA_ADDRESS}); then C{address} should
        carry no meaningful prefix (the peer's prefix is used).
    @ivar preferredLifetime: seconds, C{None} = forever
        (L{preferredLifetimeFor} applies keepalived's /128 rule).
    """

    address: IPInterface
    ifname: str
    scope: int = 0
    broadcast: ipaddress.IPv4Address | None = None
    label: str | None = None
    peer: IPInterface | None = None
    nodad: bool = False
    noprefixroute: bool = False
    home: bool = False
    mngtmpaddr: bool = False
    autojoin: bool = False
    preferredLifetime: int | None = None

    @property
    def family(self) -> int:
        return socket.AF_INET if self.address.version == 4 else socket.AF_INET6

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return self.address.ip

    @property
    def flags(self) -> int:
        """
        C{IFA_F_*} bits for C{IFA_FLAGS}.
        """
        bits = 0
        for wanted, bit in (
            (self.nodad, IFA_F_NODAD),
            (self.home, IFA_F_HOMEADDRESS),
            (self.mngtmpaddr, IFA_F_MANAGETEMPADDR),
            (self.noprefixroute, IFA_F_NOPREFIXROUTE),
            (self.autojoin, IFA_F_MCAUTOJOIN),
        ):
            if wanted:
                bits |= bit
        return bits

    @property
    def prefixlen(self) -> int:
        if self.peer is not None:
            return self.peer.network.prefixlen
        return self.address.network.prefixlen

    def __str__(self) -> str:
        text = [f"{self.address.ip}/{self.prefixlen}" if self.peer is None else str(self.address.ip)]
        if self.peer is not None:
            text.append(f"peer {self.peer}")
        if self.broadcast is not None:
            text.append(f"brd {self.broadcast}")
        text.append(f"dev {self.ifname}")
        if self.scope:
            text.append(f"scope {_SCOPE_NAMES.get(self.scope, self.scope)}")
        if self.label:
            text.append(f"label {self.label}")
        return " ".join(text)


def vipsFor(addresses: tuple[VirtualAddress, ...], defaultIf: str | None,
            ifnames: Sequence[str | None] | None = None) -> list[Vip]:
    """
    The L{Vip}s to add for configured virtual addresses (those without
    C{dev} go on C{defaultIf}).

    @param ifnames: the interface of each address instead (VMACs), C{None}
        for an address that has none.
    """
    result = []
    for n, a in enumerate(addresses):
        ifname = ifnames[n] if ifnames is not None else a.dev or defaultIf
        if ifname is None:
            continue
        result.append(
            Vip(
                address=a.address,
                ifname=ifname,
                scope=parseScope(a.scope) if a.scope is not None else 0,
                broadcast=resolveBroadcast(a.address, a.broadcast),
                label=a.label,
                peer=a.peer,
                # keepalived: IPv6 addresses skip DAD unless "-nodad" is given
                nodad=a.address.version == 6 and not a.dad,
                noprefixroute=a.noprefixroute,
                home=a.home,
                mngtmpaddr=a.mngtmpaddr,
                autojoin=a.autojoin,
                preferredLifetime=preferredLifetimeFor(a.address, a.preferredLft),
            )
        )
    return result


class IAddressManager(Interface):
    """
    Puts virtual addresses on interfaces and takes them off again.

    No method raises; failures are logged and reported as C{False}.
    """

    def add(vip: Vip) -> bool:
        """
        Put C{vip} on its interface; already present is success.
        """

    def remove(vip: Vip) -> bool:
        """
        Take C{vip} off its interface; already absent is success.
        """

    def present(vip: Vip) -> bool:
        """
        Whether C{vip}'s address is on its interface (C{False} when unknown).
        """

    def removeStale(vips: list[Vip]) -> list[Vip]:
        """
        Remove those of C{vips} that are present (left behind by a crashed
        run); return the ones removed.
        """


def _buildAddressMessage(vip: Vip, index: int, *, forAdd: bool) -> ifaddrmsg:
    msg = ifaddrmsg()
    msg["family"] = vip.family
    msg["prefixlen"] = vip.prefixlen
    msg["index"] = index
    msg["scope"] = vip.scope
    local = str(vip.address.ip)
    attrs: list[tuple[str, object]] = [("IFA_LOCAL", local)]
    attrs.append(("IFA_ADDRESS", str(vip.peer.ip) if vip.peer is not None else local))
    if forAdd:
        flags = vip.flags
        msg["flags"] = flags & 0xFF
        if vip.family == socket.AF_INET:
            if vip.broadcast is not None:
                attrs.append(("IFA_BROADCAST", str(vip.broadcast)))
            if vip.label:
                attrs.append(("IFA_LABEL", vip.label))
        if flags:
            attrs.append(("IFA_FLAGS", flags))
        if vip.preferredLifetime is not None:
            attrs.append(
                (
                    "IFA_CACHEINFO",
                    {
                        "ifa_preferred": vip.preferredLifetime,
                        "ifa_valid": _INFINITY_LIFE_TIME,
                        "cstamp": 0,
                        "tstamp": 0,
                    },
                )
            )
    msg["attrs"] = attrs
    return msg


# errno values meaning "that address is not there" for RTM_DELADDR
_ABSENT = {errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH, errno.ENODEV}


@implementer(IAddressManager)
class NetlinkAddressManager:
    """
    L{IAddressManager} through rtnetlink (pyroute2 codec on a
    L{RouteChannel}), in the namespace the channel's socket lives in.
    """

    log = Logger()

    def __init__(self, channel: RouteChannel | None = None) -> None:
        self.channel = channel if channel is not None else RouteChannel()

    def _index(self, vip: Vip, action: str) -> int | None:
        try:
            index = self.channel.ifindex(vip.ifname)
        except NetlinkError as e:
            self.log.error("Cannot {action} VIP {vip}: interface lookup failed: {error}",
                           action=action, vip=str(vip), error=str(e))
            return None
        if index is None:
            self.log.error("Cannot {action} VIP {vip}: no interface {ifname}",
                           action=action, vip=str(vip), ifname=vip.ifname)
        return index

    def add(self, vip: Vip) -> bool:
        try:
            index = self._index(vip, "add")
            if index is None:
                return False
            msg = _buildAddressMessage(vip, index, forAdd=True)
            self.channel.request(msg, RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_REPLACE)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return True
            self.log.error("Cannot add VIP {vip}: {error}", vip=str(vip), error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot add VIP {vip}", vip=str(vip))
            return False
        self.log.debug("Added VIP {vip}", vip=str(vip))
        return True

    def remove(self, vip: Vip) -> bool:
        try:
            index = self.channel.ifindex(vip.ifname)
            if index is None:
                return True  # no interface, no address
            msg = _buildAddressMessage(vip, index, forAdd=False)
            self.channel.request(msg, RTM_DELADDR)
        except NetlinkError as e:
            if e.code in _ABSENT:
                return True
            self.log.error("Cannot remove VIP {vip}: {error}", vip=str(vip), error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot remove VIP {vip}", vip=str(vip))
            return False
        self.log.debug("Removed VIP {vip}", vip=str(vip))
        return True

    def present(self, vip: Vip) -> bool:
        try:
            index = self.channel.ifindex(vip.ifname)
            if index is None:
                return False
            found = self.channel.addresses(vip.family, index)
        except NetlinkError as e:
            self.log.error("Cannot list addresses of {ifname}: {error}",
                           ifname=vip.ifname, error=str(e))
            return False
        except Exception:
            self.log.failure("Cannot list addresses of {ifname}", ifname=vip.ifname)
            return False
        return any(a.address == vip.address.ip for a in found)

    def removeStale(self, vips: list[Vip]) -> list[Vip]:
        removed = []
        for vip in vips:
            if self.present(vip):
                self.log.warn("Removing VIP {vip} left behind by a previous run", vip=str(vip))
                if self.remove(vip):
                    removed.append(vip)
        return removed
