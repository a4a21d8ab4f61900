"""
Our daemon started by forking a warm interpreter instead of a fresh one.

A fresh C{twistd keepalived} spends ~0.5 s of CPU importing Twisted and
keepalive_tx before it reads its configuration (~0.1 s after that); the
suite starts it well over a hundred times, several at once on a loaded
machine, where each start also takes seconds of wall time.  The fork
server is a child of the test process that has imported what every
daemon imports (not the reactor: twistd installs it); L{spawnTwistd} asks
it for a daemon, it forks, and the child enters the host's network
namespace as C{ip netns exec} does (its own mount namespace, C{/sys} of
that network namespace), takes the log file as standard output and
error, the environment, the working directory and C{sys.argv}, and runs
C{twistd}'s C{run()} -- what C{python -c "...twistd import run; run()"}
runs -- and exits as that interpreter would.

The fork server reaps its children and reports their exit statuses; the
test process signals them through a pidfd (never a recycled pid).
L{ForkedProcess} offers what the tests use of C{subprocess.Popen}.

One fork server per test process (trial worker), started at first use;
it exits when the test process does (end of file on its socket).  Test
code may block; library code never imports this module.

Server: C{python -m tests.integration.forkserver FD} (FD: its end of the
socket pair).
"""

from __future__ import annotations

import array
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

#: what every daemon imports before it reads its configuration
PRELOAD = (
    "twisted.scripts.twistd",
    "twisted.scripts._twistd_unix",
    "twisted.application.app",
    "twisted.internet.epollreactor",
    "twisted.internet.tcp",
    "twisted.internet.udp",
    "twisted.internet.unix",
    "twisted.plugins.keepalive_tx_plugin",
    "keepalive_tx.tap",
    "keepalive_tx.service",
    "keepalive_tx.config",
    "keepalive_tx.vrrp.service",
    "keepalive_tx.net.firewall",
)

_CLONE_NEWNS, _CLONE_NEWNET = 0x00020000, 0x40000000
_MS_RDONLY, _MS_REC, _MS_SLAVE = 0x1, 0x4000, 0x80000
_MNT_DETACH = 2
_MAX_FDS = 1


# -- server (its own process) ---------------------------------------------------


def _enterNamespace(name: str) -> None:
    """
    What C{ip netns exec NAME} does before it runs its command: join the
    network namespace, then in a mount namespace of our own (mounts do not
    propagate back) mount the C{/sys} that describes it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
    finally:
        os.close(fd)
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"", b"/", b"none", _MS_SLAVE | _MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rslave /")
    flags = 0
    if libc.umount2(b"/sys", _MNT_DETACH) != 0 and os.statvfs("/sys").f_flag & os.ST_RDONLY:
        flags = _MS_RDONLY
    if libc.mount(name.encode(), b"/sys", b"sysfs", flags, None) != 0:
        raise OSError(ctypes.get_errno(), "mount of /sys")


def _child(request: dict, out: int) -> Callable[[], None]:
    """
    In the forked child: become the daemon's process; return what runs it.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if request.get("netns"):
        _enterNamespace(request["netns"])
    os.chdir(request["cwd"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["twistd", *request["args"]]

    def runTwistd() -> None:
        from twisted.scripts.twistd import run

        run()

    return runTwistd


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def serve(sock: socket.socket) -> Callable[[], None] | None:
    """
    Answer requests until the test process goes away (return C{None}); in
    a forked child, return what runs the daemon.
    """
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.05)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            _send(sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if not ready:
            continue
        fds = array.array("i")
        data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_LEN(_MAX_FDS * fds.itemsize))
        if not data:
            return None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            sock.close()
            return _child(request, fds[0])
        for fd in fds:
            os.close(fd)
        children.add(pid)
        _send(sock, {"pid": pid})


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[0]))
    for name in PRELOAD:
        importlib.import_module(name)
    _send(sock, {"ready": os.getpid()})
    daemon = serve(sock)
    if daemon is not None:
        daemon()


# -- client (the test process) --------------------------------------------------


class _Client:
    """
    The test process's end: one request at a time (a lock: tests may start
    daemons from threads), exit statuses collected as they come.
    """

    def __init__(self) -> None:
        from tests.integration.vrrpnode import ROOT, checkoutEnv

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.forkserver", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), cwd=ROOT, env=checkoutEnv(), stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.pending: list[dict] = []
        self._expect("ready", 60)

    def _read(self, timeout: float) -> bool:
        """
        Read what the server sent within C{timeout}; C{False} if nothing.
        """
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return False
        data = self.sock.recv(1 << 16)
        if not data:
            raise AssertionError("the fork server exited")
        for line in data.splitlines():
            message = json.loads(line)
            if "exit" in message:
                self.statuses[message["exit"]] = message["code"]
            else:
                self.pending.append(message)
        return True

    def _expect(self, key: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.pending:
                if key in message:
                    self.pending.remove(message)
                    return message[key]
            if not self._read(deadline - time.monotonic()) and time.monotonic() > deadline:
                raise AssertionError(f"the fork server did not answer ({key})")

    def spawn(self, args: Sequence[str], env: Mapping[str, str], cwd: str, netns: str | None,
              out: int) -> int:
        request = {"args": list(args), "env": dict(env), "cwd": cwd, "netns": netns}
        with self.lock:
            self.sock.sendmsg([json.dumps(request).encode()],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [out]))])
            return self._expect("pid", 30)

    def status(self, pid: int, timeout: float) -> int | None:
        """
        The exit code of C{pid} (C{-N}: killed by signal N), waiting up to
        C{timeout} seconds; C{None} if it is still running.
        """
        deadline = time.monotonic() + timeout
        while True:
            # the lock for 50 ms at most: other threads start and wait too
            with self.lock:
                if pid in self.statuses:
                    return self.statuses.pop(pid)
                got = self._read(min(0.05, deadline - time.monotonic()))
            if not got and time.monotonic() >= deadline:
                return None


_client: _Client | None = None
_clientLock = threading.Lock()


def _server() -> _Client:
    global _client
    with _clientLock:
        if _client is None or _client.process.poll() is not None:
            _client = _Client()
        return _client


class ForkedProcess:
    """
    A daemon forked by the fork server: what the tests use of
    C{subprocess.Popen}.
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: str,
                 netns: str | None, stdout: int) -> None:
        self.args = ["twistd", *args]
        self.returncode: int | None = None
        self._server = _server()
        self.pid = self._server.spawn(args, env, cwd, netns, stdout)
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except ProcessLookupError:  # already gone (and reaped): its status is on its way
            self._pidfd = None

    def poll(self) -> int | None:
        return self.wait(0, raiseOnTimeout=False)

    def wait(self, timeout: float | None = None, *, raiseOnTimeout: bool = True) -> int | None:
        if self.returncode is None:
            code = self._server.status(self.pid, 1e9 if timeout is None else timeout)
            if code is not None:
                self.returncode = code
                if self._pidfd is not None:
                    os.close(self._pidfd)
                    self._pidfd = None
            elif raiseOnTimeout:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None and self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def spawnTwistd(args: Sequence[str], *, env: Mapping[str, str], cwd: str, netns: str | None,
                stdout) -> ForkedProcess:
    """
    Start C{twistd ARGS} (this checkout's daemon) in namespace C{netns},
    its output to file C{stdout}.
    """
    return ForkedProcess(args, env, cwd, netns, stdout.fileno())


if __name__ == "__main__":
    main(sys.argv[1:])
