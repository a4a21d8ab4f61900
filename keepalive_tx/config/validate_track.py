"""
The tracked objects of VRRP instances and sync groups, checked as
keepalived completes an instance: names that are not defined, an instance
tracking its own interface, and weights that an address owner, or an
instance in a sync group without C{sync_group_tracking_weight}, cannot use
(docs/keepalived-compat.md, "Tracking weights").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from keepalive_tx.config.schema import Builder, Context

TRACK_KINDS = ("trackInterfaces", "trackScripts", "trackFiles", "trackProcesses", "trackBfds")
TRACK_WORDS = {"trackInterfaces": "track_interface", "trackScripts": "track_script",
               "trackFiles": "track_file", "trackProcesses": "track_process", "trackBfds": "track_bfd"}


def resolveTrackers(ctx: Context, b: Builder, who: str, objects: dict) -> None:
    """
    Drop the trackers of C{b} naming objects that are not defined.
    """
    for kind, (names, what) in objects.items():
        keep = []
        for t in b.get(kind) or ():
            if t.name not in names:
                ctx.error(t.location, f"{who} {TRACK_WORDS[kind]} '{t.name}' is not a defined {what} - ignoring")
            else:
                keep.append(t)
        if kind in b:
            b[kind] = keep


def ownInterface(ctx: Context, b: Builder) -> None:
    """
    An instance does not track its own interface (it always does, unweighted).
    """
    ifname = b.get("interface")
    trackers = b.get("trackInterfaces")
    if not ifname or not trackers:
        return
    keep = []
    for t in trackers:
        if t.name == ifname:
            ctx.error(t.location, f"({b['name']}) Ignoring track_interface {ifname} since own interface")
        else:
            keep.append(t)
    b["trackInterfaces"] = keep


def unweighted(ctx: Context, b: Builder, inGroup: bool, defaults: Mapping[str, Mapping[str, int]]) -> None:
    """
    An address owner cannot use weights (its priority stays 255), nor can an
    instance of a sync group without C{sync_group_tracking_weight}: as
    keepalived, a weighted interface of a group member is tracked
    unweighted, a weighted interface of an owner, a weighted script or BFD
    is not tracked, a file with its default weight 1 is tracked unweighted
    and a file with another weight is not tracked.

    @param inGroup: the instance is in such a sync group (the reason given
        is then the group, also for an owner).
    @param defaults: weights of the tracked objects by kind and name, used
        where the tracker gives none.
    """
    name = b["name"]
    why = "SYNC group" if inGroup else "address_owner"

    def weight(kind: str, t) -> int:
        if t.weight is not None:
            return t.weight
        return defaults.get(kind, {}).get(t.name, 0)

    keep = []
    for t in b.get("trackInterfaces") or ():
        if not t.weight:
            keep.append(t)
            continue
        if inGroup:
            ctx.error(t.location, f"({name}) ignoring {t.name} tracked interface weight due to SYNC group")
            keep.append(dataclasses.replace(t, weight=0))
        else:
            ctx.error(t.location, f"({name}) ignoring {t.name} tracked interface due to address owner")
    if "trackInterfaces" in b:
        b["trackInterfaces"] = keep
    for kind in ("trackScripts", "trackBfds"):
        keep = []
        for t in b.get(kind) or ():
            w = weight(kind, t)
            if not w:
                keep.append(t)
            elif kind == "trackScripts":
                ctx.error(t.location, f"({name}) ignoring tracked script {t.name} with weights due to {why}")
            else:
                ctx.error(t.location, f"({name}) ignoring tracked bfd {t.name} with weight {w} due to {why}")
        if kind in b:
            b[kind] = keep
    keep = []
    for t in b.get("trackFiles") or ():
        w = weight("trackFiles", t)
        if w == 1:
            ctx.error(t.location, f"({name}) ignoring weight from tracked file {t.name} due to {why}."
                                  " specify weight 0")
            keep.append(dataclasses.replace(t, weight=0))
        elif w:
            ctx.error(t.location, f"({name}) ignoring tracked file {t.name} with weight {w} due to {why}")
        else:
            keep.append(t)
    if "trackFiles" in b:
        b["trackFiles"] = keep
