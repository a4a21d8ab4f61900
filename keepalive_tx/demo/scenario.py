# -*- test-case-name: tests.integration.test_demo -*-
"""
The demo's story, told as a timeline: two directors running C{twistd
keepalived} share a VIP and balance two web servers; a web server stops and
comes back (it leaves and rejoins the pool, the alert mails arrive), the
master director stops (the other takes over; the client's outage is
measured) and comes back.  Everything is removed at the end, also after a
failure or a Ctrl-C.

Driver code (a script, not the daemon): it blocks, sleeps and polls.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from keepalive_tx.demo.network import Machine, Network, sweepStale
from keepalive_tx.demo.probe import Gap, longestGap, parsePing
from keepalive_tx.demo.status import fetchStatus, formatTable, instanceState, poolState

__all__ = ["FAST", "NORMAL", "Demo", "DemoFailed", "Pace", "TEMPLATE", "Timeline", "configText"]

VIP = "192.0.2.100"
#: the directors and their VRRP priorities (as in the template)
DIRECTORS = {"lb1": 150, "lb2": 100}
#: ARP settings of a direct-routing real server (the VIP is on its lo)
_DR_SYSCTLS = ("net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
MACHINES = (
    Machine("lb1", "192.0.2.2", "director"),
    Machine("lb2", "192.0.2.3", "director"),
    Machine("web1", "192.0.2.11", "web server", _DR_SYSCTLS, (f"{VIP}/32",)),
    Machine("web2", "192.0.2.12", "web server", _DR_SYSCTLS, (f"{VIP}/32",)),
    Machine("mail", "192.0.2.25", "SMTP server"),
    Machine("client", "192.0.2.50", "client"),
)
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keepalived.conf")
#: the directory that holds the keepalive_tx package (for the daemons' PYTHONPATH)
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TWISTD = "import sys; from twisted.scripts import twistd; sys.argv[0] = 'twistd'; twistd.run()"
#: exit statuses of a daemon stopped by SIGTERM (twistd ends with the signal
#: that stopped it, once it has shut down)
CLEAN_EXIT = (0, -signal.SIGTERM)
#: ping interval of the client during failovers (seconds)
PING_INTERVAL = 0.01


@dataclass(frozen=True)
class Pace:
    """
    Timers of the directors and the pause between steps.

    @ivar advertInt: VRRPv3 C{advert_int} (seconds, hundredths).
    @ivar delayLoop: C{delay_loop} of the health checks.
    @ivar pause: seconds to let the reader follow after a step.
    """

    advertInt: float
    delayLoop: float
    pause: float


NORMAL = Pace(advertInt=0.5, delayLoop=1.0, pause=1.0)
FAST = Pace(advertInt=0.2, delayLoop=0.5, pause=0.0)


def configText(name: str, directory: str, pace: Pace, smtp: str) -> str:
    """
    The configuration file of director C{name}: the definitions
    L{TEMPLATE} uses, then C{include} of it (run with C{-i NAME}).
    """
    return (f"! {name} of the keepalive_tx demo\n"
            f"$RUN={directory}\n"
            f"$ADVERT={pace.advertInt:g}\n"
            f"$DELAY={pace.delayLoop:g}\n"
            f"$SMTP={smtp}\n"
            f"include {TEMPLATE}\n")


class DemoFailed(Exception):
    """
    A step did not happen in time; the message says which.
    """


class Timeline:
    """
    Lines with the seconds since the start: C{[ 3.2s] text}.
    """

    def __init__(self, out: IO[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def say(self, text: str, at: float | None = None) -> None:
        seconds = self.elapsed() if at is None else at - self.start
        self.out.write(f"[{seconds:4.1f}s] {text}\n")
        self.out.flush()

    def detail(self, lines: list[str]) -> None:
        self.out.write("".join(f"         {line}\n" for line in lines))
        self.out.flush()


class _Interrupted(BaseException):
    """
    SIGTERM or SIGHUP: leave the story and clean up, as after Ctrl-C.
    """


class Demo:
    """
    One run of the demo; L{run} returns the exit status.
    """

    def __init__(self, out: IO[str] = sys.stdout, pace: Pace = NORMAL,
                 keep: bool = False) -> None:
        self.timeline = Timeline(out)
        self.pace = pace
        self.keep = keep
        self.net = Network(MACHINES)
        self.names = {m.address: m.name for m in MACHINES}
        self.directory = ""
        self.daemons: dict[str, subprocess.Popen] = {}
        self.webs: dict[str, subprocess.Popen] = {}
        self.mails: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.sink: subprocess.Popen | None = None
        #: subjects of the mails shown that L{showMail} did not wait for yet
        self.unmatched: list[str] = []

    # -- the story ---------------------------------------------------------------

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
        status = 1
        try:
            self.story()
            status = 0
        except DemoFailed as e:
            self.timeline.say(f"FAILED: {e}")
            self._showLogs()
        except (KeyboardInterrupt, _Interrupted):
            self.timeline.say("interrupted")
            status = 130
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            try:
                if not self.cleanUp(status == 0):
                    status = status or 1
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        return status

    def _interrupt(self, signum: int, frame: Any) -> None:
        raise _Interrupted()

    def story(self) -> None:
        say = self.say
        removed = sweepStale()
        if removed:
            say(f"removed {len(removed)} namespaces left by an earlier demo that was killed")
        self.directory = tempfile.mkdtemp(prefix="ktx-demo-")
        self.net.create()
        say(f"network 192.0.2.0/24 in namespaces {self.net.tag}-*: "
            + ", ".join(f"{m.name} .{m.address.rsplit('.', 1)[1]}" for m in MACHINES)
            + f"; VIP {VIP}")
        self.startSink()
        for name in ("web1", "web2"):
            self.startWeb(name)
        for name in DIRECTORS:
            self.startDirector(name)
        say("started: an SMTP server on mail, web servers on web1 and web2, `twistd keepalived` on "
            + " and ".join(f"{n} (priority {p})" for n, p in DIRECTORS.items()))
        say(f"configuration: {TEMPLATE} (lb*.conf in {self.directory} include it)")

        self.waitMaster("lb1", "lb2", timeout=30.0)
        say(f"director lb1 is MASTER for {VIP} (lb2 is BACKUP)")
        self.waitPool(lambda pool: all(alive and checked for alive, checked in pool.values()),
                      "both web servers to be checked healthy")
        say("both web servers are healthy and in the pool:")
        self.showTable("lb1")
        self.showMail([(f"[{n}] Virtualserver [{VIP}]:tcp:80", "UP") for n in DIRECTORS])
        self.ping(once=True)
        say(f"the client reaches {VIP}: answered by {self.answering()}")
        self.pause()

        say("stopping web server web2")
        Network.stop(self.webs.pop("web2"))
        down = self.waitPool(lambda pool: pool.get("192.0.2.12:80", (True, False))[0] is False,
                             "web2 to leave the pool")
        say(f"web2 left the pool on lb1 and lb2 ({down:.1f} s after it stopped):")
        self.showTable("lb1")
        self.showMail([(f"[{n}] Realserver [192.0.2.12]:tcp:80", "DOWN") for n in DIRECTORS])
        self.pause()

        say("starting web server web2 again")
        self.startWeb("web2")
        self.waitPool(lambda pool: pool.get("192.0.2.12:80", (False, False))[0] is True,
                      "web2 to rejoin the pool")
        say("web2 is back in the pool on lb1 and lb2")
        self.showMail([(f"[{n}] Realserver [192.0.2.12]:tcp:80", "UP") for n in DIRECTORS])
        self.pause()

        say("stopping director lb1 (SIGTERM, as `systemctl stop` does)")
        stopped = self.daemons.pop("lb1")
        gap, takeover = self.failover(lambda: stopped.send_signal(signal.SIGTERM), "lb2", "lb1")
        exit = stopped.wait(15.0)
        if exit not in CLEAN_EXIT:
            raise DemoFailed(f"the daemon on lb1 exited with status {exit} after SIGTERM")
        say(f"director lb2 is MASTER for {VIP}, {takeover:.2f} s after lb1 was stopped")
        self.sayGap("failover", gap)
        self.pause()

        say("starting director lb1 again")
        gap, takeover = self.failover(lambda: self.startDirector("lb1"), "lb1", "lb2",
                                      timeout=30.0)
        say(f"director lb1 is MASTER again for {VIP} (priority 150 over 100; lb2 is BACKUP), "
            f"{takeover:.1f} s after it was started")
        self.sayGap("return", gap)
        self.showMail([(f"[lb1] Virtualserver [{VIP}]:tcp:80", "UP")])

    # -- machines --------------------------------------------------------------

    def _log(self, name: str) -> IO[bytes]:
        return open(os.path.join(self.directory, f"{name}.log"), "ab")

    def startSink(self) -> None:
        address = f"{self.net.machines['mail'].address}:25"
        with self._log("mail") as log:
            self.sink = self.net.spawn(
                "mail", [sys.executable, "-m", "keepalive_tx.demo", "--smtp-sink", address],
                stdout=subprocess.PIPE, stderr=log, cwd=_PACKAGE_ROOT, text=True,
                env=self._environ())
        ready: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._readMail, args=(self.sink.stdout, ready), daemon=True).start()
        try:
            first = ready.get(timeout=20.0)
        except queue.Empty:
            raise DemoFailed("the SMTP server did not start within 20 s") from None
        if "listening" not in first:
            raise DemoFailed(f"the SMTP server did not start: {first}")

    def _readMail(self, stream: IO[str], ready: queue.Queue) -> None:
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "subject" in record:
                self.mails.put((time.monotonic(), record))
            else:
                ready.put(record)

    def startWeb(self, name: str) -> None:
        root = os.path.join(self.directory, name)
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(f"<h1>{name}</h1>\n")
        with self._log(name) as log:
            self.webs[name] = self.net.spawn(
                name, [sys.executable, "-m", "http.server", "80", "--directory", root],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _environ(self) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH")
        return dict(os.environ, TMPDIR=self.directory,
                    PYTHONPATH=_PACKAGE_ROOT + (os.pathsep + path if path else ""))

    def directorConfig(self, name: str) -> str:
        path = os.path.join(self.directory, f"{name}.conf")
        with open(path, "w") as f:
            f.write(configText(name, self.directory, self.pace, self.net.machines["mail"].address))
        return path

    def startDirector(self, name: str) -> None:
        config = self.directorConfig(name)
        argv = [sys.executable, "-c", _TWISTD, "-n", "--pidfile",
                os.path.join(self.directory, f"{name}.pid"), "keepalived", "-i", name, "-c", config]
        with self._log(name) as log:
            self.daemons[name] = self.net.spawn(name, argv, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, cwd=self.directory,
                                                env=self._environ())

    # -- observing -------------------------------------------------------------

    def status(self, director: str) -> dict[str, Any] | None:
        return fetchStatus(os.path.join(self.directory, f"{director}.status"))

    def _checkDaemons(self) -> None:
        for name, process in self.daemons.items():
            if process.poll() is not None:
                raise DemoFailed(f"the daemon on {name} exited with status {process.returncode}")

    def waitUntil(self, predicate: Callable[[], bool], what: str, timeout: float = 15.0,
                  period: float = 0.02) -> float:
        """
        Poll C{predicate}; return the seconds it took.
        """
        start = time.monotonic()
        while not predicate():
            self._checkDaemons()
            if time.monotonic() - start > timeout:
                raise DemoFailed(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(period)
        return time.monotonic() - start

    def isMaster(self, master: str, backup: str) -> bool:
        """
        Only C{master} holds the VIP and says it is MASTER; C{backup}, if
        running, says it is BACKUP.
        """
        if [n for n in DIRECTORS if VIP in self.net.addresses(n)] != [master]:
            return False
        if instanceState(self.status(master)) != "MASTER":
            return False
        return backup not in self.daemons or instanceState(self.status(backup)) == "BACKUP"

    def waitMaster(self, master: str, backup: str, timeout: float = 15.0) -> float:
        return self.waitUntil(lambda: self.isMaster(master, backup),
                              f"{master} to be MASTER with {VIP} and {backup} BACKUP", timeout)

    def waitPool(self, predicate: Callable[[dict[str, tuple[bool, bool]]], bool],
                 what: str, timeout: float = 15.0) -> float:
        def both() -> bool:
            pools = [poolState(self.status(n)) for n in DIRECTORS]
            return all(pool and predicate(pool) for pool in pools)

        return self.waitUntil(both, what, timeout, period=0.05)

    def showTable(self, director: str) -> None:
        status = self.status(director)
        if status is None:
            raise DemoFailed(f"the status API of {director} does not answer")
        self.timeline.detail(formatTable(director, status, self.names))

    def say(self, text: str) -> None:
        """
        A line of the timeline, after the mails received before it.
        """
        self.flushMail()
        self.timeline.say(text)

    def flushMail(self) -> None:
        while True:
            try:
                at, mail = self.mails.get_nowait()
            except queue.Empty:
                return
            self.timeline.say(f"mail to {mail['to']}: {mail['subject']}  {mail['body']}", at)
            self.unmatched.append(mail["subject"])

    def showMail(self, expected: list[tuple[str, str]], timeout: float = 10.0) -> None:
        """
        Show the mails received so far, and wait for (and show) one whose
        subject starts with C{prefix} and ends with C{- state} for each
        C{(prefix, state)} of C{expected}.
        """
        deadline = time.monotonic() + timeout
        for prefix, state in expected:
            while True:
                self.flushMail()
                match = [s for s in self.unmatched
                         if s.startswith(prefix) and s.endswith(f"- {state}")]
                if match:
                    self.unmatched.remove(match[0])
                    break
                if time.monotonic() > deadline:
                    raise DemoFailed(f"no mail '{prefix} ... - {state}' within {timeout:g} s")
                time.sleep(0.05)

    def answering(self) -> str:
        mac = self.net.neighbour("client", VIP)
        return self.net.byMac(mac) or f"unknown ({mac})"

    def ping(self, once: bool = False) -> subprocess.Popen:
        """
        Ping the VIP from the client: once (and fail if unanswered), or
        every L{PING_INTERVAL} until stopped (see L{stopPing}).
        """
        if once:
            result = subprocess.run(self.net.argv("client", "ping", "-n", "-c", "1", "-W", "2", VIP),
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise DemoFailed(f"the client cannot ping {VIP}: {result.stdout.strip()}")
            return None  # type: ignore[return-value]
        self._pings = getattr(self, "_pings", 0) + 1
        out = open(os.path.join(self.directory, f"ping-{self._pings}.txt"), "w")
        with out:
            return self.net.spawn("client", ["ping", "-n", "-D", "-i", f"{PING_INTERVAL:g}", VIP],
                                  stdout=out, stderr=subprocess.STDOUT)

    def stopPing(self, process: subprocess.Popen, after: float) -> Gap | None:
        Network.stop(process, signal.SIGINT)
        self.net.processes.remove(process)
        with open(os.path.join(self.directory, f"ping-{self._pings}.txt")) as f:
            return longestGap(parsePing(f), after)

    def failover(self, act: Callable[[], object], master: str, backup: str,
                 timeout: float = 15.0) -> tuple[Gap | None, float]:
        """
        Do C{act} while the client pings the VIP; wait until C{master}
        holds the VIP; return the client's longest gap and how long the
        takeover took.
        """
        pinger = self.ping()
        time.sleep(0.3)
        startWall, start = time.time(), time.monotonic()
        act()
        self.waitUntil(lambda: self.isMaster(master, backup),
                       f"{master} to be MASTER with {VIP}", timeout)
        took = time.monotonic() - start
        time.sleep(0.3)
        return self.stopPing(pinger, startWall), took

    def sayGap(self, what: str, gap: Gap | None) -> None:
        who = self.answering()
        if gap is None:
            raise DemoFailed(f"the client's pings of {VIP} were not answered around the {what}")
        if gap.lost == 0:
            self.say(f"{what} seen by the client: no ping of {VIP} lost "
                              f"(every {PING_INTERVAL * 1000:g} ms); now answered by {who}")
        else:
            self.say(f"{what} seen by the client: no answer from {VIP} for "
                              f"{gap.seconds:.2f} s ({gap.lost} pings lost); now answered by {who}")

    def pause(self) -> None:
        if self.pace.pause:
            time.sleep(self.pace.pause)

    # -- the end ---------------------------------------------------------------

    def _showLogs(self, lines: int = 15) -> None:
        if not self.directory:
            return
        for name in DIRECTORS:
            path = os.path.join(self.directory, f"{name}.log")
            try:
                with open(path, errors="replace") as f:
                    tail = f.read().splitlines()[-lines:]
            except OSError:
                continue
            self.timeline.detail([f"---- last lines of {path} ----", *tail])

    def cleanUp(self, succeeded: bool) -> bool:
        """
        Stop the daemons, then everything else; delete the namespaces and
        (unless asked to keep it, or after a failure) the directory.

        @return: whether the daemons stopped cleanly and nothing was left.
        """
        say = self.say
        say("cleaning up: stopping the directors, the web servers and the SMTP server")
        clean = True
        for name, process in self.daemons.items():
            status = Network.stop(process, timeout=15.0)
            if status not in CLEAN_EXIT:
                say(f"the daemon on {name} exited with status {status}")
                clean = False
        self.net.destroy()
        left = self.net.leftovers()
        if left:
            say(f"could not remove namespaces: {' '.join(left)}")
            clean = False
        if self.directory and (self.keep or not (succeeded and clean)):
            say(f"logs and configurations kept in {self.directory}")
        elif self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        if clean:
            say(f"removed every namespace ({len(MACHINES) + 1}) and process; "
                f"done in {self.timeline.elapsed():.1f} s")
        return clean
