"""
Runs INSIDE the User-Mode-Linux guest (see L{tests.integration.uml}): what
Debian's keepalived 2.2.7 and our daemon (C{-C}, checkers only) mail and
notify when they start with real servers, over the guest kernel's real
IPVS (keepalived refuses to run its checkers without it).  Prints one JSON
object; L{tests.integration.test_lvs_mail} asserts on it.

Everything is on loopback: an aiosmtpd relay (Maildir), an HTTP server
for the healthy TCP_CHECK, C{/bin/true} for the healthy MISC_CHECK, a
closed port for the failing TCP_CHECK.  Each real server's C{notify_up} /
C{notify_down} script appends a line to a log.  Every variant runs each
daemon in turn, for L{WINDOW} seconds once its checkers are activated (the
first checks are done by then), then until the mails on their way have
arrived (L{settle}); what was mailed and notified before it is stopped is
reported.

Usage: C{python -m tests.integration.uml_guest_startmail [VARIANT ...]}
(default: every variant of L{VARIANTS}).
"""

from __future__ import annotations

import json
import mailbox
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
RELAY = ("127.0.0.1", 2525)
WINDOW = 3.5
WORK = "/tmp/startmail"
NOTIFY = f"{WORK}/notify.sh"
NOTIFY_LOG = f"{WORK}/notify.log"
MAILDIR = f"{WORK}/Maildir"

#: variant name -> (global_defs lines, virtual_server lines)
VARIANTS = {
    "default": ("", ""),
    "rs_init_notifies": ("    rs_init_notifies\n", ""),
    "alpha": ("", "    alpha\n"),
}


def server(address: str, port: int, name: str, check: str) -> str:
    return f"""\
    real_server {address} {port} {{
        notify_up "{NOTIFY} {name} UP"
        notify_down "{NOTIFY} {name} DOWN"
{check}
    }}
"""


def config(globalLines: str, vsLines: str) -> str:
    tcp = "        TCP_CHECK {\n            connect_timeout 1\n            retry 0\n        }"
    # misc_timeout: its default (delay_loop, 1 s) is shorter than a loaded
    # guest may take to start /bin/true (keepalived then logs "timed out"
    # and takes the server down)
    misc = ('        MISC_CHECK {\n            misc_path "/bin/true"\n'
            '            misc_timeout 10\n        }')
    return f"""\
global_defs {{
    router_id lb1
    notification_email {{
        ops@example.org
    }}
    notification_email_from lb1@example.org
    smtp_server {RELAY[0]} {RELAY[1]}
    smtp_connect_timeout 3
    script_user root
{globalLines}}}
virtual_server 203.0.113.10 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
{vsLines}{server("127.0.0.1", 8080, "tcp-ok", tcp)}\
{server("127.0.0.2", 8081, "misc-ok", misc)}\
{server("127.0.0.3", 8082, "tcp-down", tcp)}\
}}
"""


def waitPort(address: tuple[str, int], deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with socket.create_connection(address, timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"{address} never answered") from None
            time.sleep(0.05)


def mails() -> list[list[str]]:
    box = mailbox.Maildir(MAILDIR, create=False)
    return sorted([str(m["Subject"]), m.get_payload().strip()] for _, m in box.items())


def notified() -> list[str]:
    try:
        with open(NOTIFY_LOG) as f:
            return sorted(f.read().split("\n")[:-1])
    except FileNotFoundError:
        return []


def runDaemon(kind: str, conf: str, logPath: str) -> dict:
    for path in (MAILDIR, NOTIFY_LOG):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
    os.makedirs(MAILDIR)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(MAILDIR, sub))
    if kind == "keepalived":
        argv = ["/usr/sbin/keepalived", "-n", "-l", "-D", "-C", "-f", conf,
                "-p", f"{WORK}/ka.pid", "-c", f"{WORK}/ka-check.pid"]
        env = None
    else:
        argv = [sys.executable, "-c", _TWISTD, "-n", "--pidfile", f"{WORK}/ktx.pid",
                "keepalived", "-C", "-c", conf]
        env = dict(os.environ, PYTHONPATH=ROOT)
    with open(logPath, "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    # the window starts when the checkers do (our interpreter starts slowly here)
    end = time.monotonic() + 60
    while b"Activating healthchecker" not in readFile(logPath):
        if time.monotonic() > end or proc.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(WINDOW)
    settle()
    result = {"mails": mails(), "notify": notified(), "ipvs": ipvs()}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    subprocess.run(["ipvsadm", "-C"], check=False)
    return result


def relayConnections() -> int:
    """
    SMTP connections being opened or open to the relay (SYN_SENT, SYN_RECV,
    ESTABLISHED), from C{/proc/net/tcp}.
    """
    port = f"{RELAY[1]:04X}"
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state in ("01", "02", "03") and port in (local.split(":")[1], remote.split(":")[1]):
                count += 1
    return count


def settle(quiet: float = 1.0, deadline: float = 15.0) -> None:
    """
    Wait until mailing has stopped: no connection to the relay and no new
    mail for C{quiet} seconds (at most C{deadline}).  The window decides what
    is mailed; this only lets a mail already on its way arrive, whatever the
    load of the guest: our daemon delivers its mails one connection at a
    time, in the order of the events, keepalived each on a connection of its
    own, so under a slow relay ours may still be delivering when the window
    ends.
    """
    end = time.monotonic() + deadline
    last, since = None, time.monotonic()
    while time.monotonic() < end:
        now = (len(mails()), relayConnections())
        if now != last or now[1]:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


def readFile(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def ipvs() -> list[str]:
    out = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True).stdout
    return [" ".join(line.split()[:2]) for line in out.splitlines()[3:]]


def main(variants: list[str]) -> None:
    os.makedirs(WORK, exist_ok=True)
    with open(NOTIFY, "w") as f:
        f.write(f'#!/bin/sh\necho "$1 $2" >> {NOTIFY_LOG}\n')
    os.chmod(NOTIFY, 0o755)
    log = open(f"{WORK}/relay.log", "wb")
    procs = [
        subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{RELAY[0]}:{RELAY[1]}",
                          "-c", "aiosmtpd.handlers.Mailbox", MAILDIR],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1",
                          "--directory", WORK],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL),
    ]
    report: dict = {}
    try:
        os.makedirs(MAILDIR, exist_ok=True)
        waitPort(RELAY)
        waitPort(("127.0.0.1", 8080))
        for name in variants:
            globalLines, vsLines = VARIANTS[name]
            conf = f"{WORK}/{name}.conf"
            with open(conf, "w") as f:
                f.write(config(globalLines, vsLines))
            report[name] = {kind: runDaemon(kind, conf, f"{WORK}/{kind}-{name}.log")
                            for kind in ("keepalived", "ours")}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        log.close()
        logs = []
        for name in sorted(os.listdir(WORK)):
            if name.endswith(".log"):
                logs.append(f"==== {name}\n" + readFile(f"{WORK}/{name}").decode(errors="replace"))
        report["log"] = "\n".join(logs)[-30000:]
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:] or list(VARIANTS))
