"""
Runs INSIDE the User-Mode-Linux guest (see L{tests.integration.uml}):
drives L{keepalive_tx.lvs.syncd.SyncDaemonController} against the guest
kernel's real IPVS sync daemons and prints one JSON object with what
C{ipvsadm -L --daemon} and our own C{GET_DAEMON} dump showed at each step.
L{tests.integration.test_lvs_syncd} asserts on it.

Usage: C{python -m tests.integration.uml_guest_syncd}
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from ipaddress import ip_address

from twisted.logger import globalLogPublisher

from keepalive_tx.config.model import LvsSyncDaemon
from keepalive_tx.lvs.syncd import SyncDaemonController, SyncDaemons
from keepalive_tx.vrrp.machine import State


class Instance:
    def __init__(self, name: str) -> None:
        self.name = name


def daemons() -> list[str]:
    out = subprocess.run(["ipvsadm", "-L", "--daemon"], capture_output=True, text=True).stdout
    return sorted(" ".join(line.split()) for line in out.splitlines() if line.strip())


def ours(d: SyncDaemons) -> list[str]:
    return sorted(spec.describe() for spec in d.running())


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def scenario(report: dict) -> None:
    run("ip", "link", "add", "sy0", "type", "veth", "peer", "name", "sy1")
    run("ip", "link", "set", "sy0", "up")
    run("ip", "link", "set", "sy1", "up")
    # a daemon left behind by an earlier run
    run("ipvsadm", "--start-daemon", "backup", "--mcast-interface", "sy1", "--syncid", "9")
    report["leftover"] = daemons()
    inspect = SyncDaemons()
    inspect.open()
    vi = Instance("VI_1")
    c = SyncDaemonController(LvsSyncDaemon(interface="sy0", instance="VI_1"), vrid=51)
    c.start()
    report["afterStart"] = daemons()
    c.instanceStateChanged(vi, State.INIT, State.BACKUP, "")
    report["backup"] = daemons()
    report["backupOurs"] = ours(inspect)
    c.instanceStateChanged(vi, State.BACKUP, State.MASTER, "")
    report["master"] = daemons()
    report["masterOurs"] = ours(inspect)
    c.instanceStateChanged(vi, State.MASTER, State.FAULT, "")
    report["fault"] = daemons()
    c.stop()
    report["stopped"] = daemons()

    opts = SyncDaemonController(
        LvsSyncDaemon(
            interface="sy0", instance="VI_1", syncId=7, maxlen=1400, port=9000, ttl=2,
            group=ip_address("239.1.2.3"),
        ),
        vrid=51,
    )
    opts.start()
    opts.instanceStateChanged(vi, State.INIT, State.MASTER, "")
    report["options"] = daemons()
    report["optionsOurs"] = ours(inspect)
    opts.instanceStateChanged(vi, State.MASTER, State.STOP, "")
    report["optionsStopped"] = daemons()
    opts.stop()

    bad = SyncDaemonController(LvsSyncDaemon(interface="nosuch0", instance="VI_1"), vrid=51)
    bad.start()
    bad.instanceStateChanged(vi, State.INIT, State.MASTER, "")
    report["badRunning"] = bad.running
    report["bad"] = daemons()
    bad.stop()
    inspect.close()


def main() -> int:
    report: dict = {"errors": [], "log": []}
    globalLogPublisher.addObserver(
        lambda e: report["log"].append(str(e.get("log_format", "")).split(":")[0])
        if e.get("log_level") is not None and e["log_level"].name == "error" else None
    )
    try:
        scenario(report)
    except Exception:
        report["errors"].append(traceback.format_exc())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
