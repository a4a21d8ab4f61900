# -*- test-case-name: tests.unit.test_alert_security -*-
"""
keepalived's script security (catalogue S{sect}2.1 C{script_user} and
C{enable_script_security}, S{sect}4.10, S{sect}7 #16).

  - A script without its own C{user} runs as the default script user:
    C{global_defs}' C{script_user} when set, else C{keepalived_script} when
    that user exists, else the daemon's own identity (keepalived then warns
    C{WARNING - default user 'keepalived_script' for script execution does
    not exist - please create.}).  With C{enable_script_security} and no
    C{keepalived_script} user, or with a C{script_user} that does not
    resolve, scripts without their own C{user} are not run at all.
  - A script that would run with root privileges (user or group root, or a
    set-uid/set-gid root file) has every component of its path checked
    (the path as written and the resolved real path): each must be owned by
    root, and neither a regular file nor a directory without the sticky bit
    may be writable by a non-root group or by others.  With
    C{enable_script_security} an unsafe script is disabled (C{Unsafe
    permissions found for script '...' - disabling.}); without it, it runs
    and keepalived's C{SECURITY VIOLATION} warning says so.

What "disabled" means is the caller's business, as in keepalived: a
disabled C{vrrp_script} is not tracked at all, a disabled MISC_CHECK is
removed from its real server, a disabled notify script is not run.

The checks read the file system and the user database: they run while the
daemon is being built, never from a reactor callback.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from keepalive_tx.alert.scripts import ScriptRunner, resolveUser

__all__ = [
    "DEFAULT_USER",
    "Assessment",
    "ScriptPolicy",
    "assess",
    "audit",
    "auditMessages",
    "configuredScripts",
    "forgetUsers",
    "runnerAssessment",
    "unsafeComponent",
]

#: keepalived's default script user
DEFAULT_USER = "keepalived_script"

StatFunction = Callable[[str], os.stat_result]


@dataclass(frozen=True, slots=True)
class ScriptPolicy:
    """
    The resolved C{script_user} / C{enable_script_security} settings.

    @ivar enabled: C{enable_script_security}.
    @ivar uid: the default script user's uid (L{None}: the daemon's own).
    @ivar gid: its gid (L{None}: the daemon's own).
    @ivar error: why scripts without their own C{user} cannot run, or
        L{None}.
    @ivar defaultMissing: no C{script_user} was configured and the
        C{keepalived_script} user does not exist.
    """

    enabled: bool = False
    uid: int | None = None
    gid: int | None = None
    error: str | None = None
    defaultMissing: bool = False

    @classmethod
    def fromGlobals(
        cls,
        globalDefs: Any,
        resolve: Callable[[str], tuple[int | None, int | None]] | None = None,
    ) -> ScriptPolicy:
        """
        Resolve the default script identity of C{globalDefs} (a
        L{keepalive_tx.config.model.GlobalDefs}, or L{None} for defaults).

        @param resolve: C{user[:group] -> (uid, gid)} raising L{ValueError}
            (default L{resolveUser}; the result is then cached per setting).
        """
        user = getattr(globalDefs, "scriptUser", None) or None
        enabled = bool(getattr(globalDefs, "enableScriptSecurity", False))
        if resolve is None:
            return _cachedPolicy(user, enabled)
        return _policy(user, enabled, resolve)

    def identity(self, user: str | None) -> tuple[int | None, int | None]:
        """
        The identity a script with C{user} (its own C{user[:group]}, or
        L{None}) runs as.

        @raise ValueError: the user cannot be resolved, or no default
            identity is usable (L{error}).
        """
        if user:
            return resolveUser(user)
        if self.error is not None:
            raise ValueError(self.error)
        return self.uid, self.gid

    def check(self, path: str, uid: int, gid: int) -> Assessment:
        """
        L{assess} the script file C{path} run as C{uid}/C{gid} under this
        policy.
        """
        return assess(path, uid, gid, self.enabled)


def _policy(
    user: str | None, enabled: bool, resolve: Callable[[str], tuple[int | None, int | None]]
) -> ScriptPolicy:
    if user is not None:
        try:
            uid, gid = resolve(user)
        except ValueError:
            return ScriptPolicy(enabled, error=f"Script user '{user}' does not exist")
        return ScriptPolicy(enabled, uid, gid)
    try:
        uid, gid = resolve(DEFAULT_USER)
    except ValueError:
        if enabled:
            return ScriptPolicy(
                enabled, error=f"Unable to set default user {DEFAULT_USER} for script",
                defaultMissing=True,
            )
        return ScriptPolicy(enabled, defaultMissing=True)
    return ScriptPolicy(enabled, uid, gid)


@functools.lru_cache(maxsize=8)
def _cachedPolicy(user: str | None, enabled: bool) -> ScriptPolicy:
    return _policy(user, enabled, resolveUser)


def forgetUsers() -> None:
    """
    Forget the resolved default script users (a reload looks them up again:
    C{keepalived_script} may have been created meanwhile).
    """
    _cachedPolicy.cache_clear()


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


@dataclass(frozen=True, slots=True)
class Assessment:
    """
    The security verdict on one script file.

    @ivar insecure: some component of its path is writable by non-root
        while it runs privileged.
    @ivar disabled: keepalived's reason for not running it, or L{None}.
    """

    insecure: bool = False
    disabled: str | None = None


def _checkedPaths(
    path: str, stat_: StatFunction, realpath: Callable[[str], str]
) -> list[str]:
    """
    The paths keepalived's C{check_script_secure} checks: the resolved
    path (no symlinks, C{.} or C{..}) and, when the resolved file name
    differs from the configured one, the configured name in the resolved
    directory first (if it is the same file), as keepalived keeps the name
    some programs act on.
    """
    real = realpath(path)
    configuredName = os.path.basename(path)
    if os.path.basename(real) == configuredName:
        return [real]
    named = os.path.join(os.path.dirname(real), configuredName)
    try:
        a, b = stat_(named), stat_(real)
    except OSError:
        return [real]
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        return [real]
    return [named, real]


def assess(
    path: str,
    uid: int,
    gid: int,
    enabled: bool,
    *,
    stat_: StatFunction = os.stat,
    lstat: StatFunction = os.lstat,
    realpath: Callable[[str], str] = os.path.realpath,
) -> Assessment:
    """
    Check the script file at C{path} that would run as C{uid}/C{gid}.

    @param enabled: C{enable_script_security}.
    """
    path = os.path.abspath(path)
    try:
        st = stat_(path)
    except OSError as e:
        return Assessment(disabled=f"Unable to access script `{path}` ({e.strerror})")
    if not _runsPrivileged(st, uid, gid):
        return Assessment()
    for candidate in _checkedPaths(path, stat_, realpath):
        found = unsafeComponent(candidate, lstat)
        if found is None:
            continue
        problem, component = found
        if problem == "unsafe":
            if enabled:
                return Assessment(
                    True, f"Unsafe permissions found for script '{path}' - disabling."
                )
            return Assessment(True)
        if problem == "wrong type":
            return Assessment(disabled=f"Wrong file type found in script path '{component}'.")
        return Assessment(disabled=f"check_script_secure could not find script '{path}'")
    return Assessment()


def configuredScripts(config: Any) -> Iterator[tuple[str, tuple[str, ...], str | None]]:
    """
    Every script of C{config} that the daemon may run: C{(what, argv,
    user)} with C{what} a description (C{vrrp_script chk}, C{notifyMaster of
    VI_1}, C{MISC_CHECK of 192.0.2.1}, ...) and C{user} its own
    C{user[:group]} or L{None}.
    """
    g = getattr(config, "globalDefs", None)
    for field in ("startupScript", "shutdownScript", "notifyFifoScript",
                  "vrrpNotifyFifoScript", "lvsNotifyFifoScript"):
        script = getattr(g, field, None)
        if script is not None:
            yield field, script.argv, script.user
    for vs in getattr(config, "vrrpScripts", ()):
        if vs.script is not None:
            yield f"vrrp_script {vs.name}", vs.script.argv, vs.user or vs.script.user
    notifies = ("notifyMaster", "notifyBackup", "notifyFault", "notifyStop",
                "notifyDeleted", "notify", "notifyMasterRxLowerPri")
    for owner in (*getattr(config, "vrrpInstances", ()), *getattr(config, "syncGroups", ())):
        for field in notifies:
            script = getattr(owner, field, None)
            if script is not None:
                yield f"{field} of {owner.name}", script.argv, script.user
    for vs in getattr(config, "virtualServers", ()):
        for field in ("quorumUp", "quorumDown"):
            script = getattr(vs, field, None)
            if script is not None:
                yield f"{field} of {vs.name}", script.argv, script.user
        for rs in vs.realServers:
            for field in ("notifyUp", "notifyDown"):
                script = getattr(rs, field, None)
                if script is not None:
                    yield f"{field} of {rs.address}", script.argv, script.user
            for checker in rs.checkers:
                script = getattr(checker, "script", None)
                if script is not None:
                    yield f"{type(checker).kind} of {rs.address}", script.argv, script.user


def runnerAssessment(argv: tuple[str, ...], user: str | None, policy: ScriptPolicy) -> Assessment:
    """
    What a L{ScriptRunner} built under C{policy} makes of a script (it reads
    the file system, never starts anything).
    """
    runner = ScriptRunner(None, argv, user, policy=policy)
    return Assessment(runner.insecure, runner.error)


#: kinds of L{audit} findings
DISABLED, INSECURE, WARNING, VIOLATION = "disabled", "insecure", "warning", "violation"


def audit(
    config: Any,
    policy: ScriptPolicy,
    check: Callable[[tuple[str, ...], str | None, ScriptPolicy], Assessment] = runnerAssessment,
) -> list[tuple[str, str]]:
    """
    keepalived's start-up findings about script security: one per unsafe or
    disabled script, the default-user warning and the C{SECURITY
    VIOLATION} summary (only when some script is configured).

    @param check: C{(argv, user, policy) -> Assessment} of one script.
    @return: C{(kind, line)} pairs, kind one of L{DISABLED}, L{INSECURE},
        L{WARNING}, L{VIOLATION}.
    """
    found: list[tuple[str, str]] = []
    insecure = False
    scripts: Iterable[tuple[str, tuple[str, ...], str | None]] = list(configuredScripts(config))
    if not scripts:
        return found
    for what, argv, user in scripts:
        verdict = check(argv, user, policy)
        insecure = insecure or verdict.insecure
        command = " ".join(argv)
        if verdict.disabled is not None:
            found.append((DISABLED, f"Disabling script [{command}] ({what}): {verdict.disabled}"))
        elif verdict.insecure:
            found.append(
                (INSECURE, f"Unsafe permissions found for script '{command}' ({what}).")
            )
    if policy.defaultMissing and not policy.enabled:
        found.append((WARNING,
                      f"WARNING - default user '{DEFAULT_USER}' for script execution does not"
                      " exist - please create."))
    if not policy.enabled:
        found.append((VIOLATION,
                      "SECURITY VIOLATION - scripts are being executed but script_security not"
                      " enabled." + (" There are insecure scripts." if insecure else "")))
    return found


def auditMessages(
    config: Any,
    policy: ScriptPolicy,
    check: Callable[[tuple[str, ...], str | None, ScriptPolicy], Assessment] = runnerAssessment,
) -> list[str]:
    """
    The lines of L{audit}.
    """
    return [line for _, line in audit(config, policy, check)]
