# -*- test-case-name: tests.unit.test_vrrp_advertspace -*-
"""
How many VIPs an instance's adverts carry, as keepalived decides it: at
most 255 (the count byte; the configuration step already moved any excess)
and no more than fit in one packet on the instance's interface, given its
MTU.  The rest become excluded VIPs: added and removed with the others,
never advertised -- so that a peer with the same configuration, ours or
keepalived, expects exactly the addresses we send.

Pure: the MTU comes from the caller (L{keepalive_tx.vrrp.transport.interfaceMtu}
on Linux).
"""

from __future__ import annotations

from collections.abc import Callable

from keepalive_tx.config import model
from keepalive_tx.config.errors import Diagnostics
from keepalive_tx.config.validate import excessVipsToExcluded
from keepalive_tx.vrrp.packet import maxAdvertAddresses

__all__ = ["auditAdvertSpace", "fitAdvert"]


def fitAdvert(config: model.VrrpInstance,
              mtu: int | None) -> tuple[model.VrrpInstance, str | None]:
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
