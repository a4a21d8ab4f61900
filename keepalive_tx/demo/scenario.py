# -*- test-case-name: tests.integration.test_demo,tests.unit.test_demo -*-
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

import queue
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from keepalive_tx.demo.cast import (
    CLEAN_EXIT,
    DIRECTORS,
    MACHINES,
    NORMAL,
    TEMPLATE,
    VIP,
    Cast,
    DemoFailed,
    Pace,
    makeDirectory,
    sweepStaleDirectories,
)
from keepalive_tx.demo.network import Network, sweepStale
from keepalive_tx.demo.probe import ReplyGap
from keepalive_tx.demo.status import formatTable, instanceState, poolState

__all__ = ["Demo", "Timeline"]

WEB2 = "192.0.2.12:80"


class Timeline:
    """
    Lines with the seconds since the start: C{[ 3.2s] text}.
    """

    def __init__(self, out: IO[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.out: IO[str] | None = out
        self.clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def _write(self, text: str) -> None:
        # output that cannot be written (a closed pipe: `... | head`) is
        # dropped, so that it never keeps the demo from cleaning up
        if self.out is None:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            self.out = None

    def say(self, text: str, at: float | None = None) -> None:
        seconds = self.elapsed() if at is None else at - self.start
        self._write(f"[{seconds:4.1f}s] {text}\n")

    def detail(self, lines: list[str]) -> None:
        self._write("".join(f"         {line}\n" for line in lines))


class _Interrupted(BaseException):
    """
    SIGTERM or SIGHUP: leave the story and clean up, as after Ctrl-C.
    """


def _interrupt(signum: int, frame: Any) -> None:
    raise _Interrupted()


class Demo:
    """
    One run of the demo; L{run} returns the exit status (0 done, 1 failed,
    130 interrupted).
    """

    def __init__(self, out: IO[str] = sys.stdout, pace: Pace = NORMAL,
                 keep: bool = False) -> None:
        self.timeline = Timeline(out)
        self.pace = pace
        self.keep = keep
        self.net = Network(MACHINES)
        self.names = {m.address: m.name for m in MACHINES}
        self.cast: Cast | None = None
        #: subjects of the mails shown that L{showMail} did not wait for yet
        self.unmatched: list[str] = []

    def run(self) -> int:
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
        status, failed = 1, False
        try:
            self.story()
            status = 0
        except DemoFailed as e:
            failed = True
            self.say(f"FAILED: {e}")
            if self.cast is not None:
                for name in DIRECTORS:
                    self.timeline.detail([f"---- last lines of {self.cast.path(name + '.log')}",
                                          *self.cast.logTail(name)])
        except (KeyboardInterrupt, _Interrupted):
            self.say("interrupted")
            status = 130
        except Exception as e:
            failed = True
            self.say(f"FAILED: {e!r}")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            try:
                if not self.cleanUp(keepFiles=self.keep or failed):
                    status = status or 1
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        return status

    # -- the story ---------------------------------------------------------------

    def story(self) -> None:
        say = self.say
        removed = sweepStale()
        if removed:
            sweepStaleDirectories(removed)
            say(f"removed what a demo that was killed left: "
                f"{sum(map(len, removed.values()))} namespaces and their processes")
        cast = self.cast = Cast(self.net, makeDirectory(), self.pace)
        self.net.create()
        say(f"network 192.0.2.0/24 in namespaces {self.net.tag}-*: "
            + ", ".join(f"{m.name} .{m.address.rsplit('.', 1)[1]}" for m in MACHINES)
            + f"; VIP {VIP}")
        cast.startMail()
        for name in ("web1", "web2"):
            cast.startWeb(name)
        for name in DIRECTORS:
            cast.startDirector(name)
        say("started: an SMTP server on mail, web servers on web1 and web2, `twistd keepalived` on "
            + " and ".join(f"{n} (priority {p})" for n, p in DIRECTORS.items()))
        say(f"configuration: {TEMPLATE} (lb*.conf in {cast.directory} include it)")

        self.waitMaster("lb1", "lb2", timeout=30.0)
        say(f"director lb1 is MASTER for {VIP} (lb2 is BACKUP)")
        self.waitPool(lambda pool: all(alive and checked for alive, checked in pool.values()),
                      "both web servers to be checked healthy")
        say("both web servers are healthy and in the pool:")
        self.showTable("lb1")
        self.showMail([(f"[{n}] Virtualserver [{VIP}]:tcp:80", "UP") for n in DIRECTORS])
        cast.pingOnce()
        say(f"the client reaches {VIP}: answered by {cast.answering()}")
        self.showRequests("lb1")
        self.pause()

        say("stopping web server web2")
        cast.stopWeb("web2")
        down = self.waitPool(lambda pool: pool.get(WEB2, (True, False))[0] is False,
                             "web2 to leave the pool")
        say(f"web2 left the pool on lb1 and lb2 ({down:.1f} s after it stopped):")
        self.showTable("lb1")
        self.showMail([(f"[{n}] Realserver [192.0.2.12]:tcp:80", "DOWN") for n in DIRECTORS])
        self.pause()

        say("starting web server web2 again")
        cast.startWeb("web2")
        self.waitPool(lambda pool: pool.get(WEB2, (False, False))[0] is True,
                      "web2 to rejoin the pool")
        say("web2 is back in the pool on lb1 and lb2")
        self.showMail([(f"[{n}] Realserver [192.0.2.12]:tcp:80", "UP") for n in DIRECTORS])
        self.pause()

        say("stopping director lb1 (SIGTERM, as `systemctl stop` does)")
        stopped = cast.daemons.pop("lb1")
        gap, takeover = self.failover(lambda: stopped.send_signal(signal.SIGTERM), "lb2", "lb1")
        exit = stopped.wait(15.0)
        if exit not in CLEAN_EXIT:
            raise DemoFailed(f"the daemon on lb1 exited with status {exit} after SIGTERM")
        say(f"director lb2 is MASTER for {VIP}, {takeover:.2f} s after lb1 was stopped")
        self.sayGap("failover", gap)
        self.showRequests("lb2")
        self.pause()

        say("starting director lb1 again")
        gap, takeover = self.failover(lambda: cast.startDirector("lb1"), "lb1", "lb2",
                                      timeout=30.0)
        say(f"director lb1 is MASTER again for {VIP} (priority 150 over 100; lb2 is BACKUP), "
            f"{takeover:.1f} s after it was started")
        self.sayGap("return", gap)
        self.showMail([(f"[lb1] Virtualserver [{VIP}]:tcp:80", "UP")])

    # -- waiting -----------------------------------------------------------------

    def waitUntil(self, predicate: Callable[[], bool], what: str, timeout: float = 15.0,
                  period: float = 0.02) -> float:
        """
        Poll C{predicate} (a director that exits fails the demo); return
        the seconds it took.
        """
        assert self.cast is not None
        start = time.monotonic()
        while not predicate():
            self.cast.checkDaemons()
            if time.monotonic() - start > timeout:
                raise DemoFailed(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(period)
        return time.monotonic() - start

    def isMaster(self, master: str, backup: str) -> bool:
        """
        Only C{master} holds the VIP and says it is MASTER; C{backup}, if
        running, says it is BACKUP.
        """
        cast = self.cast
        assert cast is not None
        if [n for n in DIRECTORS if VIP in self.net.addresses(n)] != [master]:
            return False
        if instanceState(cast.status(master)) != "MASTER":
            return False
        return backup not in cast.daemons or instanceState(cast.status(backup)) == "BACKUP"

    def waitMaster(self, master: str, backup: str, timeout: float = 15.0) -> float:
        return self.waitUntil(lambda: self.isMaster(master, backup),
                              f"{master} to be MASTER with {VIP} and {backup} BACKUP", timeout)

    def waitPool(self, predicate: Callable[[dict[str, tuple[bool, bool]]], bool],
                 what: str, timeout: float = 15.0) -> float:
        """
        Wait until C{predicate} holds for the pool of both directors.
        """
        cast = self.cast
        assert cast is not None

        def both() -> bool:
            pools = [poolState(cast.status(n)) for n in DIRECTORS]
            return all(pool and predicate(pool) for pool in pools)

        return self.waitUntil(both, what, timeout, period=0.05)

    def failover(self, act: Callable[[], object], master: str, backup: str,
                 timeout: float = 15.0) -> tuple[ReplyGap | None, float]:
        """
        Do C{act} while the client pings the VIP; wait until C{master}
        holds the VIP; return the client's longest gap and how long the
        takeover took.
        """
        assert self.cast is not None
        pinger = self.cast.startPinger()
        time.sleep(0.1)
        startWall, start = time.time(), time.monotonic()
        act()
        self.waitUntil(lambda: self.isMaster(master, backup),
                       f"{master} to be MASTER with {VIP}", timeout)
        took = time.monotonic() - start
        return self.cast.stopPinger(pinger, startWall), took

    def pause(self) -> None:
        if self.pace.pause:
            time.sleep(self.pace.pause)

    # -- telling -----------------------------------------------------------------

    def say(self, text: str) -> None:
        """
        A line of the timeline, after the mails received before it.
        """
        self.flushMail()
        self.timeline.say(text)

    def flushMail(self) -> None:
        if self.cast is None:
            return
        while True:
            try:
                at, mail = self.cast.mails.get_nowait()
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

    def showTable(self, director: str) -> None:
        """
        The IPVS table of C{director} (the kernel's, or the daemon's dry
        run) with the health of each real server.
        """
        assert self.cast is not None
        status = self.cast.status(director)
        if status is None:
            raise DemoFailed(f"the status API of {director} does not answer")
        ipvs = (status.get("lvs") or {}).get("ipvs") or {}
        kernel = None if ipvs.get("dry_run", True) else self.cast.ipvsadm(director)
        self.timeline.detail(formatTable(director, status, self.names, kernel))

    def showRequests(self, director: str) -> None:
        """
        Where the kernel has IPVS, say which web servers answered the
        client's HTTP requests to the VIP (balanced by C{director}).
        """
        assert self.cast is not None
        ipvs = ((self.cast.status(director) or {}).get("lvs") or {}).get("ipvs") or {}
        if ipvs.get("dry_run", True):
            return
        self.say(f"the client's requests to http://{VIP}/, balanced by {director}'s IPVS, "
                 f"were answered by: {' '.join(self.cast.requests())}")

    def sayGap(self, what: str, gap: ReplyGap | None) -> None:
        assert self.cast is not None
        if gap is None:
            raise DemoFailed(f"the client's pings of {VIP} were not answered around the {what}")
        who = self.cast.answering()
        if gap.lost == 0:
            self.say(f"{what} seen by the client: no ping of {VIP} lost "
                     f"(one every {gap.interval * 1000:.0f} ms); now answered by {who}")
        else:
            self.say(f"{what} seen by the client: no answer from {VIP} for "
                     f"{gap.seconds:.2f} s ({gap.lost} pings lost); now answered by {who}")

    # -- the end ---------------------------------------------------------------

    def cleanUp(self, keepFiles: bool) -> bool:
        """
        Stop the directors, then everything else; delete the namespaces and
        the run's directory (unless C{keepFiles}, or a director did not stop
        cleanly: its log says why).

        @return: whether the directors stopped cleanly and nothing was left.
        """
        say = self.say
        say("cleaning up: stopping the directors, the web servers and the SMTP server")
        clean = True
        count = len(self.net.created)
        try:
            daemons: dict[str, subprocess.Popen] = self.cast.daemons if self.cast else {}
            for name, process in daemons.items():
                status = Network.stop(process, timeout=15.0)
                if status not in CLEAN_EXIT:
                    say(f"the daemon on {name} exited with status {status}")
                    clean = False
        finally:
            self.net.destroy()
        left = self.net.leftovers()
        if left:
            say(f"could not remove namespaces: {' '.join(left)}")
            clean = False
        if self.cast is not None and (keepFiles or not clean):
            say(f"logs and configurations kept in {self.cast.directory}")
        elif self.cast is not None:
            shutil.rmtree(self.cast.directory, ignore_errors=True)
        if clean:
            say(f"removed every namespace ({count}) and process; "
                f"done in {self.timeline.elapsed():.1f} s")
        return clean
