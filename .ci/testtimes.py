"""
Where a trial run spends its time: the slowest tests and modules, and the
CPU time of the run, so that CI's budget (4 minutes for C{.ci/run}) can be
kept.

Usage::

    python3 .ci/testtimes.py [--top N] [--save FILE] -- python3 -m twisted.trial -j6 tests
    python3 .ci/testtimes.py [--top N] --report FILE

The first form runs the trial command as it is (its output passes through,
its exit status is returned; C{PYTHONUNBUFFERED=1} is added to its
environment so that its lines arrive as they are written) and watches it
from outside, through what trial prints anyway: a test has ended when the
tree reporter prints its result line (C{    test_name ... [OK]}, under its
module and class lines), and started when the result that freed its worker
came (see L{Run.result}).  The CPU time of every process the command
started, those that exited included (daemons, C{ip}, UML guests), is
sampled from C{/proc} every 0.5 s: in total, by trial process, and for each
test, its worker's during the test.  The report goes to standard error
after the run; C{--save} keeps the measurements as JSON for C{--report}.

The report: the run's wall and CPU time, the N slowest tests (wall time and
when they started: a long test that starts late is what makes a run
long), the N modules with the most test time and CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict

_TICK = os.sysconf("SC_CLK_TCK")
_RESULT = re.compile(r"^    (\S+) \.\.\. +\[([A-Z!?]+)\]\s*$")


def _stat(pid: int) -> tuple[int, float, float] | None:
    """
    C{(ppid, own CPU seconds, reaped children's CPU seconds)} of C{pid}.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is proc(5)'s field 3 (state): ppid is 4, utime..cstime 14-17
    return (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK,
            (int(fields[13]) + int(fields[14])) / _TICK)


def _isRunDirectory(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, name)) for name in ("_trial_marker", "test.log"))


