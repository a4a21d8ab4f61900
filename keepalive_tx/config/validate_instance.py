# -*- test-case-name: tests.unit.test_config_schema -*-
"""
One C{vrrp_instance} completed as keepalived completes it at the end of
the configuration (its C{vrrp_complete_instance}): defaults, corrections
and refusals, each reported at its location.

L{completeInstance} runs the steps below in keepalived's order; each takes
the instance's builder and corrects it in place, and those that decide
something later steps need (the address family, the version, the initial
state) return it.
"""

from __future__ import annotations

from dataclasses import replace

from keepalive_tx.config import model as M
from keepalive_tx.config import schema_vmac
from keepalive_tx.config.errors import Location, Severity
from keepalive_tx.config.schema import Builder, Context
from keepalive_tx.config.validate_strict import (
    STRICT_AUTH_MESSAGE,
    applyStrict,
    ipv6Version2Message,
)
from keepalive_tx.config.validate_track import ownInterface, resolveTrackers, unweighted

__all__ = ["MAX_ADVERT_ADDRESSES", "completeInstance", "excessVipsToExcluded", "garpSettings"]

#: an advert's address count is one byte
MAX_ADVERT_ADDRESSES = 255


def completeInstance(ctx: Context, b: Builder, g: M.GlobalDefs, objects: dict, weights: dict,
                     group: Builder | None) -> M.VrrpInstanceConfig | None:
    """
    The model of the C{vrrp_instance} whose builder is C{b}, or L{None}
    when keepalived refuses it.

    @param objects: what C{track_*} may name (see L{resolveTrackers}).
    @param weights: the default weights of tracked scripts, files and BFDs.
    @param group: the builder of the instance's sync group, if any.
    """
    who, loc = f"({b['name']})", b["location"]
    if "virtualRouterId" not in b:
        # keepalived's VRRP process stops here (the daemon does not start)
        ctx.diagnostics.add(Severity.ERROR, f"{who} the virtual router id must be set", loc,
                            refuses=True)
        return None
    family = _addressFamily(b)
    _keepFamily(ctx, b, who, family)
    version, strict = _versionAndStrict(ctx, b, who, g, family)
    state, priority = _priorityAndState(b)
    stateLoc = b.get("stateLocation", loc)
    _interface(ctx, b, who, g)
    state = _authentication(ctx, b, who, version, family, strict, state, stateLoc)
    _authHmac(ctx, b, who, strict)
    if strict:
        state = applyStrict(ctx, b, who, loc, state=state, stateExplicit="state" in b,
                            stateLoc=stateLoc, priority=priority, version=version, family=family,
                            unicast=bool(b["unicastPeers"]))
    _preemption(ctx, b, who, state, priority)
    b["state"] = state
    _advertInterval(ctx, b, who, version)
    _vipsWanted(ctx, b, who, version, strict)
    _unicastWithoutPeers(ctx, b, who)
    _trackers(ctx, b, who, objects, weights, group, priority)
    schema_vmac.completeVmac(ctx, b, family=family, strict=strict,
                             takenNames=ctx.root.setdefault("vmacNames", {}))
    _inheritGlobals(b, g)
    vi, problem = excessVipsToExcluded(M.make(M.VrrpInstanceConfig, b), MAX_ADVERT_ADDRESSES)
    if problem is not None:
        ctx.error(b["virtualIpaddresses"][MAX_ADVERT_ADDRESSES].location, problem)
    return vi


def _addressFamily(b: Builder) -> int:
    """
    The instance's family: C{native_ipv6}, else its VMAC's, else its first
    VIP's, else its source address's, else its first peer's, else IPv4.
    """
    vips = b.get("virtualIpaddresses") or ()
    source = b.get("unicastSrcIp") or b.get("mcastSrcIp")
    if b.get("nativeIpv6"):
        return 6
    if schema_vmac.familyHint(b):
        return schema_vmac.familyHint(b)
    if vips:
        return vips[0].family
    if source:
        return source.version
    if b.get("unicastPeers"):
        return b["unicastPeers"][0].address.version
    return 4


