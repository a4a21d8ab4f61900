# -*- test-case-name: tests.unit.test_demo -*-
"""
Reading a director's status API (C{status_listen unix:PATH}, served by the
daemon itself) and showing it: who is MASTER, which real servers are
healthy, and the IPVS table the daemon programmed -- the kernel's, or the
dry-run table where the kernel has no IPVS -- laid out like C{ipvsadm -Ln}.

L{fetchStatus} blocks (the demo driver is a script); the formatting
functions are pure.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from typing import Any

__all__ = ["fetchStatus", "formatTable", "instanceState", "parseIpvsadm", "poolState"]

#: how ipvsadm names the forwarding methods
_METHODS = {"NAT": "Masq", "DR": "Route", "TUN": "Tunnel"}
_FROM_IPVSADM = {v: k for k, v in _METHODS.items()}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socketPath = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socketPath)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def fetchStatus(path: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """
    C{GET /status} over the unix socket C{path}; C{None} while the daemon
    does not answer (not started yet, or stopped).
    """
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", "/status")
        response = connection.getresponse()
        if response.status != 200:
            return None
        return json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def instanceState(status: Mapping[str, Any] | None, name: str = "VI_1") -> str | None:
    """
    The state of VRRP instance C{name} (C{"MASTER"}, C{"BACKUP"}, ...).
    """
    for instance in ((status or {}).get("vrrp") or {}).get("instances", ()):
        if instance["name"] == name:
            return instance["state"]
    return None


def poolState(status: Mapping[str, Any] | None) -> dict[str, tuple[bool, bool]]:
    """
    C{"ADDRESS:PORT"} -> C{(alive, checked)} for every real server:
    C{checked} once each of its checkers has a result.
    """
    pool = {}
    for vs in ((status or {}).get("lvs") or {}).get("virtual_servers", ()):
        for rs in vs["real_servers"]:
            checked = all(c["last_ok"] is not None for c in rs["checkers"])
            pool[f"{rs['address']}:{rs['port']}"] = (rs["alive"], checked)
    return pool


def _split(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), port


def parseIpvsadm(text: str) -> list[dict[str, Any]]:
    """
    The services in the output of C{ipvsadm -Ln}, shaped as the status
    API's dry-run table (keepalived's C{[address]:proto:port} names).
    """
    services: list[dict[str, Any]] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] in ("TCP", "UDP", "SCTP"):
            host, port = _split(words[1])
            services.append({"service": f"[{host}]:{words[0].lower()}:{port}",
                             "scheduler": words[2], "destinations": []})
        elif len(words) >= 3 and words[0] == "FWM":
            services.append({"service": f"FWM {words[1]}", "scheduler": words[2],
                             "destinations": []})
        elif len(words) >= 3 and words[0] == "->" and services and words[2].isalpha():
            host, port = _split(words[1])
            services[-1]["destinations"].append({
                "destination": f"[{host}]:{port}",
                "method": _FROM_IPVSADM.get(words[2], words[2].upper()),
                "weight": int(words[3]) if len(words) > 3 and words[3].isdigit() else 0,
            })
    return services


def _checkText(rs: Mapping[str, Any]) -> str:
    words = []
    for checker in rs["checkers"]:
        if checker["last_ok"] is None:
            words.append(f"{checker['kind']} not run yet")
        elif checker["last_ok"]:
            words.append(f"{checker['kind']} ok")
        else:
            words.append(f"{checker['kind']} failed: {checker['last_reason']}")
    return ", ".join(words)


def formatTable(director: str, status: Mapping[str, Any],
                names: Mapping[str, str] | None = None,
                kernel: list[dict[str, Any]] | None = None) -> list[str]:
    """
    The IPVS table of C{director} with each real server's health, and the
    real servers that are out of the table.

    @param names: address -> machine name, shown beside addresses.
    @param kernel: where the kernel has IPVS, its table (L{parseIpvsadm});
        of it, the services the daemon owns are shown.
    """
    names = names or {}
    lvs = status.get("lvs") or {}
    ipvs = lvs.get("ipvs") or {}
    if ipvs.get("dry_run"):
        lines = [f"IPVS table on {director} (dry run: this kernel has no IPVS, "
                 "so the daemon keeps the table in memory):"]
        table = ipvs.get("services", [])
    else:
        lines = [f"IPVS table on {director} (kernel, ipvsadm -Ln):"]
        owned = set(ipvs.get("owned", ()))
        table = [service for service in kernel or () if service["service"] in owned]
    servers = {}
    for vs in lvs.get("virtual_servers", ()):
        for rs in vs["real_servers"]:
            servers[f"[{rs['address']}]:{rs['port']}"] = rs
    listed = set()
    for service in table:
        lines.append(f"  {service['service']} {service['scheduler']}")
        for dest in service["destinations"]:
            key = dest["destination"]
            listed.add(key)
            rs = servers.get(key)
            name = names.get(rs["address"], "") if rs else ""
            health = f"  {_checkText(rs)}" if rs else ""
            lines.append(f"    -> {key:<18} {name:<5} {_METHODS.get(dest['method'], dest['method'])}"
                         f"  weight {dest['weight']}{health}")
    for key, rs in servers.items():
        if key not in listed:
            name = names.get(rs["address"], "")
            lines.append(f"    (not in the table: {key} {name}  {_checkText(rs)})")
    return lines
