# -*- test-case-name: tests.unit.test_lvs_service -*-
"""
keepalived's wording for what the LVS service does: real servers as
C{[ip]:proto:port} and one log line per IPVS change of a virtual server
(C{Removing service [192.0.2.11]:tcp:80 from VS [192.0.2.100]:tcp:80},
C{Adding sorry server ...}, C{Disabling service ...}), whatever the
number of IPVS services a group expands to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from keepalive_tx.lvs.backend import describeAction
from keepalive_tx.lvs.pool import Action, AddDest, DeleteDest, DestKey, EditDest, WeightChange

__all__ = ["describeActions", "describeDecision", "describeDest", "describeServer"]


def describeServer(vs: Any, address: Any, port: int) -> str:
    """
    keepalived's C{FMT_RS}: C{[ip]:proto:port} with the virtual server's
    protocol (C{none} for fwmark services).
    """
    return f"[{address}]:{(vs.protocol or 'none').lower()}:{port}"


def describeDest(vs: Any, key: DestKey) -> str:
    return describeServer(vs, key.address, key.port)


def describeDecision(virtual: Any, actions: Iterable[Action], events: Iterable[Any] = ()) -> list[str]:
    """
    keepalived-like log lines for a pool decision: one line per real
    server and virtual server (a group's several IPVS services give one
    line).
    """
    vs = virtual.config
    sorry = vs.sorryServer
    sorryKey = DestKey(sorry.address, sorry.port) if sorry is not None else None
    reweighted = {e.server for e in events if isinstance(e, WeightChange)}
    lines: list[str] = []
    for action in actions:
        if isinstance(action, (AddDest, EditDest)):
            key, weight = action.dest.key, action.dest.weight
        elif isinstance(action, DeleteDest):
            key, weight = action.dest, None
        else:
            continue
        rs = describeDest(vs, key)
        if key == sorryKey and key not in virtual.servers:
            if weight:
                line = f"Adding sorry server {rs} to VS {vs.name}"
            else:
                line = f"Removing sorry server {rs} from VS {vs.name}"
        elif weight is None:
            line = f"Removing service {rs} from VS {vs.name}"
        elif weight == 0:
            line = f"Disabling service {rs} of VS {vs.name}"
        elif isinstance(action, AddDest):
            line = f"Adding service {rs} to VS {vs.name}"
        elif key in reweighted:
            continue  # logged as "Changing weight ..."
        else:
            line = f"Enabling service {rs} of VS {vs.name} (weight {weight})"
        if line not in lines:
            lines.append(line)
    return lines


def describeActions(virtuals: list[Any], actions: list[Action]) -> list[str]:
    """
    Log lines for actions on the whole table (reconcile at start, the
    safety net at stop): destination changes of our virtual servers in
    keepalived's wording, the rest as L{describeAction} puts it.
    """
    byService = {key: v for v in virtuals for key in v.pool.services}
    lines: list[str] = []
    for action in actions:
        key = getattr(action, "service", None)
        virtual = byService.get(key) if key is not None else None
        if virtual is not None:
            found = describeDecision(virtual, [action])
        else:
            found = [describeAction(action)]
        lines.extend(line for line in found if line not in lines)
    return lines