def _keepFamily(ctx: Context, b: Builder, who: str, family: int) -> None:
    """
    Drop the VIPs, source addresses, peers and multicast group of the
    other family.
    """
    loc = b["location"]
    keep = []
    for v in b.get("virtualIpaddresses") or ():
        if v.family != family:
            ctx.error(v.location, f"{who} virtual_ipaddress {v.address} is IPv{v.family} but the instance is IPv{family} "
                      "(all VIPs must be one family; put others in virtual_ipaddress_excluded) - ignoring")
        else:
            keep.append(v)
    b["virtualIpaddresses"] = keep
    b["family"] = family
    for field in ("mcastSrcIp", "unicastSrcIp"):
        ip = b.get(field)
        if ip is not None and ip.version != family:
            ctx.error(b.get(field + "Location", loc), f"{who} {field == 'mcastSrcIp' and 'mcast_src_ip' or 'unicast_src_ip'} {ip} does not match the instance's address family IPv{family} - ignoring")
            del b[field]
    peers = []
    for p in b.get("unicastPeers") or ():
        if p.address.version != family:
            ctx.error(p.location, f"{who} unicast_peer {p.address} does not match the instance's address family IPv{family} - ignoring")
        else:
            peers.append(p)
    b["unicastPeers"] = peers
    mdst = b.get("mcastDstIp")
    if mdst is not None and mdst.version != family:
        ctx.error(loc, f"{who} mcast_dst_ip {mdst} does not match the instance's address family IPv{family} - ignoring")
        del b["mcastDstIp"]


def _versionAndStrict(ctx: Context, b: Builder, who: str, g: M.GlobalDefs,
                      family: int) -> tuple[int, bool]:
    """
    The VRRP version (IPv6 needs version 3) and strict mode, each the
    instance's or else the global one.
    """
    version = b.get("version", g.vrrpVersion)
    strict = b.get("strictMode", g.vrrpStrict)
    b["strictMode"] = strict
    if family == 6 and version == 2:
        if "version" in b:
            message = ipv6Version2Message(strict) or "VRRPv2 does not support IPv6 - using version 3"
            ctx.error(b["location"], f"{who} {message}")
        version = 3
    b["version"] = version
    return version, strict


def _priorityAndState(b: Builder) -> tuple[str, int]:
    """
    The initial state and the priority, each defaulted from the other (a
    quirk of keepalived's code kept, see docs/keepalived-compat.md).
    """
    state = b.get("state")
    if "priority" not in b:
        b["priority"] = 255 if state == M.MASTER else 100
    priority = b["priority"]
    if state is None:
        state = M.MASTER if priority == 255 else M.BACKUP
    return state, priority


def _interface(ctx: Context, b: Builder, who: str, g: M.GlobalDefs) -> None:
    if not b.get("interface") and not b.get("vrf"):
        # keepalived 2.2.7 requires an interface even for unicast (its
        # VRRP process stops); the model keeps default_interface
        ctx.diagnostics.add(Severity.ERROR, f"{who} Unknown interface!", b["location"], refuses=True)
        b["interface"] = g.defaultInterface


def _authentication(ctx: Context, b: Builder, who: str, version: int, family: int, strict: bool,
                    state: str, stateLoc: Location) -> str:
    """
    The C{authentication} block; AH makes an initial MASTER start as
    BACKUP.

    @return: the initial state.
    """
    auth = b.pop("authenticationBuilder", None)
    if auth is None:
        return state
    b["authentication"] = _auth(ctx, auth, who, version, family, strict)
    if b["authentication"] is not None and b["authentication"].authType == "AH" and state == M.MASTER:
        ctx.warning(auth["location"], f"{who} AH authentication cannot be used with initial state MASTER - starting as BACKUP")
        return M.BACKUP
    return state


def _auth(ctx: Context, a: Builder, who: str, version: int, family: int,
          strict: bool) -> M.Authentication | None:
    loc = a["location"]
    atype = a.get("authType")
    if atype is None:
        ctx.error(loc, f"{who} authentication block without auth_type (PASS|AH) - ignoring")
        return None
    if strict:
        ctx.error(loc, f"{who} {STRICT_AUTH_MESSAGE}")
        return None
    if version == 3 or family == 6:
        ctx.error(loc, f"{who} authentication is only supported by VRRPv2 over IPv4 - ignoring it")
        return None
    password = a.get("authPass")
    if password is None:
        ctx.error(loc, f"{who} auth_type {atype} without auth_pass - ignoring authentication")
        return None
    return M.Authentication(authType=atype, password=password.ljust(8, b"\0"))


