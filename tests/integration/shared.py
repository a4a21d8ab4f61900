"""
Expensive fixtures computed once per test run and shared by every trial
worker.

A few integration tests read one costly result (a User-Mode-Linux guest's
scenario report, an installed virtual environment) from several test
methods.  Under C{trial -jN} the methods of one class run in different
worker processes, so a per-process cache (C{functools.cache}, a class
attribute) would compute the same thing once per worker.  A fixture
declared with L{sharedFixture} is computed once per run: the first worker
to ask computes it while it holds a file lock in the run's directory; the
others wait on the lock and read the stored result.

Trial hands out consecutive tests to whichever worker is free, so the
methods of one class reach all workers at once and all but one would sit
idle while the fixture is computed.  A worker that has to wait computes,
meanwhile, another declared fixture that nobody has started yet (it imports
every C{test_*} module of this package to find them), the longest first:
the run's expensive fixtures are then built side by side, each still once.

The run's directory is trial's temporary directory (C{_trial_temp}, marked
by trial with a C{_trial_marker} file): the current directory in a
single-process run, the parent of a worker's C{_trial_temp/N} under C{-j}.
Trial empties it at the start of the next run, so nothing outlives the run
that made it.  Outside trial a result is cached in the process only.

Test code may block; library code never imports this module.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import pkgutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.trial.unittest import SkipTest

_MARKER = "_trial_marker"


@dataclass(frozen=True)
class _Fixture:
    key: str
    compute: Callable[[], Any]
    requires: Callable[[], None] | None
    seconds: float


_fixtures: dict[str, _Fixture] = {}
_memo: dict[str, dict] = {}


def sharedFixture(key: str, compute: Callable[[], Any],
                  requires: Callable[[], None] | None = None,
                  seconds: float = 0.0) -> Callable[[], Any]:
    """
    Declare fixture C{key} and return the function that gives its value.

    @param key: names the fixture (a file name part: letters, digits, C{-_.}).
    @param compute: makes the value, which must be JSON-serialisable.  If it
        raises, every test asking for C{key} in this run fails with the
        same message (it is not computed again for each test); L{SkipTest}
        is not stored.
    @param requires: raises (L{SkipTest}, or C{AssertionError} under C{CI})
        when C{compute} cannot run here.  The tests call it themselves
        before they ask for the value; a waiting worker does not compute
        the fixture ahead of time when it raises.
    @param seconds: roughly how long C{compute} takes: waiting workers
        start the longest fixtures first (what is left for later is then
        short).
    """
    _fixtures[key] = fixture = _Fixture(key, compute, requires, seconds)
    return lambda: _value(fixture)


def runDirectory() -> str | None:
    """
    The directory of this trial run, shared by its workers, or C{None} when
    this process is not running tests under trial.
    """
    here = os.getcwd()
    if os.path.exists(os.path.join(here, _MARKER)):
        return here
    parent = os.path.dirname(here)
    if os.path.basename(here).isdigit() and os.path.exists(os.path.join(parent, _MARKER)):
        return parent
    return None


def _value(fixture: _Fixture) -> Any:
    stored = _memo.get(fixture.key)
    if stored is None:
        directory = runDirectory()
        if directory is None:
            stored = _compute(fixture)
        else:
            stored = _shared(directory, fixture)
        _memo[fixture.key] = stored
    if "error" in stored:
        raise AssertionError(
            f"shared fixture {fixture.key} failed (in the worker that computed it):\n{stored['error']}")
    return stored["value"]


def _path(directory: str, key: str) -> str:
    return os.path.join(directory, f"shared-{key}.json")


def _shared(directory: str, fixture: _Fixture) -> dict:
    path = _path(directory, fixture.key)
    with open(path + ".lock", "a") as lock:
        if not _tryLock(lock):
            _helpWhileWaiting(directory, fixture.key)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _loadOrCompute(path, fixture)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tryLock(lock) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _loadOrCompute(path: str, fixture: _Fixture) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        pass
    stored = _compute(fixture)
    with open(path + ".tmp", "w") as f:
        json.dump(stored, f)
    os.replace(path + ".tmp", path)
    return stored


def _compute(fixture: _Fixture) -> dict:
    try:
        # through JSON here too, so that every worker gets the same types
        return json.loads(json.dumps({"value": fixture.compute()}))
    except SkipTest:
        raise
    except Exception:
        return {"error": traceback.format_exc()}


def _helpWhileWaiting(directory: str, awaited: str) -> None:
    """
    While another worker computes C{awaited}, compute fixtures nobody has
    started, until C{awaited} is there or none is left.
    """
    _discover()
    for fixture in sorted(_fixtures.values(), key=lambda f: -f.seconds):
        if os.path.exists(_path(directory, awaited)):
            return
        path = _path(directory, fixture.key)
        if fixture.key == awaited or fixture.key in _memo or os.path.exists(path):
            continue
        if fixture.requires is not None:
            try:
                fixture.requires()
            except Exception:
                continue
        with open(path + ".lock", "a") as lock:
            if not _tryLock(lock):
                continue
            try:
                _memo[fixture.key] = _loadOrCompute(path, fixture)
            except SkipTest:
                pass
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _discover() -> None:
    """
    Import every C{test_*} module of this package, declaring its fixtures.
    """
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if module.name.startswith("test_"):
            try:
                importlib.import_module(f"{package}.{module.name}")
            except Exception:
                pass  # trial reports it where the module's tests are loaded
