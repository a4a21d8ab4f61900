"""
Runs INSIDE the User-Mode-Linux guest (see L{tests.integration.uml}): our
whole daemon (C{twistd -n keepalived -C}) load-balancing a NAT virtual
service over the guest kernel's real IPVS, with real servers in network
namespaces, real HTTP servers and a client namespace sending requests
through IPVS.  Prints one JSON object; L{tests.integration.test_lvs_daemon}
asserts on it.

Topology (all inside the guest)::

    client ns "cl" 198.51.100.10 --veth-- director (root ns) 198.51.100.1
                                          VIP 203.0.113.10 on lo, IPVS NAT
                                          br0 192.0.2.1/24
                                   +---------+---------+---------+
                                  rs1 .11   rs2 .12   rs3 .13   sorry .99

Each real server is an C{http.server} serving its own name (a thread of
this process listening in the server's namespace); the daemon checks rs1
with HTTP_GET and rs2/rs3 with TCP_CHECK (rs3 has inhibit_on_failure);
quorum 2 with a sorry server.

Usage: C{python -m tests.integration.uml_guest_daemon}
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

from tests.integration.netns import inNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIP = "203.0.113.10"
SERVERS = {"rs1": "192.0.2.11", "rs2": "192.0.2.12", "rs3": "192.0.2.13", "sorry": "192.0.2.99"}
_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"

CONFIG = f"""\
global_defs {{
    router_id uml-lb
}}
virtual_server {VIP} 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    quorum 2
    sorry_server 192.0.2.99 80
    real_server 192.0.2.11 80 {{
        weight 1
        HTTP_GET {{
            url {{
                path /health
                status_code 200
            }}
            connect_timeout 1
            retry 0
            delay_before_retry 1
        }}
    }}
    real_server 192.0.2.12 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
    real_server 192.0.2.13 80 {{
        weight 1
        inhibit_on_failure
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""

T0 = time.monotonic()


def now() -> float:
    return round(time.monotonic() - T0, 2)


def run(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, input=stdin)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.returncode} {p.stderr.strip()}")
    return p.stdout


def listing() -> list[str]:
    """
    C{ipvsadm -Ln} without the header lines, whitespace collapsed.
    """
    return [" ".join(line.split()) for line in run("ipvsadm", "-Ln").splitlines()[3:]]


def setUpNetwork() -> None:
    batch = [
        "link add br0 type bridge",
        "addr add 192.0.2.1/24 dev br0",
        "link set br0 up",
        "link add vcl type veth peer name eth0c",
        "addr add 198.51.100.1/24 dev vcl",
        "link set vcl up",
        f"addr add {VIP}/32 dev lo",
    ]
    for name in SERVERS:
        batch += [f"link add v{name} type veth peer name e{name}", f"link set v{name} master br0 up"]
    for name in [*SERVERS, "cl"]:
        run("ip", "netns", "add", name)
    run("ip", "-batch", "-", stdin="\n".join(batch) + "\n")
    moves = [f"link set e{name} netns {name}" for name in SERVERS] + ["link set eth0c netns cl"]
    run("ip", "-batch", "-", stdin="\n".join(moves) + "\n")
    for name, address in [*SERVERS.items(), ("cl", "198.51.100.10")]:
        dev = "eth0c" if name == "cl" else f"e{name}"
        gw = "198.51.100.1" if name == "cl" else "192.0.2.1"
        prefix = 24
        run(
            "ip", "-n", name, "-batch", "-",
            stdin=f"link set lo up\nlink set {dev} up\naddr add {address}/{prefix} dev {dev}\n"
            f"route add default via {gw}\n",
        )
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1\n")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class WebServers:
    """
    One HTTP server per real server namespace (C{http.server} in a thread
    of this process, its listening socket in the namespace): stopping one
    closes its socket, so connections to it are refused.
    """

    def __init__(self) -> None:
        self.servers: dict[str, http.server.ThreadingHTTPServer] = {}
        for name in SERVERS:
            root = f"/tmp/www/{name}"
            os.makedirs(root, exist_ok=True)
            with open(f"{root}/index.html", "w") as f:
                f.write(name)
            with open(f"{root}/health", "w") as f:
                f.write("ok")

    def start(self, name: str) -> None:
        handler = functools.partial(_Quiet, directory=f"/tmp/www/{name}")
        with inNamespace(name):
            server = http.server.ThreadingHTTPServer((SERVERS[name], 80), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers[name] = server

    def stop(self, name: str) -> None:
        server = self.servers.pop(name)
        server.shutdown()
        server.server_close()

    def stopAll(self) -> None:
        for name in list(self.servers):
            self.stop(name)


def waitPort(address: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with socket.create_connection((address, 80), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"{address}:80 never answered") from None
            time.sleep(0.1)


def clientSocket(timeout: float) -> socket.socket:
    """
    A TCP socket of the client namespace C{cl}.
    """
    with inNamespace("cl"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    return sock


def fetch(request: bytes, timeout: float = 2.0) -> bytes:
    """
    Send C{request} to the VIP on one connection from the client
    namespace; return the whole response.
    """
    with clientSocket(timeout) as sock:
        sock.connect((VIP, 80))
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def requests(count: int = 6) -> list[str]:
    """
    C{count} HTTP requests from the client namespace to the VIP (one
    connection each): the bodies name the servers that answered.
    """
    out = []
    for _ in range(count):
        try:
            response = fetch(f"GET / HTTP/1.0\r\nHost: {VIP}\r\n\r\n".encode())
            out.append(response.partition(b"\r\n\r\n")[2].decode())
        except OSError as e:
            out.append("error: " + type(e).__name__)
    return out


def _endpoint(hexed: str) -> str:
    """
    C{C000020B:0050} (an IPv4 endpoint of C{/proc/net/ip_vs}) as
    C{192.0.2.11:80}; others as they are.
    """
    address, _, port = hexed.rpartition(":")
    if len(address) != 8:
        return hexed
    return f"{socket.inet_ntoa(bytes.fromhex(address))}:{int(port, 16)}"


def kernelListing() -> list[str]:
    """
    What L{listing} shows (services, and destinations as C{-> ADDRESS:PORT
    METHOD WEIGHT ...}), read from C{/proc/net/ip_vs}: polling with
    C{ipvsadm} cost ~70 ms of CPU a poll here (process creation under UML).
    """
    with open("/proc/net/ip_vs") as f:
        rows = f.read().splitlines()[3:]
    out = []
    for row in rows:
        words = row.split()
        if words and words[0] == "->":
            out.append(" ".join(["->", _endpoint(words[1]), *words[2:]]))
        elif words:
            out.append(" ".join([words[0], _endpoint(words[1]), *words[2:]]))
    return out


def waitFor(predicate, what: str, timeout: float = 15.0) -> float:
    """
    Poll the kernel's table until C{predicate(lines)} (lines as
    L{kernelListing} gives them); return the seconds waited.
    """
    start = time.monotonic()
    while True:
        lines = kernelListing()
        if predicate(lines):
            return round(time.monotonic() - start, 2)
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out waiting for {what}: {listing()}")
        time.sleep(0.1)


def has(address: str, weight: int | None = None):
    def predicate(lines: list[str]) -> bool:
        for line in lines:
            words = line.split()
            if words[:2] == ["->", f"{address}:80"]:
                return weight is None or words[3] == str(weight)
        return False

    return predicate


def serviceConns() -> int:
    """
    The VIP service's connection counter (C{ipvsadm -Ln --stats}): it only
    grows while the service exists, and restarts from 0 if it is re-created.
    """
    for line in run("ipvsadm", "-Ln", "--stats").splitlines():
        words = line.split()
        if words[:2] == ["TCP", f"{VIP}:80"]:
            return int(words[2])
    return -1


def lacks(address: str):
    return lambda lines: not has(address)(lines)


def startDaemon(report: dict, config: str) -> tuple[subprocess.Popen, object]:
    """
    Write C{config} and start our daemon on it (checkers only), logging to
    C{/tmp/ktx.log}; L{main} kills it if the scenario fails.
    """
    with open("/tmp/keepalived.conf", "w") as f:
        f.write(config)
    log = open("/tmp/ktx.log", "w")
    daemon = subprocess.Popen(
        [sys.executable, "-c", _TWISTD, "-n", "--pidfile=", "--logfile=-", "keepalived",
         "-c", "/tmp/keepalived.conf", "-C"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    report["_daemon"] = daemon
    return daemon, log


def scenario(report: dict) -> None:
    timings = report["timings"]
    setUpNetwork()
    timings["network"] = now()
    web = WebServers()
    report["_web"] = web
    for name in SERVERS:
        web.start(name)
    for address in SERVERS.values():
        waitPort(address)
    timings["webServers"] = now()
    # a service that is not ours: must survive the daemon
    run("ipvsadm", "-A", "-t", "198.51.100.200:443", "-s", "rr")
    daemon, log = startDaemon(report, CONFIG)
    startedAt = time.monotonic()
    report["startWait"] = waitFor(has("192.0.2.13"), "service programmed", 30)
    # the first checks run 1 s + warmup (<= delay_loop) after start
    time.sleep(2.5)
    timings["daemonUp"] = now()
    report["daemonStartSeconds"] = round(time.monotonic() - startedAt, 2)
    report["started"] = listing()
    report["requestsAllUp"] = requests(6)

    web.stop("rs1")
    report["rs1DownAfter"] = waitFor(lacks("192.0.2.11"), "rs1 removed")
    report["rs1Down"] = listing()
    report["requestsRs1Down"] = requests(6)

    web.start("rs1")
    report["rs1UpAfter"] = waitFor(has("192.0.2.11"), "rs1 back")
    report["rs1Up"] = listing()

    web.stop("rs3")
    report["rs3InhibitedAfter"] = waitFor(has("192.0.2.13", 0), "rs3 inhibited")
    report["rs3Inhibited"] = listing()
    report["requestsRs3Inhibited"] = requests(4)

    web.stop("rs2")
    report["sorryAfter"] = waitFor(has("192.0.2.99", 1), "sorry server")
    report["sorry"] = listing()
    report["requestsSorry"] = requests(3)

    web.start("rs2")
    report["quorumBackAfter"] = waitFor(lacks("192.0.2.99"), "quorum back")
    report["quorumBack"] = listing()
    report["requestsQuorumBack"] = requests(4)

    # SIGHUP with rs2 re-weighted: the service is edited in place (its
    # connection counter goes on), rs3 stays inhibited (its state carried)
    report["connsBeforeReload"] = serviceConns()
    with open("/tmp/keepalived.conf", "w") as f:
        f.write(CONFIG.replace("    real_server 192.0.2.12 80 {\n        weight 1\n",
                               "    real_server 192.0.2.12 80 {\n        weight 3\n"))
    daemon.send_signal(signal.SIGHUP)
    report["reloadAfter"] = waitFor(has("192.0.2.12", 3), "rs2 re-weighted by the reload")
    time.sleep(1.5)  # a round of checks under the new service
    report["reloaded"] = listing()
    report["connsAfterReload"] = serviceConns()

    daemon.send_signal(signal.SIGTERM)
    report["daemonExit"] = daemon.wait(15)
    report["stopped"] = listing()
    timings["stopped"] = now()
    log.close()


def main(run=None) -> int:
    """
    Run C{run} (default: L{scenario}) with a report dict, clean up, add
    the daemon's log and print the report as JSON.
    """
    report: dict = {"timings": {}, "errors": []}
    try:
        (run or scenario)(report)
    except Exception:
        report["errors"].append(traceback.format_exc())
    finally:
        daemon = report.pop("_daemon", None)
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        web = report.pop("_web", None)
        if web is not None:
            web.stopAll()
    try:
        with open("/tmp/ktx.log") as f:
            report["log"] = f.read().splitlines()
    except OSError:
        report["log"] = []
    report["timings"]["total"] = now()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