def _authHmac(ctx: Context, b: Builder, who: str, strict: bool) -> None:
    """
    The C{auth_hmac} block: not with C{authentication}, with a key, an
    active key among the keys, and mode C{enforce} in strict mode.
    """
    hmac = b.pop("authHmacBuilder", None)
    if hmac is None:
        return
    if b.get("authentication") is not None:
        ctx.error(hmac["location"], f"{who} auth_hmac and authentication are mutually exclusive - ignoring auth_hmac")
        return
    if not hmac.get("keys"):
        ctx.error(hmac["location"], f"{who} auth_hmac has no key - ignoring")
        return
    ids = [k.keyId for k in hmac["keys"]]
    hmac.setdefault("activeKey", ids[0])
    if hmac["activeKey"] not in ids:
        ctx.error(hmac["location"], f"{who} auth_hmac active_key {hmac['activeKey']} is not a configured key ({', '.join(map(str, ids))}) - using {ids[0]}")
        hmac["activeKey"] = ids[0]
    if strict and hmac.get("mode", "enforce") != "enforce":
        ctx.error(hmac["location"], f"{who} strict mode requires auth_hmac mode enforce - setting enforce")
        hmac["mode"] = "enforce"
    b["authHmac"] = M.make(M.AuthHmac, hmac)


def _preemption(ctx: Context, b: Builder, who: str, state: str, priority: int) -> None:
    """
    C{nopreempt} and C{preempt_delay}, cleared where they cannot work
    (with C{state MASTER}: a quirk kept, see docs/keepalived-compat.md).
    """
    loc = b["location"]
    if b.get("nopreempt"):
        nloc = b.get("nopreemptLocation", loc)
        if priority == 255:
            ctx.error(nloc, f"{who} nopreempt is incompatible with priority 255. resetting nopreempt")
            b["nopreempt"] = False
        elif state == M.MASTER:
            ctx.error(nloc, f"{who} Warning - nopreempt will not work with initial state MASTER - clearing")
            b["nopreempt"] = False
    if b.get("preemptDelay"):
        dloc = b.get("preemptDelayLocation", loc)
        if state == M.MASTER:
            ctx.error(dloc, f"{who} Warning - preempt delay will not work with initial state MASTER - clearing")
            b["preemptDelay"] = 0.0
        elif b.get("nopreempt"):
            ctx.error(dloc, f"{who} preempt_delay is incompatible with nopreempt mode - resetting")
            b["preemptDelay"] = 0.0


def _advertInterval(ctx: Context, b: Builder, who: str, version: int) -> None:
    """
    C{advert_int}: whole seconds from 1 to 255 for VRRPv2, centiseconds up
    to 40.95 s for VRRPv3.
    """
    loc = b["location"]
    adv = b.get("advertInt", 1.0)
    if version == 2:
        rounded = max(1, min(255, round(adv)))
        if rounded != adv:
            ctx.warning(loc, f"{who} VRRPv2 advert_int must be whole seconds in [1, 255] - using {rounded}")
        b["advertInt"] = float(rounded)
    else:
        cs = round(adv * 100)
        if cs > 4095:
            ctx.error(loc, f"{who} VRRPv3 advert_int {adv} exceeds the maximum 40.95 - using 40.95")
            cs = 4095
        b["advertInt"] = cs / 100


def _vipsWanted(ctx: Context, b: Builder, who: str, version: int, strict: bool) -> None:
    """
    An instance without VIPs is refused in VRRPv3 and strict mode, and
    warned about otherwise.
    """
    if not b["virtualIpaddresses"] and not b.get("noVirtualIpaddress"):
        if version == 3 or strict:
            ctx.diagnostics.add(Severity.ERROR, f"{who} No VIP specified; at least one is required",
                                b["location"], refuses=True)
        else:
            ctx.warning(b["location"], f"{who} No VIP specified; at least one is sensible")


def _unicastWithoutPeers(ctx: Context, b: Builder, who: str) -> None:
    if b.get("unicastIntent") and not b["unicastPeers"] and not b.get("unicastFaultNoPeer"):
        ctx.deprecated(b["location"], f"{who} A unicast keyword has been specified without any unicast peers. Defaulting to "
                       "multicast. This usage is deprecated - please update your configuration.")


