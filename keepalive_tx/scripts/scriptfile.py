# -*- test-case-name: tests.unit.test_scripts_scriptfile -*-
"""
What keepalived finds out about a script's file before it agrees to run it
(docs/keepalived-compat.md, "Scripts that cannot run").

L{inspectScript} follows keepalived 2.2.7 step by step for the first word of
a command run as C{uid}/C{gid}:

  1. A command starting with C{<} (blanks allowed) then C{/} is a
     redirection test (C{</dev/tcp/...}) run by the shell: no file is
     checked (L{Inspection.shellTest}).
  2. A name without C{/} is searched on C{PATH} (C{execvp}'s rules, the
     first regular file the user may execute); none found disables it
     (C{Cannot find script X in path - disabling}, or C{Permissions failure
     ...} when only non-executable files matched).
  3. The path is resolved (symbolic links, C{.}, C{..}); when that fails the
     script is I{not found}. When the resolved file name differs from the
     configured one and the configured name in the resolved directory is
     the same file, that name is kept (some programs act on their name).
  4. An existing file is I{a script} (this is what makes keepalived's
     C{SECURITY VIOLATION} summary appear); one the user may not execute is
     disabled (C{WARNING - script 'X' is not executable for uid:gid U:G -
     disabling.}).
  5. An executable script that runs with root privileges (user or group 0,
     or a set-uid/set-gid root file) has every component of its path
     checked: each must be owned by root, and no regular file or directory
     without the sticky bit may be writable by a non-root group or by
     others. A failure makes it I{insecure}, and with
     C{enable_script_security} I{inhibited}; a missing component makes it
     I{not found}, a wrong file type I{inhibited}.

Which of these disable a script is the caller's rule (L{Inspection.runnable}):
C{vrrp_script}, MISC_CHECK and the start/shutdown scripts accept a
redirection test, the notify-style scripts only an executable file.

Everything here reads the file system (stat, realpath): call it while the
daemon is being built, never from a reactor callback.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["Inspection", "findScript", "inspectScript", "isExecutable", "unsafeComponent"]

StatFunction = Callable[[str], os.stat_result]

#: a redirection-only command run through the shell (C{</dev/tcp/host/port})
_SHELL_TEST = re.compile(r"<[ \t]*/")


@dataclass(frozen=True, slots=True)
class Inspection:
    """
    keepalived's verdict on one script file.

    @ivar path: the file to execute (after the path search and resolution),
        or L{None}.
    @ivar notFound: the file (or a component of its path) cannot be found.
    @ivar inhibit: it must not run (unsafe under C{enable_script_security},
        or a wrong file type in its path).
    @ivar insecure: some component of its path is writable by non-root.
    @ivar isScript: an existing file was found.
    @ivar executable: the script's user may execute it.
    @ivar shellTest: a redirection test run by the shell (no file).
    @ivar notes: keepalived's log lines about it, in order.
    """

    path: str | None = None
    notFound: bool = False
    inhibit: bool = False
    insecure: bool = False
    isScript: bool = False
    executable: bool = False
    shellTest: bool = False
    notes: tuple[str, ...] = field(default=())

    def runnable(self, shellTests: bool) -> bool:
        """
        May the script run?

        @param shellTests: a redirection test is acceptable (C{vrrp_script},
            MISC_CHECK, start/shutdown scripts; not the notify scripts).
        """
        if self.notFound or self.inhibit:
            return False
        return self.executable or (shellTests and self.shellTest)

    def reason(self, shellTests: bool) -> str | None:
        """
        Why the script cannot run, in keepalived's words for C{vrrp_script}
        and MISC_CHECK (C{due to insecure}, C{since not found/accessible},
        C{since not executable}), or L{None} when it can.
        """
        if self.inhibit:
            return "due to insecure"
        if self.notFound:
            return "since not found/accessible"
        if not self.runnable(shellTests):
            return "since not executable"
        return None


def isExecutable(st: os.stat_result, uid: int, gid: int) -> bool:
    """
    keepalived's C{is_executable}: may C{uid}/C{gid} execute this file?
    (root needs one execute bit; the owner's, group's or others' bit
    otherwise.)
    """
    mode = st.st_mode
    if uid == 0:
        return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if uid == st.st_uid:
        return bool(mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def _searchPath(path: str | None) -> str:
    if path is not None:
        return path
    try:
        return os.confstr("CS_PATH") or os.defpath
    except (ValueError, OSError):
        return os.defpath


def findScript(
    name: str, path: str | None, uid: int, gid: int, stat_: StatFunction = os.stat
) -> tuple[str | None, bool]:
    """
    keepalived's path search for a command name without C{/}: the first
    regular file on C{path} (C{PATH}, default C{CS_PATH}) that C{uid}/C{gid}
    may execute; an empty C{PATH} element is the current directory.

    @return: C{(found, denied)}: the path or L{None}, and whether some
        match was not a regular executable file (keepalived's C{EACCES}).
    """
    denied = False
    if not name:
        return None, False
    for directory in _searchPath(path).split(":"):
        candidate = f"{directory}/{name}" if directory else name
        try:
            st = stat_(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and isExecutable(st, uid, gid):
            return candidate, False
        denied = True
    return None, denied


def _components(path: str) -> Iterator[tuple[str, bool]]:
    """
    C{/}, C{/a}, C{/a/b}, ... C{path}, each with "is the last one".
    """
    parts = [p for p in path.split("/") if p]
    yield "/", not parts
    for i in range(len(parts)):
        yield "/" + "/".join(parts[: i + 1]), i == len(parts) - 1


def unsafeComponent(path: str, lstat: StatFunction = os.lstat) -> tuple[str, str] | None:
    """
    keepalived's C{check_security}: is some component of the absolute
    C{path} writable by someone other than root?

    @return: L{None} when safe, else C{(problem, component)} with problem
        one of C{"not found"}, C{"wrong type"}, C{"unsafe"}.
    """
    for component, last in _components(path):
        try:
            st = lstat(component)
        except OSError:
            return "not found", component
        mode = st.st_mode
        if (not last and not stat.S_ISDIR(mode)) or (
            last and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode))
        ):
            return "wrong type", component
        writableKind = (stat.S_ISDIR(mode) and not mode & stat.S_ISVTX) or stat.S_ISREG(mode)
        groupWrite = st.st_gid != 0 and mode & stat.S_IWGRP
        if st.st_uid != 0 or (writableKind and (groupWrite or mode & stat.S_IWOTH)):
            return "unsafe", component
    return None


def _runsPrivileged(st: os.stat_result, uid: int, gid: int) -> bool:
    """
    keepalived's C{need_script_protection}: root runs it, or it is a
    set-uid/set-gid root executable.
    """
    mode = st.st_mode
    return (
        uid == 0
        or gid == 0
        or (st.st_uid == 0 and bool(mode & stat.S_IXUSR) and bool(mode & stat.S_ISUID))
        or (st.st_gid == 0 and bool(mode & stat.S_IXGRP) and bool(mode & stat.S_ISGID))
    )


class _Verdict:
    """
    The flags and notes being collected by L{inspectScript}.
    """

    def __init__(self) -> None:
        self.notFound = self.inhibit = self.insecure = False
        self.notes: list[str] = []

    def checkPath(self, path: str, enabled: bool, lstat: StatFunction) -> None:
        found = unsafeComponent(path, lstat)
        if found is None:
            return
        problem = found[0]
        if problem == "not found":
            self.notes.append(f"check_script_secure could not find script '{path}' - disabling")
            self.notFound = True
        elif problem == "wrong type":
            self.notes.append(f"Wrong file type found in script path '{path}'.")
            self.inhibit = True
        else:
            self.notes.append(
                f"Unsafe permissions found for script '{path}'{' - disabling' if enabled else ''}."
            )
            self.insecure = True
            self.inhibit = self.inhibit or enabled

    def done(self, **kw: object) -> Inspection:
        return Inspection(notFound=self.notFound, inhibit=self.inhibit, insecure=self.insecure,
                          notes=tuple(self.notes), **kw)  # type: ignore[arg-type]


def _keepName(
    name: str, real: str, stat_: StatFunction
) -> tuple[str, str | None]:
    """
    The path to run when C{name} resolved to C{real}: the configured file
    name in the resolved directory when that is the same file.

    @return: C{(path, realFile)}, C{realFile} being the resolved file when
        it differs from C{path} (it is checked too).
    """
    base = os.path.basename(name)
    if name == real or os.path.basename(real) == base:
        return real, None
    named = os.path.join(os.path.dirname(real), base)
    try:
        a = stat_(real)
    except OSError:
        return named, real
    try:
        b = stat_(named)
    except OSError:
        return real, None
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        return real, None
    return named, real


def inspectScript(
    name: str,
    uid: int,
    gid: int,
    enabled: bool,
    *,
    path: str | None = None,
    stat_: StatFunction = os.stat,
    lstat: StatFunction = os.lstat,
    realpath: Callable[[str], str] | None = None,
) -> Inspection:
    """
    Inspect the command word C{name} run as C{uid}/C{gid} (see the module
    docstring).

    @param enabled: C{enable_script_security}.
    @param path: the C{PATH} for the search (L{None}: C{CS_PATH}).
    @param realpath: resolves a path, raising L{OSError} when it cannot
        (default C{os.path.realpath(p, strict=True)}).
    """
    if _SHELL_TEST.match(name):
        return Inspection(shellTest=True)
    verdict = _Verdict()
    if "/" not in name:
        found, denied = findScript(name, path, uid, gid, stat_)
        if found is None:
            verdict.notes.append(
                f"Permissions failure for script {name} in path - disabling" if denied
                else f"Cannot find script {name} in path - disabling")
            verdict.notFound = True
            return verdict.done()
        verdict.notes.append(f"WARNING - script `{name}` resolved by path search to `{found}`."
                             " Please specify full path.")
        name = found
    try:
        real = (realpath or _strictRealpath)(name)
    except OSError as e:
        verdict.notes.append(f"Script {name} cannot be accessed - {e.strerror}")
        verdict.notFound = True
        return verdict.done()
    runPath, realFile = _keepName(name, real, stat_)
    try:
        st = stat_(realFile or runPath)
    except OSError:
        verdict.notes.append(f"Unable to access script `{runPath}` - disabling")
        verdict.notFound = True
        return verdict.done(path=runPath)
    executable = isExecutable(st, uid, gid)
    if not executable:
        verdict.notes.append(f"WARNING - script '{runPath}' is not executable for uid:gid"
                             f" {uid}:{gid} - disabling.")
    elif _runsPrivileged(st, uid, gid):
        verdict.checkPath(runPath, enabled, lstat)
        if realFile is not None:
            verdict.checkPath(realFile, enabled, lstat)
    return verdict.done(path=runPath, isScript=True, executable=executable)


def _strictRealpath(path: str) -> str:
    return os.path.realpath(path, strict=True)
