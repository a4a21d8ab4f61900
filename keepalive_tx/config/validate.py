"""
From parsed builders to the immutable L{Config}: keepalived's end-of-config
defaults (C{vrrp_complete_instance} and friends) and cross-checks, all
reported as diagnostics with locations.  Pure: no interface lookups.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from keepalive_tx.config import model as M
from keepalive_tx.config import schema_vmac
from keepalive_tx.config.errors import Diagnostics, Location, Severity
from keepalive_tx.config.schema import Builder, Context
from keepalive_tx.config.toplevel import lvsModule
from keepalive_tx.config.validate_strict import (
    STRICT_AUTH_MESSAGE,
    applyStrict,
    ipv6Version2Message,
)
from keepalive_tx.config.validate_track import ownInterface, resolveTrackers, unweighted


def buildConfig(root: Builder, diagnostics: Diagnostics) -> M.Config:
    """
    Build the model from the root builder, reporting problems.
    """
    ctx = Context(diagnostics, root)
    lvs = lvsModule()
    finish = getattr(lvs, "finish", None)
    if finish is not None:
        finish(ctx, root)
    g = _globalDefs(ctx, root.get("globalDefs") or {})
    g = _lvsSyncFromInstances(ctx, g, root.get("lvsSyncInterfaces") or ())
    scripts = _named(ctx, root, "vrrpScripts", "vrrp_script", _script)
    processes = _named(ctx, root, "trackProcesses", "vrrp_track_process", _process)
    files = _named(ctx, root, "trackFiles", "track_file", _trackFile)
    bfdSeen: list[M.BfdInstance] = []
    bfds = _named(ctx, root, "bfdInstances", "bfd_instance", lambda c, b: _bfd(c, b, bfdSeen))
    trackGroups = _named(ctx, root, "trackGroups", "track_group", lambda c, b: M.make(M.TrackGroup, b))
    objects = {
        "trackScripts": ({s.name for s in scripts}, "vrrp_script"),
        "trackFiles": ({f.name for f in files}, "track_file"),
        "trackProcesses": ({p.name for p in processes}, "vrrp_track_process"),
        "trackBfds": ({b.name for b in bfds if b.forVrrp}, "bfd_instance"),
    }
    instBuilders = _dedupe(ctx, root.get("vrrpInstances") or [], "vrrp_instance")
    groups, memberOf = _syncGroups(ctx, root.get("syncGroups") or [], instBuilders, objects)
    weights = {
        "trackScripts": {s.name: s.weight for s in scripts},
        "trackFiles": {f.name: f.weight for f in files},
        "trackBfds": {x.name: x.weight for x in bfds},
    }
    instances = []
    for b in instBuilders:
        vi = _instance(ctx, b, g, objects, weights, memberOf.get(b["name"]))
        if vi is not None:
            instances.append(vi)
    _checkVrids(ctx, instances, g)
    _checkUsage(ctx, scripts, instances, groups)
    garpGroups = [
        M.make(M.GarpGroup, b) for b in root.get("garpGroups") or []
    ]
    tgNames = {t.name for t in trackGroups}
    for item in (*root.get("staticIpaddresses", ()), *root.get("staticRoutes", ()), *root.get("staticRules", ())):
        if item.trackGroup is not None and item.trackGroup not in tgNames:
            ctx.error(item.location, f"track_group '{item.trackGroup}' is not defined")
    config = M.make(
        M.Config,
        root,
        globalDefs=g,
        vrrpScripts=tuple(scripts),
        trackProcesses=tuple(processes),
        trackFiles=tuple(files),
        bfdInstances=tuple(bfds),
        trackGroups=tuple(trackGroups),
        syncGroups=tuple(groups),
        garpGroups=tuple(garpGroups),
        vrrpInstances=tuple(instances),
        vrrpConfigured=bool(instBuilders),
        virtualServerGroups=tuple(root.get("virtualServerGroups") or ()),
        virtualServers=tuple(root.get("virtualServers") or ()),
        ssl=root.get("ssl"),
    )
    validateLvs = getattr(lvs, "validate", None)
    if validateLvs is not None:
        validateLvs(config, diagnostics)
    return config


def _named(ctx: Context, root: Builder, key: str, what: str, build) -> list:
    out = []
    for b in _dedupe(ctx, root.get(key) or [], what):
        obj = build(ctx, b)
        if obj is not None:
            out.append(obj)
    return out


def _dedupe(ctx: Context, builders: list[Builder], what: str) -> list[Builder]:
    seen: dict[str, Builder] = {}
    out = []
    for b in builders:
        name = b["name"]
        if name in seen:
            ctx.error(b["location"], f"{what} {name} is already defined (at {seen[name]['location']}) - ignoring this one")
            continue
        seen[name] = b
        out.append(b)
    return out


def _lvsSyncFromInstances(ctx: Context, g: M.GlobalDefs,
                          given: list[tuple[str, str, Any]]) -> M.GlobalDefs:
    """
    The deprecated C{lvs_sync_daemon_interface IF} of a C{vrrp_instance}
    still runs IPVS's sync daemon on C{IF} for that instance (keepalived
    2.2.7), unless C{global_defs lvs_sync_daemon} set one (wherever it is
    in the file: keepalived reads C{global_defs} first) or an earlier
    instance did.  Its sync id is 0: keepalived defaults it to the VRID
    only when C{global_defs} names the instance.
    """
    chosen = g.lvsSyncDaemon
    for name, interface, location in given:
        if chosen is not None:
            ctx.error(location, f"({name}) lvs_sync_daemon_interface has already been specified "
                                f"as {chosen.interface} - ignoring")
            continue
        chosen = M.LvsSyncDaemon(interface=interface, instance=name, syncId=0)
        g = replace(g, lvsSyncDaemon=chosen)
    return g


def _globalDefs(ctx: Context, b: Builder) -> M.GlobalDefs:
    loc = b.get("location")
    garpB = dict(b.get("garp") or {})
    if b.get("vrrpMinGarp"):
        garpB.setdefault("masterRepeat", 1)
        garpB.setdefault("masterDelay", 0)
        garpB.setdefault("masterRefresh", 0)
        garpB.setdefault("lowerPrioRepeat", 1)
    garp = _garp(garpB, None)
    extra: dict[str, Any] = {"garp": garp}
    mapv = b.get("maxAutoPriority", None)
    if "maxAutoPriority" in b:
        text = mapv or "99"
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or not -1 <= v <= 99:
            ctx.error(loc, f"max_auto_priority: number '{text}' outside range [-1, 99] - ignoring")
            extra["maxAutoPriority"] = None
        else:
            extra["maxAutoPriority"] = v
    return M.make(M.GlobalDefs, b, **extra)


def _garp(b: Builder, base: M.GarpSettings | None) -> M.GarpSettings:
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
    return M.make(M.GarpSettings, d)


def _script(ctx: Context, b: Builder) -> M.VrrpScript | None:
    name, loc = b["name"], b["location"]
    if b.get("script") is None:
        ctx.error(loc, f"vrrp_script {name}: no script specified - ignoring")
        return None
    if b.get("interval", 1) == 0:
        ctx.error(loc, f"vrrp_script {name}: interval must be > 0 - setting 1")
        b["interval"] = 1.0
    b.setdefault("timeout", b.get("interval", 1.0))
    return M.make(M.VrrpScript, b)


def _process(ctx: Context, b: Builder) -> M.TrackProcess | None:
    if not b.get("process"):
        ctx.error(b["location"], f"vrrp_track_process {b['name']}: no process specified - ignoring")
        return None
    qmax = b.get("quorumMax")
    if qmax is not None and qmax != 0 and qmax < b.get("quorum", 1):
        ctx.error(b["location"], f"vrrp_track_process {b['name']}: quorum_max {qmax} is less than quorum {b.get('quorum', 1)} - ignoring quorum_max")
        del b["quorumMax"]
    return M.make(M.TrackProcess, b)


def _trackFile(ctx: Context, b: Builder) -> M.TrackFile | None:
    if not b.get("file"):
        ctx.error(b["location"], f"track_file {b['name']}: no file specified - ignoring")
        return None
    return M.make(M.TrackFile, b)


def _bfd(ctx: Context, b: Builder, seen: list[M.BfdInstance]) -> M.BfdInstance | None:
    """
    keepalived's end of a C{bfd_instance} block: a neighbour is required,
    source and neighbour of one family, one instance per neighbour (and
    source), C{max_hops} at most the TTL / hop limit.
    """
    name, loc = b["name"], b["location"]
    word = b.pop("neighborWord", "neighbor")
    nbr, src = b.get("neighborIp"), b.get("sourceIp")
    if nbr is None:
        ctx.error(loc, f"BFD instance {name} has no {word} address set, disabling instance")
        return None
    if src is not None and src.version != nbr.version:
        ctx.error(loc, f"BFD instance {name} source address {src} and {word} address {nbr} "
                       "are not of the same family, disabling instance")
        return None
    for other in seen:
        if other.neighborIp == nbr and (other.sourceIp is None or src is None
                                        or other.sourceIp == src):
            pair = f"source/{word} address {src}/{nbr}" if src is not None else \
                f"{word} address {nbr}"
            ctx.error(loc, f"BFD instance {name} has duplicate {pair}, ignoring instance")
            return None
    ttl = b.get("ttl") or (255 if nbr.version == 4 else 64)
    if b.get("maxHops", 0) > ttl:
        ctx.error(loc, f"BFD instance {name}: max_hops exceeds ttl/hoplimit - setting to "
                       "ttl/hoplimit")
        b["maxHops"] = ttl
    bfd = M.make(M.BfdInstance, b)
    seen.append(bfd)
    return bfd


def _syncGroups(ctx: Context, builders: list[Builder], instances: list[Builder], objects: dict):
    known = {b["name"] for b in instances}
    memberOf: dict[str, Builder] = {}
    groups = []
    for b in _dedupe(ctx, builders, "vrrp_sync_group"):
        name, loc = b["name"], b["location"]
        members = []
        for m in b.get("members") or ():
            if m not in known:
                ctx.error(loc, f"Virtual router {m} specified in sync group {name} doesn't exist - ignoring")
            elif m in memberOf:
                ctx.error(loc, f"Virtual router {m} cannot be in sync group {name}: it is already in sync group {memberOf[m]['name']} - ignoring")
            elif m in members:
                ctx.warning(loc, f"Virtual router {m} listed twice in sync group {name}")
            else:
                members.append(m)
        if not members:
            ctx.error(loc, f"Sync group {name} has no virtual router(s). removing")
            continue
        if len(members) == 1:
            ctx.warning(loc, f"Sync group {name} has only 1 virtual router(s) - this probably isn't what you want")
        for m in members:
            memberOf[m] = b
        b["members"] = members
        resolveTrackers(ctx, b, f"vrrp_sync_group {name}:", objects)
        groups.append(b)
    return [M.make(M.SyncGroup, b) for b in groups], memberOf


def _instance(ctx: Context, b: Builder, g: M.GlobalDefs, objects: dict, weights: dict,
              group: Builder | None) -> M.VrrpInstance | None:
    name, loc = b["name"], b["location"]
    who = f"({name})"
    if "virtualRouterId" not in b:
        # keepalived's VRRP process stops here (the daemon does not start)
        ctx.diagnostics.add(Severity.ERROR, f"{who} the virtual router id must be set", loc, refuses=True)
        return None
    # Family: native_ipv6, else first VIP, else source address, else peers.
    vips = list(b.get("virtualIpaddresses") or ())
    if b.get("nativeIpv6"):
        family = 6
    elif schema_vmac.familyHint(b):
        family = schema_vmac.familyHint(b)
    elif vips:
        family = vips[0].family
    elif b.get("unicastSrcIp") or b.get("mcastSrcIp"):
        family = (b.get("unicastSrcIp") or b.get("mcastSrcIp")).version
    elif b.get("unicastPeers"):
        family = b["unicastPeers"][0].address.version
    else:
        family = 4
    keep = []
    for v in vips:
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
    # Version.
    version = b.get("version", g.vrrpVersion)
    strict = b.get("strictMode", g.vrrpStrict)
    b["strictMode"] = strict
    if family == 6 and version == 2:
        if "version" in b:
            message = ipv6Version2Message(strict) or "VRRPv2 does not support IPv6 - using version 3"
            ctx.error(loc, f"{who} {message}")
        version = 3
    b["version"] = version
    # Priority / state (§0 #15).
    state = b.get("state")
    if "priority" not in b:
        b["priority"] = 255 if state == M.MASTER else 100
    priority = b["priority"]
    if state is None:
        state = M.MASTER if priority == 255 else M.BACKUP
    stateLoc = b.get("stateLocation", loc)
    # Interface.
    if not b.get("interface") and not b.get("vrf"):
        # keepalived 2.2.7 requires an interface even for unicast (its
        # VRRP process stops); the model keeps default_interface
        ctx.diagnostics.add(Severity.ERROR, f"{who} Unknown interface!", loc, refuses=True)
        b["interface"] = g.defaultInterface
    # Authentication.
    auth = b.pop("authenticationBuilder", None)
    if auth is not None:
        b["authentication"] = _auth(ctx, auth, who, version, family, strict, state, stateLoc)
        if b["authentication"] is not None and b["authentication"].authType == "AH" and state == M.MASTER:
            ctx.warning(auth["location"], f"{who} AH authentication cannot be used with initial state MASTER - starting as BACKUP")
            state = M.BACKUP
    hmac = b.pop("authHmacBuilder", None)
    if hmac is not None:
        if b.get("authentication") is not None:
            ctx.error(hmac["location"], f"{who} auth_hmac and authentication are mutually exclusive - ignoring auth_hmac")
        else:
            if not hmac.get("keys"):
                ctx.error(hmac["location"], f"{who} auth_hmac has no key - ignoring")
            else:
                ids = [k.keyId for k in hmac["keys"]]
                hmac.setdefault("activeKey", ids[0])
                if hmac["activeKey"] not in ids:
                    ctx.error(hmac["location"], f"{who} auth_hmac active_key {hmac['activeKey']} is not a configured key ({', '.join(map(str, ids))}) - using {ids[0]}")
                    hmac["activeKey"] = ids[0]
                if strict and hmac.get("mode", "enforce") != "enforce":
                    ctx.error(hmac["location"], f"{who} strict mode requires auth_hmac mode enforce - setting enforce")
                    hmac["mode"] = "enforce"
                b["authHmac"] = M.make(M.AuthHmac, hmac)
    # Strict mode (§4.12): keepalived's checks and messages.
    if strict:
        state = applyStrict(ctx, b, who, loc, state=state, stateExplicit="state" in b,
                            stateLoc=stateLoc, priority=priority, version=version, family=family,
                            unicast=bool(peers))
    # nopreempt / preempt_delay (§0 #14, §4.5, §4.6).
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
    b["state"] = state
    # Advert interval per version.
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
    # VIPs.
    if not b["virtualIpaddresses"] and not b.get("noVirtualIpaddress"):
        if version == 3 or strict:
            ctx.diagnostics.add(Severity.ERROR, f"{who} No VIP specified; at least one is required", loc,
                                refuses=True)
        else:
            ctx.warning(loc, f"{who} No VIP specified; at least one is sensible")
    # Unicast.
    if b.get("unicastIntent") and not peers and not b.get("unicastFaultNoPeer"):
        ctx.deprecated(loc, f"{who} A unicast keyword has been specified without any unicast peers. Defaulting to "
                       "multicast. This usage is deprecated - please update your configuration.")
    # Trackers.
    resolveTrackers(ctx, b, who, objects)
    ownInterface(ctx, b)
    inGroup = group is not None and not (group.get("syncGroupTrackingWeight") or group.get("globalTracking"))
    if inGroup or priority == 255:
        unweighted(ctx, b, inGroup, weights)
    if group is not None:
        b["syncGroup"] = group["name"]
    schema_vmac.completeVmac(ctx, b, family=family, strict=strict,
                             takenNames=ctx.root.setdefault("vmacNames", {}))
    # Inherited defaults.
    b["garp"] = _garp(b.get("garp") or {}, g.garp)
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
    vips = b["virtualIpaddresses"]
    vi, problem = excessVipsToExcluded(M.make(M.VrrpInstance, b), MAX_ADVERT_ADDRESSES)
    if problem is not None:
        ctx.error(vips[MAX_ADVERT_ADDRESSES].location, problem)
    return vi


#: an advert's address count is one byte
MAX_ADVERT_ADDRESSES = 255


def excessVipsToExcluded(vi: M.VrrpInstance, limit: int) -> tuple[M.VrrpInstance, str | None]:
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


def _auth(ctx: Context, a: Builder, who: str, version: int, family: int, strict: bool, state: str,
          stateLoc: Location) -> M.Authentication | None:
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


def _peerSet(vi: M.VrrpInstance) -> frozenset:
    return frozenset(p.address for p in vi.unicastPeers)


def _checkVrids(ctx: Context, instances: list[M.VrrpInstance], g: M.GlobalDefs) -> None:
    """
    keepalived refuses two instances with the same VRID and family that
    would share adverts: multicast on the same interface and group, or
    unicast from the same source with a peer in common.
    """
    seen: dict[tuple, list[M.VrrpInstance]] = {}
    for vi in instances:
        unicast = vi.isUnicast
        group = None if unicast else (vi.mcastDstIp or (g.vrrpMcastGroup4 if vi.family == 4 else g.vrrpMcastGroup6))
        key = (vi.family, vi.virtualRouterId, unicast, group)
        others = seen.setdefault(key, [])
        for other in others:
            if unicast:
                if other.interface != vi.interface or other.unicastSrcIp != vi.unicastSrcIp:
                    continue
                if not (_peerSet(vi) & _peerSet(other)):
                    continue
                message = f"({other.name}) duplicate VRID conflict with {vi.name} VRID {vi.virtualRouterId}"
            else:
                if other.interface != vi.interface or (other.vrf or vi.vrf):
                    continue
                message = (f"{other.name} and {vi.name} both use VRID {vi.virtualRouterId} with "
                           f"IPv{vi.family} on interface {vi.interface}")
            ctx.diagnostics.add(Severity.ERROR, message, vi.location, refuses=True)
            break
        others.append(vi)


def _checkUsage(ctx: Context, scripts: list[M.VrrpScript], instances: list[M.VrrpInstance], groups: list[M.SyncGroup]) -> None:
    used = set()
    for obj in (*instances, *groups):
        for t in obj.trackScripts:
            used.add(t.name)
    for s in scripts:
        if s.name not in used:
            # (keepalived reports it only when it runs, not under -t)
            ctx.diagnostics.note(f"Warning - script {s.name} is not used", s.location)
