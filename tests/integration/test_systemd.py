"""
systemd integration: C{conf/keepalive_tx.service} passes
C{systemd-analyze verify}, and the daemon started with the unit's own
C{ExecStart} command line (in a lab namespace, with one VRRP instance)
speaks the C{sd_notify} protocol to a real C{AF_UNIX} datagram socket --
bound at a path, and at an abstract name -- as systemd would see it:
C{READY=1} once started, C{RELOADING=1} / C{READY=1} around each SIGHUP
(also a refused one), C{STATUS=} lines, C{WATCHDOG=1} pings, and
C{STOPPING=1} on SIGTERM.
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import TestCase

from tests.integration.netns import requireCommand
from tests.integration.vrrpnode import (
    _TWISTD,
    OURS,
    ROOT,
    V2_PASS,
    VIP4,
    VrrpLabMixin,
    configText,
    holders,
    waitFor,
)

UNIT = os.path.join(ROOT, "conf", "keepalive_tx.service")
UNIT_CONFIG = "/etc/keepalived/keepalived.conf"
UNIT_RUN_DIR = "/run/keepalive_tx/"

#: receives datagrams inside a namespace (abstract names are per network
#: namespace) and appends each, JSON-encoded, to a file
LISTENER = """\
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1].replace("@", "\\0", 1))
with open(sys.argv[2], "a") as out:
    out.write("bound\\n"); out.flush()
    while True:
        out.write(json.dumps(s.recv(65536).decode()) + "\\n"); out.flush()
