"""
From parsed builders to the immutable L{Config}: keepalived's end-of-config
defaults (C{vrrp_complete_instance} and friends) and cross-checks, all
reported as diagnostics with locations.  Pure: no interface lookups.
"""

from __future__ import annotations

from typing import Any

from keepalive_tx.config import model as M
from keepalive_tx.config.errors import Diagnostics, Location
from keepalive_tx.config.schema import Builder, Context, lvsModule


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
    instances = []
    for b in instBuilders:
        vi = _instance(ctx, b, g, objects, memberOf.get(b["name"]))
        if vi is not None:
            instances.append(vi)
    _checkVrids(ctx, instances)
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


_TRACK_KINDS = ("trackInterfaces", "trackScripts", "trackFiles", "trackProcesses", "trackBfds")
_TRACK_WORDS = {"trackInterfaces": "track_interface", "trackScripts": "track_script",
                "trackFiles": "track_file", "trackProcesses": "track_process", "trackBfds": "track_bfd"}


def _resolveTrackers(ctx: Context, b: Builder, who: str, objects: dict) -> None:
    for kind, (names, what) in objects.items():
        keep = []
        for t in b.get(kind) or ():
            if t.name not in names:
                ctx.error(t.location, f"{who} {_TRACK_WORDS[kind]} '{t.name}' is not a defined {what} - ignoring")
            elif kind == "trackBfds" and any(k.name == t.name for k in keep):
                ctx.error(t.location, f"{who} duplicate track_bfd {t.name} - ignoring")
            else:
                keep.append(t)
        if kind in b:
            b[kind] = keep


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
            ctx.error(loc, f"Sync group {name} has no virtual router(s) - removing")
            continue
        if len(members) == 1:
            ctx.warning(loc, f"Sync group {name} has only 1 virtual router(s) - this probably isn't what you want")
        for m in members:
            memberOf[m] = b
        b["members"] = members
        _resolveTrackers(ctx, b, f"vrrp_sync_group {name}:", objects)
        groups.append(b)
    return [M.make(M.SyncGroup, b) for b in groups], memberOf


def _instance(ctx: Context, b: Builder, g: M.GlobalDefs, objects: dict, group: Builder | None) -> M.VrrpInstance | None:
    name, loc = b["name"], b["location"]
    who = f"({name})"
    if "virtualRouterId" not in b:
        ctx.error(loc, f"{who} the virtual router id must be set (virtual_router_id 1..255) - instance ignored")
        return None
    # Family: native_ipv6, else first VIP, else source address, else peers.
    vips = list(b.get("virtualIpaddresses") or ())
    if b.get("nativeIpv6"):
        family = 6
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
    if family == 6 and version == 2:
        if "version" in b:
            ctx.error(loc, f"{who} VRRPv2 does not support IPv6 - using version 3")
        version = 3
    b["version"] = version
    strict = b.get("strictMode", g.vrrpStrict)
    b["strictMode"] = strict
    # Priority / state (§0 #15).
    state = b.get("state")
    if "priority" not in b:
        b["priority"] = 255 if state == M.MASTER else 100
    priority = b["priority"]
    if state is None:
        state = M.MASTER if priority == 255 else M.BACKUP
    stateLoc = b.get("stateLocation", loc)
    # Interface.
    if not b.get("interface"):
        src = b.get("unicastSrcIp")
        if not (peers and src is not None and not src.is_link_local) and not b.get("vrf"):
            ctx.error(loc, f"{who} no interface specified (and not unicast with a non link-local unicast_src_ip) - using default_interface {g.defaultInterface}")
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
    # Strict mode (§4.12).
    if strict:
        if peers:
            ctx.error(loc, f"{who} unicast peers are not allowed in strict mode - ignoring them")
            peers = b["unicastPeers"] = []
        if state == M.MASTER and priority != 255:
            ctx.error(stateLoc, f"{who} strict mode: state MASTER requires priority 255 (address owner) - setting BACKUP")
            state = M.BACKUP
        if b.get("preemptDelay"):
            ctx.error(b.get("preemptDelayLocation", loc), f"{who} preempt_delay is not allowed in strict mode - clearing it")
            b["preemptDelay"] = 0.0
        if version == 2 and b.get("accept") is True:
            ctx.error(loc, f"{who} accept mode is not allowed with VRRPv2 in strict mode - ignoring")
            b["accept"] = False
        b.setdefault("accept", priority == 255)
        if b.get("downTimerAdverts", 3) != 3:
            ctx.error(loc, f"{who} strict mode requires down_timer_adverts 3 - setting 3")
            b["downTimerAdverts"] = 3
        b["lowerPrioNoAdvert"] = True
        b["higherPrioSendAdvert"] = False
        if priority == 255:
            b["ownerIgnoreAdverts"] = True
        if family == 6 and b["virtualIpaddresses"] and not b["virtualIpaddresses"][0].address.ip.is_link_local:
            ctx.error(b["virtualIpaddresses"][0].location, f"{who} strict mode: the first IPv6 VIP must be link-local")
        gb = b.get("garp") or {}
        if gb.get("lowerPrioRepeat") or gb.get("lowerPrioDelay"):
            ctx.error(loc, f"{who} strict mode does not allow garp_lower_prio_repeat/delay - clearing them")
            gb.pop("lowerPrioRepeat", None)
            gb.pop("lowerPrioDelay", None)
    # nopreempt / preempt_delay (§0 #14, §4.5, §4.6).
    if b.get("nopreempt"):
        nloc = b.get("nopreemptLocation", loc)
        if state == M.MASTER:
            ctx.error(nloc, f"{who} nopreempt is incompatible with state MASTER (it must be BACKUP) - clearing nopreempt")
            b["nopreempt"] = False
        elif priority == 255:
            ctx.error(nloc, f"{who} nopreempt is incompatible with priority 255 (address owner) - clearing nopreempt")
            b["nopreempt"] = False
    if b.get("preemptDelay"):
        dloc = b.get("preemptDelayLocation", loc)
        if state == M.MASTER:
            ctx.error(dloc, f"{who} preempt_delay is incompatible with state MASTER - clearing it")
            b["preemptDelay"] = 0.0
        elif b.get("nopreempt"):
            ctx.error(dloc, f"{who} preempt_delay is incompatible with nopreempt - clearing it")
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
            ctx.error(loc, f"{who} No VIP specified; at least one is required for VRRPv3/strict mode (or set no_virtual_ipaddress)")
        else:
            ctx.warning(loc, f"{who} No VIP specified; at least one is sensible")
    # Unicast.
    if b.get("unicastIntent") and not peers and not b.get("unicastFaultNoPeer"):
        ctx.deprecated(loc, f"{who} unicast keywords without any unicast_peer - falling back to multicast (set unicast_fault_no_peer to fault instead)")
    # Trackers.
    _resolveTrackers(ctx, b, who, objects)
    if priority == 255:
        for kind in _TRACK_KINDS:
            ts = b.get(kind)
            if not ts:
                continue
            keep = []
            for t in ts:
                if t.weight:
                    ctx.error(t.location, f"{who} ignoring tracked {_TRACK_WORDS[kind][6:]} {t.name} with weights due to address_owner")
                else:
                    keep.append(t)
            b[kind] = keep
    if group is not None:
        b["syncGroup"] = group["name"]
        if not group.get("syncGroupTrackingWeight") and not group.get("globalTracking"):
            for kind in _TRACK_KINDS:
                ts = b.get(kind)
                if ts and any(t.weight for t in ts):
                    ctx.error(loc, f"{who} is in sync group {group['name']}: weighted {_TRACK_WORDS[kind]} entries are ignored (set sync_group_tracking_weight to allow them)")
                    b[kind] = [t for t in ts if not t.weight]
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
    return M.make(M.VrrpInstance, b)