class CpuSampler:
    """
    The CPU time used by the processes under C{root}, exited ones included:
    a process's own time while it runs; once it has exited, what its parent
    reaped (less what was already counted), or, when its parent died first,
    what it had used at the last sample.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.last: dict[int, tuple[float, float]] = {}
        self.parent: dict[int, int] = {}
        self.credit: dict[int, float] = defaultdict(float)
        self.total = 0.0
        #: CPU by child of the root (trial's workers under -j)
        self.byChild: dict[int, float] = defaultdict(float)
        #: worker number (its directory in the run's) by pid
        self.workers: dict[int, int] = {}
        #: (time, {worker number: its CPU so far}) at every sample
        self.series: list[tuple[float, dict[int, float]]] = []
        self.runDirectory: str | None = None

    def sample(self, now: float) -> None:
        stats = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                found = _stat(int(name))
                if found is not None:
                    stats[int(name)] = found
        children: dict[int, list[int]] = defaultdict(list)
        for pid, (ppid, _, _) in stats.items():
            children[ppid].append(pid)
        # branch: the child of the root each process descends from (the root: itself)
        tree, branch = set(), {}
        stack = [(self.root, self.root)] if self.root in stats else []
        while stack:
            pid, top = stack.pop()
            tree.add(pid)
            branch[pid] = top
            stack += [(c, c if pid == self.root else top) for c in children[pid]]
        for pid in [self.root, *children[self.root]]:
            if pid in self.workers or pid not in tree:
                continue
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            # a single trial process works in the run's directory, -j's
            # workers in a numbered directory inside it
            if _isRunDirectory(cwd):
                self.runDirectory, self.workers[pid] = cwd, 0
            elif os.path.basename(cwd).isdigit() and os.path.exists(
                    os.path.join(os.path.dirname(cwd), "_trial_marker")):
                self.runDirectory, self.workers[pid] = os.path.dirname(cwd), int(os.path.basename(cwd))
        for pid in list(self.last):
            if pid not in tree:  # exited: its parent's reaped time will include it
                own, reaped = self.last.pop(pid)
                ppid = self.parent.pop(pid, None)
                if ppid in tree:
                    self.credit[ppid] += own + reaped
        for pid in tree:
            ppid, own, reaped = stats[pid]
            before = self.last.get(pid)
            self.last[pid], self.parent[pid] = (own, reaped), ppid
            delta = own + reaped if before is None else own - before[0] + reaped - before[1]
            if before is not None and self.credit.get(pid):
                used = min(self.credit[pid], max(0.0, reaped - before[1]))
                delta -= used
                self.credit[pid] -= used
            if delta > 0:
                self.total += delta
                self.byChild[branch[pid]] += delta
        self.series.append((now, {n: self.total if pid == self.root else self.byChild[pid]
                                  for pid, n in self.workers.items()}))

    def cpu(self, worker: int, start: float, end: float) -> float | None:
        """
        CPU used by C{worker} (and its processes) from C{start} to C{end}
        (seconds since the run started), from the nearest samples.
        """
        def at(t: float) -> float | None:
            best = min(self.series, key=lambda s: abs(s[0] - t), default=None)
            return None if best is None else best[1].get(worker, 0.0)
        a, b = at(start), at(end)
        return None if a is None or b is None else max(0.0, b - a)


class Run:
    """
    One watched trial command.
    """

    def __init__(self, command: list[str]) -> None:
        self.jobs = _jobs(command)
        self.names = _testNames(command)
        self.started = time.monotonic()
        self.child = subprocess.Popen(command, stdout=subprocess.PIPE,
                                      env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.sampler = CpuSampler(self.child.pid)
        #: when trial said "Running N tests."
        self.begun: float | None = None
        #: (test id, when its result line came, its status), in that order
        self.ends: list[tuple[str, float, str]] = []

    def now(self) -> float:
        return time.monotonic() - self.started

    def readOutput(self) -> None:
        """
        Pass trial's output through, noting when each test's result line
        comes (the thread's job while the command runs).
        """
        module = testClass = ""
        assert self.child.stdout is not None
        for raw in self.child.stdout:
            sys.stdout.buffer.write(raw)
            sys.stdout.buffer.flush()
            line = raw.decode(errors="replace").rstrip("\n")
            if self.begun is None and line.startswith("Running ") and line.endswith(" tests."):
                self.begun = self.now()
            elif line and not line.startswith(" ") and "." in line and " " not in line:
                module = line
            elif line.startswith("  ") and not line.startswith("   ") and " " not in line.strip():
                testClass = line.strip()
            else:
                found = _RESULT.match(line)
                if found and module:
                    self.ends.append((f"{module}.{testClass}.{found.group(1)}", self.now(),
                                      found.group(2)))

    def watch(self) -> int:
        reader = threading.Thread(target=self.readOutput, daemon=True)
        reader.start()
        while self.child.poll() is None:
            self.sampler.sample(self.now())
            time.sleep(0.5)
        reader.join(10)
        return self.child.returncode

    def result(self) -> dict:
        """
        Each test's start, wall and CPU time.

        Trial hands the tests out in the suite's order (modules, classes,
        methods, each sorted by name), the first C{-j} to the workers in
        their order, then each to the worker that has just reported a
        result: the K-th test starts when the (K-j)-th result comes, on that
        result's worker.  (Under C{-j}, a worker's log lines reach the
        manager only when the test returns control to its reactor: the
        start lines in C{test.log} cannot tell when a blocking test began.)
        """
        order = sorted(self.ends, key=lambda e: _suiteKey(e[0], self.names))
        begun = self.begun or 0.0
        worker: dict[str, int] = {}
        tests = []
        for k, (test, end, status) in enumerate(order):
            if k < self.jobs:
                start, worker[test] = begun, k
            else:
                previous, start, _ = self.ends[k - self.jobs]
                worker[test] = worker.get(previous, -1)
            cpu = self.sampler.cpu(worker[test], start, end)
            tests.append({"id": test, "start": round(start, 1), "wall": round(max(0.0, end - start), 2),
                          "cpu": None if cpu is None else round(cpu, 2), "status": status})
        return {"wall": round(self.now(), 1), "cpu": round(self.sampler.total, 1), "jobs": self.jobs,
                "cpuByProcess": sorted((round(c, 1) for c in self.sampler.byChild.values()), reverse=True),
                "tests": tests}


def _jobs(command: list[str]) -> int:
    """
    The C{-j}/C{--jobs} of a trial command line (1 without).
    """
    for i, arg in enumerate(command):
        for prefix in ("-j", "--jobs="):
            if arg.startswith(prefix) and arg[len(prefix):].isdigit():
                return int(arg[len(prefix):])
        if arg in ("-j", "--jobs") and i + 1 < len(command) and command[i + 1].isdigit():
            return int(command[i + 1])
    return 1


def _testNames(command: list[str]) -> list[str]:
    """
    The test names (dotted, or paths made dotted) of a trial command line,
    in its order: the words after C{twisted.trial} that look like one.
    """
    words = command[command.index("twisted.trial") + 1:] if "twisted.trial" in command else command
    names = []
    for word in words:
        if word.startswith("-") or word.isdigit():
            continue
        names.append(word.removesuffix(".py").strip("/").replace("/", "."))
    return names


def _suiteKey(testId: str, names: list[str]) -> tuple[int, str, str, str]:
    """
    Where C{testId} comes in trial's order: by the command line's names,
    then module, class and method, each sorted by name.
    """
    rank = next((i for i, n in enumerate(names) if testId == n or testId.startswith(n + ".")),
                len(names))
    parts = testId.rsplit(".", 2)
    return (rank, *parts) if len(parts) == 3 else (rank, testId, "", "")


def module(testId: str) -> str:
    parts = testId.split(".")
    for i, part in enumerate(parts):
        if part.startswith("test_"):
            return ".".join(parts[:i + 1])
    return ".".join(parts[:-2])


def report(data: dict, top: int, out=sys.stderr) -> None:
    tests = data["tests"]
    write = out.write
    busy = sum(t["wall"] for t in tests)
    write(f"testtimes: {len(tests)} tests in {data['wall']:.0f} s wall, {data['cpu']:.0f} s CPU "
          f"(the command and every process it started; by process: "
          f"{', '.join(str(c) for c in data['cpuByProcess'][:6])}); "
          f"{busy:.0f} s of tests\n")
    if data.get("unmatched"):
        write(f"  ({data['unmatched']} started tests without a result line)\n")
    if not tests:
        return
    last = max(t["start"] + t["wall"] for t in tests)
    write(f"  last test ended at {last:.0f} s; the tests that ran in the last minute of that:\n")
    for t in sorted((t for t in tests if t["start"] + t["wall"] > last - 60), key=lambda t: t["start"])[:top]:
        write(f"    {t['wall']:7.1f} s from {t['start']:5.0f} s  {t['id']}\n")
    write(f"  slowest {top} tests (wall s, CPU s, started at s):\n")
    for t in sorted(tests, key=lambda t: -t["wall"])[:top]:
        cpu = "   ?" if t.get("cpu") is None else f"{t['cpu']:7.1f}"
        write(f"    {t['wall']:7.1f} {cpu} {t['start']:7.0f}  {t['id']}\n")
    modules: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 1e9])
    for t in tests:
        m = modules[module(t["id"])]
        m[0] += t["wall"]
        m[1] += t.get("cpu") or 0.0
        m[2] += 1
        m[3] = min(m[3], t["start"])
    for label, key in (("test time", 0), ("CPU", 1)):
        write(f"  top {top} modules by {label} (wall s, CPU s, tests, first started at s):\n")
        for name, (w, c, n, s) in sorted(modules.items(), key=lambda kv: -kv[1][key])[:top]:
            write(f"    {w:7.1f} {c:7.1f} {n:5d} {s:7.0f}  {name}\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--save", help="write the measurements (JSON) here")
    parser.add_argument("--report", help="print the report of measurements saved with --save")
    parser.add_argument("command", nargs="*")
    options = parser.parse_args(argv)
    if options.report:
        with open(options.report) as f:
            report(json.load(f), options.top, sys.stdout)
        return 0
    if not options.command:
        parser.error("give a command (after --) or --report FILE")
    run = Run(options.command)
    status = run.watch()
    data = run.result()
    if options.save:
        with open(options.save, "w") as f:
            json.dump(data, f)
    report(data, options.top)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