"""


def readUnit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    with open(UNIT) as f:
        unit.read_file(f)
    return unit


def unitCommand(confPath: str, pidPath: str) -> list[str]:
    """
    The unit's C{ExecStart}, run with this checkout's twistd, our
    configuration and pid file, and an empty C{$DAEMON_ARGS}.
    """
    argv = shlex.split(readUnit()["Service"]["ExecStart"])
    assert argv[0] == "twistd", argv
    out = [sys.executable, "-c", _TWISTD]
    for arg in argv[1:]:
        if arg == "$DAEMON_ARGS":
            continue
        arg = arg.replace(UNIT_CONFIG, confPath)
        if UNIT_RUN_DIR in arg:
            arg = arg.split(UNIT_RUN_DIR)[0] + pidPath
        out.append(arg)
    return out


class UnitFileTests(TestCase):
    def test_verify(self) -> None:
        """
        C{systemd-analyze verify} finds nothing to say about the unit
        (twistd, which systemd looks up in /usr/local/bin and /usr/bin,
        replaced by the one installed here when it is elsewhere).
        """
        analyze = requireCommand("systemd-analyze")
        twistd = shutil.which("twistd")
        if twistd is None:
            self.fail("twistd is not installed")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "keepalive_tx.service")
        with open(UNIT) as f:
            text = f.read()
        if not any(os.access(os.path.join(d, "twistd"), os.X_OK)
                   for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin")):
            text = text.replace("ExecStart=twistd ", f"ExecStart={twistd} ")
        with open(path, "w") as f:
            f.write(text)
        result = subprocess.run([analyze, "verify", "--man=no", "--recursive-errors=no", path],
                                capture_output=True, text=True)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))
        service = readUnit()["Service"]
        self.assertEqual((service["Type"], service["ExecReload"], service["Restart"]),
                         ("notify", "/bin/kill -HUP $MAINPID", "on-failure"))


class Listener:
    """
    A datagram socket the daemon notifies, bound by the test process at a
    path, or inside the host's namespace at an abstract name.
    """

    def __init__(self, test: TestCase, node, abstract: bool) -> None:
        directory = node.directory
        if abstract:
            self.address = f"@ktx-notify-{os.getpid()}-{secrets.token_hex(4)}"
            self.file = os.path.join(directory, "notify.jsonl")
            proc = node.host.spawn(sys.executable, "-c", LISTENER, self.address, self.file)
            test.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
            waitFor(lambda: os.path.exists(self.file), 10, "the notify listener")
            self.sock = None
        else:
            # a short path (sun_path holds 108 bytes), like /run/systemd/notify
            short = tempfile.mkdtemp(prefix="ktx-notify-")
            test.addCleanup(shutil.rmtree, short, True)
            self.address = os.path.join(short, "notify")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(self.address)
            self.sock.setblocking(False)
            test.addCleanup(self.sock.close)
        #: (monotonic arrival, fields) -- arrival only for the socket here
        self.received: list[tuple[float | None, dict[str, str]]] = []

    def messages(self) -> list[dict[str, str]]:
        if self.sock is not None:
            while True:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    break
                self.received.append((time.monotonic(), parse(data.decode())))
        else:
            with open(self.file) as f:
                lines = f.read().splitlines()[1:]
            self.received = [(None, parse(json.loads(line))) for line in lines]
        return [m for _, m in self.received]


def parse(datagram: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.split("\n"))


class NotifyTests(VrrpLabMixin, TestCase):
    timeout = 120

    def notifySequence(self, abstract: bool) -> None:
        [node] = self.makeNodes([OURS])
        listener = Listener(self, node, abstract)
        # a notify script records the environment our scripts inherit
        envFile = os.path.join(node.directory, "script-env")
        script = os.path.join(node.directory, "notify-master.sh")
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\nenv > {envFile}\n")
        os.chmod(script, 0o755)
        config = configText(V2_PASS, node.host, 150).replace(
            "    advert_int", f"    notify_master {script}\n    advert_int")
        node.start(config, argv=unitCommand,
                   env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"})
        ready = lambda: [m for m in listener.messages() if "READY" in m]  # noqa: E731
        waitFor(lambda: ready(), 20, "READY=1", [node])
        self.assertTrue(os.path.exists(node.pidPath))
        self.waitHolders(VIP4, [1], timeout=20)
        waitFor(lambda: {"STATUS": "1 VRRP instance (1 MASTER)"} in listener.messages(), 10,
                "STATUS=1 VRRP instance (1 MASTER)", [node])
        waitFor(lambda: os.path.exists(envFile) and os.path.getsize(envFile), 10,
                "the notify_master script", [node])
        with open(envFile) as f:
            inherited = [line.split("=")[0] for line in f]
        self.assertEqual([v for v in ("NOTIFY_SOCKET", "WATCHDOG_USEC") if v in inherited], [])

        # SIGHUP, applied: RELOADING=1 stamped with CLOCK_MONOTONIC, then READY=1
        before = time.monotonic()
        node.sendSignal(signal.SIGHUP)
        waitFor(lambda: len(ready()) == 2, 10, "READY=1 after the reload", [node])
        after = time.monotonic()
        [reloading] = [m for m in listener.messages() if "RELOADING" in m]
        self.assertLessEqual(before * 1e6, int(reloading["MONOTONIC_USEC"]))
        self.assertLessEqual(int(reloading["MONOTONIC_USEC"]), after * 1e6)
        self.assertEqual(ready()[1]["STATUS"], "1 VRRP instance (1 MASTER)")

        # SIGHUP, refused (the file is gone): READY=1 again, STATUS says why
        os.rename(node.confPath, node.confPath + ".away")
        node.sendSignal(signal.SIGHUP)
        waitFor(lambda: len(ready()) == 3, 10, "READY=1 after the refused reload", [node])
        self.assertEqual(ready()[2]["STATUS"], "Reload refused (the new configuration cannot "
                         "be used); 1 VRRP instance (1 MASTER)")
        self.assertEqual(holders([node.host], VIP4), [1])

        self.assertIn(node.stop(), (0, -signal.SIGTERM), node.logTail())
        self.assertEqual(holders([node.host], VIP4), [])
        waitFor(lambda: any("STOPPING" in m for m in listener.messages()), 5, "STOPPING=1",
                [node])
        sequence = [key for m in listener.messages()
                    for key in ("READY", "RELOADING", "STOPPING") if key in m]
        self.assertEqual(sequence, ["READY", "RELOADING", "READY", "RELOADING", "READY",
                                    "STOPPING"])
        pings = [m for m in listener.messages() if m == {"WATCHDOG": "1"}]
        self.assertGreaterEqual(len(pings), 4)

    def test_pathSocket(self) -> None:
        self.notifySequence(abstract=False)

    def test_abstractSocket(self) -> None:
        self.notifySequence(abstract=True)
