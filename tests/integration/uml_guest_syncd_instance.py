"""
Runs INSIDE the User-Mode-Linux guest (see L{tests.integration.uml}):
Debian's keepalived 2.2.7 and our daemon (C{-P}, VRRP only), in turn, with
an instance that names its IPVS sync-daemon interface the deprecated way
(C{lvs_sync_daemon_interface sy1} in the C{vrrp_instance}).  The instance is
alone on its link, so it goes BACKUP, then MASTER.  Prints one JSON object:
for each daemon, the kernel's sync daemons (C{ipvsadm -L --daemon}) while
BACKUP, while MASTER and after the daemon stopped, and its log lines about
the keyword.  L{tests.integration.test_lvs_syncd} asserts on it.

Usage: C{python -m tests.integration.uml_guest_syncd_instance}
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
WORK = "/tmp/syncd-instance"
CONFIG = """\
global_defs {
    router_id syncd
}
vrrp_instance VI_1 {
    state BACKUP
    interface sy0
    virtual_router_id 51
    priority 100
    advert_int 1
    lvs_sync_daemon_interface sy1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def daemons() -> list[str]:
    out = subprocess.run(["ipvsadm", "-L", "--daemon"], capture_output=True, text=True).stdout
    return sorted(" ".join(line.split()) for line in out.splitlines() if line.strip())


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def readLog(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def waitFor(predicate, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def runDaemon(kind: str, conf: str) -> dict:
    logPath = f"{WORK}/{kind}.log"
    if kind == "keepalived":
        argv = ["/usr/sbin/keepalived", "-n", "-l", "-D", "-P", "-f", conf,
                "-p", f"{WORK}/ka.pid", "-r", f"{WORK}/ka-vrrp.pid"]
        env = None
    else:
        argv = [sys.executable, "-c", _TWISTD, "-n", "--pidfile", f"{WORK}/ktx.pid",
                "keepalived", "-P", "-D", "-c", conf]
        env = dict(os.environ, PYTHONPATH=ROOT)
    with open(logPath, "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    result: dict = {}
    waitFor(lambda: "Entering BACKUP STATE" in readLog(logPath), 60)
    waitFor(lambda: any(d.startswith("backup") for d in daemons()), 5)
    result["backup"] = daemons()
    waitFor(lambda: "Entering MASTER STATE" in readLog(logPath), 30)
    waitFor(lambda: any(d.startswith("master") for d in daemons()), 5)
    result["master"] = daemons()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    result["stopped"] = daemons()
    result["log"] = [line.split("]", 1)[-1].split(": ", 1)[-1].strip()
                     for line in readLog(logPath).splitlines()
                     if "lvs_sync_daemon" in line or "sync daemon" in line]
    for state in ("master", "backup"):
        subprocess.run(["ipvsadm", "--stop-daemon", state], capture_output=True)
    return result


def main() -> None:
    report: dict = {"errors": []}
    try:
        os.makedirs(WORK, exist_ok=True)
        run("ip", "link", "set", "lo", "up")
        run("ip", "link", "add", "sy0", "type", "veth", "peer", "name", "sy1")
        run("ip", "link", "set", "sy0", "up")
        run("ip", "link", "set", "sy1", "up")
        run("ip", "addr", "add", "192.0.2.1/24", "dev", "sy0")
        conf = f"{WORK}/keepalived.conf"
        with open(conf, "w") as f:
            f.write(CONFIG)
        for kind in ("keepalived", "ours"):
            report[kind] = runDaemon(kind, conf)
    except Exception:
        report["errors"].append(traceback.format_exc())
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
