# -*- test-case-name: tests.unit.test_vrrp_advertspace -*-
"""
How many VIPs an instance's adverts carry, as keepalived decides it: at
most 255 (the count byte; the configuration step already moved any excess)
and no more than fit in one packet on the instance's interface, given its
MTU.  The rest become excluded VIPs: added and removed with the others,
never advertised -- so that a peer with the same configuration, ours or
keepalived, expects exactly the addresses we send.

L{maxAdvertAddresses}, L{fitAdvert} and L{auditAdvertSpace} are pure; the
MTU comes from the caller (L{interfaceMtu}, the Linux lookup, is injected
by the service and by C{--config-test}).  Kept apart from the codec so that
C{--config-test} does not import it.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from keepalive_tx.config import model
from keepalive_tx.config.errors import Diagnostics
from keepalive_tx.config.validate_instance import MAX_ADVERT_ADDRESSES, excessVipsToExcluded

__all__ = ["DEFAULT_MTU", "auditAdvertSpace", "fitAdvert", "interfaceMtu", "maxAdvertAddresses"]

#: the MTU keepalived assumes for an instance without an interface
DEFAULT_MTU = 1500
# What keepalived counts against the MTU, in bytes: an Ethernet header,
# the IPv4 / IPv6 header, the VRRP header, VRRPv2's auth data, the AH header.
_ETHERNET, _IPV4, _IPV6, _VRRP, _AUTH, _AH = 14, 20, 40, 8, 8, 24

SIOCGIFMTU = 0x8921
_IFREQ_MTU = struct.Struct("=16si20x")


def maxAdvertAddresses(family: int, version: int, mtu: int | None = None,
                       ah: bool = False) -> int:
    """
    How many addresses keepalived puts in one advert on an interface with
    this C{mtu}: what fits after an Ethernet header (keepalived counts it
    against the MTU too), the IP header, the VRRP header and, for VRRPv2
    over IPv4, the auth data and the AH header -- at most 255, the most
    the count byte can say.

    @param mtu: the interface MTU (C{None}: L{DEFAULT_MTU}).
    @param ah: VRRPv2 with IPsec-AH authentication.
    """
    if family == 4:
        headers = _ETHERNET + _IPV4 + _VRRP
        if version == 2:
            headers += _AUTH + (_AH if ah else 0)
        size = 4
    else:
        headers = _ETHERNET + _IPV6 + _VRRP
        size = 16
    room = (DEFAULT_MTU if mtu is None else mtu) - headers
    return max(0, min(MAX_ADVERT_ADDRESSES, room // size))


def fitAdvert(config: model.VrrpInstanceConfig,
              mtu: int | None) -> tuple[model.VrrpInstanceConfig, str | None]:
    """
    C{config} with the VIPs that do not fit in one advert on an interface
    with this C{mtu} moved to its excluded VIPs.

    @param mtu: the interface MTU, or C{None} for keepalived's default of
        1500 (an instance without an interface).
    @return: the instance, and keepalived's warning when VIPs moved.
    """
    auth = config.authentication
    ah = (config.version == 2 and config.family == 4 and auth is not None
          and auth.authType == "AH")
    return excessVipsToExcluded(
        config, maxAdvertAddresses(config.family, config.version, mtu, ah))


def auditAdvertSpace(config: model.Config, diagnostics: Diagnostics,
                     mtuOf: Callable[[str], int | None]) -> None:
    """
    Report, as keepalived's C{-t} does, the instances whose VIPs do not all
    fit in one advert on their interface (C{mtuOf(name)}; instances whose
    interface does not exist are left to the interface checks).
    """
    for vi in config.vrrpInstances:
        mtu = None
        if vi.interface is not None:
            mtu = mtuOf(vi.interface)
            if mtu is None:
                continue
        fitted, problem = fitAdvert(vi, mtu)
        if problem is not None:
            moved = fitted.virtualIpaddressesExcluded[len(vi.virtualIpaddressesExcluded)]
            diagnostics.error(problem, moved.location)


def interfaceMtu(name: str) -> int | None:
    """
    The MTU of interface C{name} in our network namespace (C{SIOCGIFMTU}),
    or C{None} when there is no such interface.
    """
    import fcntl

    raw = name.encode()
    if not raw or len(raw) >= 16:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFMTU, _IFREQ_MTU.pack(raw, 0))
    except OSError:
        return None
    return _IFREQ_MTU.unpack(reply)[1]