def _trackers(ctx: Context, b: Builder, who: str, objects: dict, weights: dict,
              group: Builder | None, priority: int) -> None:
    """
    The tracked objects: defined earlier, not the instance's own interface,
    unweighted for an address owner or a member of a sync group without
    C{sync_group_tracking_weight}.
    """
    resolveTrackers(ctx, b, who, objects)
    ownInterface(ctx, b)
    inGroup = group is not None and not (group.get("syncGroupTrackingWeight") or group.get("globalTracking"))
    if inGroup or priority == 255:
        unweighted(ctx, b, inGroup, weights)
    if group is not None:
        b["syncGroup"] = group["name"]


def _inheritGlobals(b: Builder, g: M.GlobalDefs) -> None:
    """
    What an instance takes from C{global_defs} when it does not set it.
    """
    b["garp"] = garpSettings(b.get("garp") or {}, g.garp)
    b.setdefault("accept", True)
    b.setdefault("downTimerAdverts", g.vrrpDownTimerAdverts)
    for field, gv in (("lowerPrioNoAdvert", g.vrrpLowerPrioNoAdvert), ("higherPrioSendAdvert", g.vrrpHigherPrioSendAdvert),
                      ("ownerIgnoreAdverts", g.vrrpOwnerIgnoreAdverts)):
        if field not in b and gv is not None:
            b[field] = gv
    b.setdefault("skipCheckAdvAddr", g.vrrpSkipCheckAdvAddr)
    b.setdefault("checkUnicastSrc", g.vrrpCheckUnicastSrc)
    b.setdefault("v3ChecksumAsV2", g.v3ChecksumAsV2)
    b.setdefault("notifyPriorityChanges", g.vrrpNotifyPriorityChanges)
    if "smtpAlert" not in b:
        b["smtpAlert"] = bool(g.smtpAlertVrrp if g.smtpAlertVrrp is not None else g.smtpAlert)


def garpSettings(b: Builder, base: M.GarpSettingsConfig | None) -> M.GarpSettingsConfig:
    """
    The C{garp_*} settings in C{b} over C{base} (the global ones, for an
    instance; L{None} for C{global_defs} itself): a lower-priority burst
    follows the master burst's delay and repeat unless set.
    """
    if base is None:
        d = dict(b)
        d.setdefault("lowerPrioDelay", float(d.get("masterDelay", 5)))
        d.setdefault("lowerPrioRepeat", d.get("masterRepeat", 5))
    else:
        d = {
            "masterDelay": base.masterDelay, "masterRepeat": base.masterRepeat,
            "lowerPrioDelay": base.lowerPrioDelay, "lowerPrioRepeat": base.lowerPrioRepeat,
            "masterRefresh": base.masterRefresh, "masterRefreshRepeat": base.masterRefreshRepeat,
            "extraIf": base.extraIf, "extraIfAll": base.extraIfAll,
        }
        d.update(b)
        if "masterDelay" in b and "lowerPrioDelay" not in b:
            d["lowerPrioDelay"] = b["masterDelay"]
        if "masterRepeat" in b and "lowerPrioRepeat" not in b:
            d["lowerPrioRepeat"] = b["masterRepeat"]
    for k in ("masterDelay", "lowerPrioDelay", "masterRefresh", "extraIf"):
        if k in d:
            d[k] = float(d[k])
    return M.make(M.GarpSettingsConfig, d)


def excessVipsToExcluded(vi: M.VrrpInstanceConfig,
                         limit: int) -> tuple[M.VrrpInstanceConfig, str | None]:
    """
    keepalived puts at most C{limit} VIPs in an advert (255, the most its
    count byte can say, or fewer when the interface MTU leaves less room):
    the VIPs after the first C{limit} become excluded VIPs, added and
    removed with the others but never advertised.

    @return: the instance with its VIPs split, and keepalived's warning
        (C{None} when nothing moved).
    """
    vips = vi.virtualIpaddresses
    if len(vips) <= limit:
        return vi, None
    problem = (f"({vi.name}) Number of VIPs ({len(vips)}) exceeds maximum/space available in "
               f"packet (max {limit} addresses) - excess moved to eVIPs")
    moved = replace(vi, virtualIpaddresses=vips[:limit],
                    virtualIpaddressesExcluded=vi.virtualIpaddressesExcluded + vips[limit:])
    return moved, problem
