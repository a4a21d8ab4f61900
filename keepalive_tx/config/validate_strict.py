"""
What C{vrrp_strict} / C{strict_mode} forbids or forces in a
C{vrrp_instance}, with keepalived 2.2.7's messages (its
C{vrrp_complete_instance}); see docs/keepalived-compat.md, "vrrp_strict
and no_accept".

keepalived 2.2.7 does not refuse unicast peers in strict mode (its check
runs before the unicast flag is set), so neither do we.
"""

from __future__ import annotations

import dataclasses

from keepalive_tx.config import model as M
from keepalive_tx.config.errors import Location
from keepalive_tx.config.schema import Builder, Context

__all__ = ["STRICT_AUTH_MESSAGE", "applyStrict", "ipv6Version2Message"]

STRICT_AUTH_MESSAGE = "Strict mode does not support authentication. Ignoring."


def ipv6Version2Message(strict: bool) -> str | None:
    """
    The message for C{version 2} on an IPv6 instance in strict mode
    (keepalived is silent without strict mode; the caller keeps its own).
    """
    return "cannot use IPv6 with VRRP version 2; setting version 3" if strict else None


def applyStrict(ctx: Context, b: Builder, who: str, loc: Location, *, state: str,
                stateExplicit: bool, stateLoc: Location, priority: int, version: int,
                family: int, unicast: bool) -> str:
    """
    Check and correct instance builder C{b} (whose C{strictMode} is set)
    as keepalived does in strict mode.

    @param stateExplicit: C{state} was configured (not derived from the
        priority).
    @return: the initial state, corrected.
    """
    owner = priority == 255
    if stateExplicit and (state == M.MASTER) != owner:
        ctx.error(stateLoc, f"{who} State MASTER must match being address owner")
        state = M.MASTER if owner else M.BACKUP
    vmac = b.get("vmac")
    if vmac is not None and vmac.mac is not None:
        ctx.error(loc, f"{who}: cannot specify MAC address with strict mode - clearing")
        b["vmac"] = dataclasses.replace(vmac, mac=None)
    if family == 6 and not unicast and b["virtualIpaddresses"]:
        first = b["virtualIpaddresses"][0]
        if not first.address.ip.is_link_local:
            ctx.error(first.location, f"{who} the first IPv6 VIP address must be link local")
    if b.get("preemptDelay"):
        ctx.error(b.get("preemptDelayLocation", loc),
                  f"{who} preempt_delay is incompatible with strict mode - resetting")
        b["preemptDelay"] = 0.0
    if b.get("downTimerAdverts", 3) != 3:
        ctx.error(loc, f"{who} down_timer_adverts is incompatible with strict mode - resetting")
        b["downTimerAdverts"] = 3
    accept = b.setdefault("accept", owner)
    if accept and not owner and version == 2:
        ctx.error(loc, f"{who} warning - accept mode for VRRP version 2 does not comply with"
                       " RFC3768 - resetting")
        b["accept"] = False
    garp = b.setdefault("garp", {})
    for field, what in (("lowerPrioRepeat", "repeat garps"), ("lowerPrioDelay", "repeat garp delay")):
        if garp.get(field):
            ctx.error(loc, f"{who} Strict mode requires no {what}. resetting")
        garp[field] = 0
    if b.get("lowerPrioNoAdvert") is False:
        ctx.error(loc, f"{who} Strict mode requires no lower priority advert. resetting")
    b["lowerPrioNoAdvert"] = True
    if b.get("higherPrioSendAdvert"):
        ctx.error(loc, f"{who} strict mode requires higher_prio_send_advert to be clear. resetting")
    b["higherPrioSendAdvert"] = False
    if owner:
        b["ownerIgnoreAdverts"] = True
    if b.get("vmacXmitBase") and vmac is not None:
        ctx.error(loc, f"{who} xmit_base is incompatible with strict mode - resetting")
        b["vmacXmitBase"] = False
    return state