def _auth(ctx: Context, a: Builder, who: str, version: int, family: int, strict: bool, state: str,
          stateLoc: Location) -> M.Authentication | None:
    loc = a["location"]
    atype = a.get("authType")
    if atype is None:
        ctx.error(loc, f"{who} authentication block without auth_type (PASS|AH) - ignoring")
        return None
    if version == 3 or family == 6:
        ctx.error(loc, f"{who} authentication is only supported by VRRPv2 over IPv4 - ignoring it")
        return None
    if strict:
        ctx.error(loc, f"{who} strict mode does not support authentication - ignoring it")
        return None
    password = a.get("authPass")
    if password is None:
        ctx.error(loc, f"{who} auth_type {atype} without auth_pass - ignoring authentication")
        return None
    return M.Authentication(authType=atype, password=password.ljust(8, b"\0"))


def _peerSet(vi: M.VrrpInstance) -> frozenset:
    return frozenset(p.address for p in vi.unicastPeers)


def _checkVrids(ctx: Context, instances: list[M.VrrpInstance]) -> None:
    seen: dict[tuple, list[M.VrrpInstance]] = {}
    for vi in instances:
        key = (vi.interface or vi.vrf or "", vi.family, vi.virtualRouterId)
        others = seen.setdefault(key, [])
        for other in others:
            if vi.isUnicast and other.isUnicast and not (_peerSet(vi) & _peerSet(other)):
                continue
            ctx.error(
                vi.location,
                f"({vi.name}) VRID {vi.virtualRouterId} is already used by {other.name} on interface "
                f"{key[0] or '(none)'} for IPv{vi.family} (allowed only for unicast instances with disjoint peers)",
            )
            break
        others.append(vi)


def _checkUsage(ctx: Context, scripts: list[M.VrrpScript], instances: list[M.VrrpInstance], groups: list[M.SyncGroup]) -> None:
    used = set()
    for obj in (*instances, *groups):
        for t in obj.trackScripts:
            used.add(t.name)
    for s in scripts:
        if s.name not in used:
            ctx.warning(s.location, f"Warning - script {s.name} is not used")
