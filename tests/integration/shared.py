"""
One expensive fixture per test run, shared by every trial worker.

A few integration tests read one costly result (a User-Mode-Linux guest's
scenario report, an installed virtual environment) from several test
methods.  Under C{trial -jN} the methods of one class run in different
worker processes, so a per-process cache (C{functools.cache}, a class
attribute) would compute the same thing once per worker.  L{sharedResult}
computes it once per run: the first worker to ask computes it while it
holds a file lock in the run's directory; the others wait on the lock and
read the stored result.

The run's directory is trial's temporary directory (C{_trial_temp}, marked
by trial with a C{_trial_marker} file): the current directory in a
single-process run, the parent of a worker's C{_trial_temp/N} under C{-j}.
Trial empties it at the start of the next run, so nothing outlives the run
that made it.  Outside trial the result is cached in the process only.

Test code may block; library code never imports this module.
"""

from __future__ import annotations

import fcntl
import json
import os
import traceback
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SkipTest

_MARKER = "_trial_marker"
_memo: dict[str, Any] = {}


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


def _load(stored: dict) -> Any:
    if "error" in stored:
        raise AssertionError(f"shared fixture failed (in the worker that computed it):\n{stored['error']}")
    return stored["value"]


def sharedResult(key: str, compute: Callable[[], Any]) -> Any:
    """
    C{compute()}, computed once per test run whichever worker asks first.

    @param key: names the result (a file name part: letters, digits, C{-_.}).
    @param compute: makes the result; it must be JSON-serialisable.  If it
        raises, every test asking for C{key} in this run fails with the
        same message (the computation is not repeated for each test);
        L{SkipTest} is not stored.
    """
    if key in _memo:
        return _load(_memo[key])
    directory = runDirectory()
    if directory is None:
        stored = _compute(compute)
        _memo[key] = stored
        return _load(stored)
    path = os.path.join(directory, f"shared-{key}.json")
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                with open(path) as f:
                    stored = json.load(f)
            except FileNotFoundError:
                stored = _compute(compute)
                with open(path + ".tmp", "w") as f:
                    json.dump(stored, f)
                os.replace(path + ".tmp", path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _memo[key] = stored
    return _load(stored)


def _compute(compute: Callable[[], Any]) -> dict:
    try:
        # through JSON here too, so that every worker gets the same types
        return json.loads(json.dumps({"value": compute()}))
    except SkipTest:
        raise
    except Exception:
        return {"error": traceback.format_exc()}
