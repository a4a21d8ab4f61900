# -*- test-case-name: tests.unit.test_scripts_runner -*-
"""
Process groups and identities for scripts: each script is started in a
group of its own, so that everything it starts can be signalled at once,
and as its user with keepalived's supplementary groups.

Twisted starts children with C{posix_spawnp} whenever no uid, gid or
working directory is given, and that path has no hook to call
C{setpgid}; so the command is exec'd through C{setsid(1)}, or, when it is
not installed, through a tiny Python shim calling C{setpgid(0, 0)}.  In
both cases the group id is the child's pid.

Twisted's own identity switch (C{uid}/C{gid} of C{spawnProcess}) calls
C{initgroups}, which gives the script every group of its user; keepalived
2.2.7 gives it only its group.  So the identity is switched by the next
link of the chain instead (L{identityWrapper}): C{setpriv(1)}, or the same
kind of Python shim calling C{setgid}, C{setgroups} and C{setuid}.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable, Sequence

__all__ = ["defaultGroupWrapper", "identityWrapper", "killGroup", "killGroupFor", "signalGroup"]

#: a process-group shim used when setsid(1) is not installed
_PGID_SHIM = "import os,sys;os.setpgid(0,0);os.execv(sys.argv[1],sys.argv[1:])"
#: an identity shim used when setpriv(1) is not installed: UID GID GROUPS CMD...
_ID_SHIM = ("import os,sys;u,g,s=sys.argv[1:4];os.setgid(int(g));"
            "os.setgroups([int(x) for x in s.split(',') if x]);os.setuid(int(u));"
            "os.execv(sys.argv[4],sys.argv[4:])")


@functools.cache
def _groupWrapper() -> tuple[str, ...]:
    setsid = shutil.which("setsid")
    if setsid is not None:
        return (setsid,)
    return (sys.executable, "-S", "-c", _PGID_SHIM)


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv")


def identityWrapper(uid: int, gid: int, groups: Sequence[int]) -> list[str]:
    """
    @return: the argv prefix that runs a command (named by its path) as
        C{uid}/C{gid} with exactly the supplementary C{groups}
        (C{setpriv(1)}, else a Python shim).
    """
    listed = ",".join(str(g) for g in groups)
    setpriv = _setpriv()
    if setpriv is not None:
        return [setpriv, f"--reuid={uid}", f"--regid={gid}", f"--groups={listed}", "--"]
    return [sys.executable, "-S", "-c", _ID_SHIM, str(uid), str(gid), listed]


def defaultGroupWrapper() -> list[str]:
    """
    @return: the argv prefix that starts a command in a new process group
        (C{setsid(1)}, else a Python shim calling C{setpgid(0, 0)}).
    """
    return list(_groupWrapper())


def killGroup(pgid: int, sig: int) -> bool:
    """
    Send C{sig} to process group C{pgid} only.

    @return: whether the group exists.
    """
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def signalGroup(pid: int, sig: int) -> None:
    """
    Send C{sig} to process group C{pid}; when the group does not exist yet
    (the child has not called C{setsid} yet), to the process.
    """
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def killGroupFor(
    send: Callable[[int, int], None]
) -> Callable[[int, int], bool]:
    """
    The after-exit group sender that goes with C{send}: L{killGroup} for
    the real L{signalGroup}, else C{send} itself (a test's recorder; the
    group is then taken as gone).
    """
    if send is signalGroup:
        return killGroup

    def viaSend(pgid: int, sig: int) -> bool:
        send(pgid, sig)
        return False

    return viaSend


