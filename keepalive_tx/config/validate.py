"""
From parsed builders to the immutable L{Config}: keepalived's end-of-config
defaults and cross-checks, all reported as diagnostics with locations.
Each C{vrrp_instance} is completed by
L{keepalive_tx.config.validate_instance} (keepalived's
C{vrrp_complete_instance}); what spans instances (duplicate VRIDs, unused
scripts, sync groups) is checked here.  Pure: no interface lookups.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from keepalive_tx.config import model as M
from keepalive_tx.config.errors import Diagnostics, Severity
from keepalive_tx.config.schema import Builder, Context
from keepalive_tx.config.toplevel import lvsModule
from keepalive_tx.config.validate_instance import completeInstance, garpSettings
from keepalive_tx.config.validate_track import resolveTrackers


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
        vi = completeInstance(ctx, b, g, objects, weights, memberOf.get(b["name"]))
        if vi is not None:
            instances.append(vi)
    _checkVrids(ctx, instances, g)
    _checkUsage(ctx, scripts, instances, groups)
    garpGroups = [
        M.make(M.GarpGroupConfig, b) for b in root.get("garpGroups") or []
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
    garp = garpSettings(garpB, None)
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
    return [M.make(M.SyncGroupConfig, b) for b in groups], memberOf




def _peerSet(vi: M.VrrpInstanceConfig) -> frozenset:
    return frozenset(p.address for p in vi.unicastPeers)


def _checkVrids(ctx: Context, instances: list[M.VrrpInstanceConfig], g: M.GlobalDefs) -> None:
    """
    keepalived refuses two instances with the same VRID and family that
    would share adverts: multicast on the same interface and group, or
    unicast from the same source with a peer in common.
    """
    seen: dict[tuple, list[M.VrrpInstanceConfig]] = {}
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


def _checkUsage(ctx: Context, scripts: list[M.VrrpScript], instances: list[M.VrrpInstanceConfig], groups: list[M.SyncGroupConfig]) -> None:
    used = set()
    for obj in (*instances, *groups):
        for t in obj.trackScripts:
            used.add(t.name)
    for s in scripts:
        if s.name not in used:
            # (keepalived reports it only when it runs, not under -t)
            ctx.diagnostics.note(f"Warning - script {s.name} is not used", s.location)
