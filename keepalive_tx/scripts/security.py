# -*- test-case-name: tests.unit.test_scripts_security -*-
"""
keepalived's script security and the start-up findings about scripts
(docs/keepalived-compat.md, "Scripts that cannot run").

  - A script without its own C{user} runs as the default script user:
    C{global_defs}' C{script_user} when set, else C{keepalived_script} when
    that user exists, else the daemon's own identity.  With
    C{enable_script_security} and no C{keepalived_script} user, or with a
    C{script_user} that does not resolve, scripts without their own C{user}
    are not run at all.
  - Each script's file is inspected as keepalived does
    (L{keepalive_tx.scripts.scriptfile.inspectScript}): a script that is
    missing, not a regular file, not executable by its user, or unsafe
    under C{enable_script_security} is disabled.  What "disabled" means is
    the caller's business, as in keepalived: a disabled C{vrrp_script} is
    not tracked at all, a disabled MISC_CHECK is removed from its real
    server, a disabled notify script is not run.
  - L{audit} gives keepalived's findings, grouped as keepalived's three
    processes make them (start/shutdown scripts; checker scripts; VRRP
    scripts): which are reported by C{-t} (and with which exit code), which
    are only logged.  The C{SECURITY VIOLATION} summary of a group appears
    only when a script of that group I{exists} and C{enable_script_security}
    is off; a missing script is no security finding.

The checks read the file system and the user database: they run while the
daemon is being built, never from a reactor callback.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from keepalive_tx.scripts.runner import resolveUser, shellCommand
from keepalive_tx.scripts.scriptfile import Inspection, inspectScript

__all__ = [
    "CONFIG_ERROR",
    "DEFAULT_USER",
    "NOTE",
    "SECURITY",
    "TRACK",
    "ScriptPolicy",
    "ScriptUse",
    "audit",
    "auditMessages",
    "configuredScripts",
    "forgetUsers",
]

#: keepalived's default script user
DEFAULT_USER = "keepalived_script"


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
    @ivar supplementaryGroups: C{set_supplementary_groups} (keepalived
        after 2.2.7): a script run as another user gets that user's groups,
        not only its own group.
    """

    enabled: bool = False
    uid: int | None = None
    gid: int | None = None
    error: str | None = None
    defaultMissing: bool = False
    supplementaryGroups: bool = False

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
        policy = _cachedPolicy(user, enabled) if resolve is None else _policy(user, enabled,
                                                                              resolve)
        if getattr(globalDefs, "setSupplementaryGroups", False):
            policy = dataclasses.replace(policy, supplementaryGroups=True)
        return policy

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

    def inspect(self, name: str, uid: int, gid: int, path: str | None) -> Inspection:
        """
        L{inspectScript} the command word C{name} run as C{uid}/C{gid}
        under this policy (C{path}: the C{PATH} to search).
        """
        return inspectScript(name, uid, gid, self.enabled, path=path)


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


ROLE_TRACK, ROLE_MISC, ROLE_NOTIFY, ROLE_STARTSTOP = "track", "misc", "notify", "startstop"
GROUP_MAIN, GROUP_CHECK, GROUP_VRRP = "main", "check", "vrrp"

#: keepalived's summary line of each group
_VIOLATION = {
    GROUP_MAIN: "SECURITY VIOLATION - start/shutdown scripts are being executed but"
                " script_security not enabled.",
    GROUP_CHECK: "SECURITY VIOLATION - check scripts are being executed but script_security"
                 " not enabled.",
    GROUP_VRRP: "SECURITY VIOLATION - scripts are being executed but script_security not"
                " enabled.",
}


@dataclass(frozen=True, slots=True)
class ScriptUse:
    """
    One configured script.

    @ivar group: which keepalived process checks it (C{main}, C{check},
        C{vrrp}).
    @ivar role: C{track} (vrrp_script), C{misc}, C{notify} (notify_*,
        quorum_*, FIFO scripts), C{startstop}.
    @ivar label: what it is (C{vrrp_script chk}, C{notifyMaster of VI_1},
        ...); for a C{vrrp_script}, its name.
    """

    group: str
    role: str
    label: str
    argv: tuple[str, ...]
    user: str | None
    command: str


def configuredScripts(config: Any) -> Iterator[ScriptUse]:
    """
    Every script of C{config} that the daemon may run, in keepalived's
    checking order: start/shutdown scripts, then the checker's (MISC_CHECK,
    quorum, real-server notify, FIFO scripts) when there is a virtual
    server, then VRRP's (vrrp_script, instance and sync-group notify, FIFO
    scripts) when there is a VRRP instance.  A FIFO script shared by both
    processes appears in both groups.
    """
    g = getattr(config, "globalDefs", None)

    def use(group: str, role: str, label: str, script: Any, user: Any = ...) -> ScriptUse:
        return ScriptUse(group, role, label, tuple(script.argv),
                         script.user if user is ... else user, script.command)

    def uses(group: str, role: str, owner: Any, fields: tuple[str, ...],
             label: str | None = None) -> Iterator[ScriptUse]:
        for field in fields:
            script = getattr(owner, field, None)
            if script is not None:
                yield use(group, role, field if label is None else f"{field} of {label}", script)

    yield from uses(GROUP_MAIN, ROLE_STARTSTOP, g, ("startupScript", "shutdownScript"))
    virtualServers = getattr(config, "virtualServers", ())
    if virtualServers:
        for vs in virtualServers:
            for rs in vs.realServers:
                for checker in rs.checkers:
                    if getattr(checker, "script", None) is not None:
                        yield use(GROUP_CHECK, ROLE_MISC, f"{type(checker).kind} of {rs.address}",
                                  checker.script)
        for vs in virtualServers:
            yield from uses(GROUP_CHECK, ROLE_NOTIFY, vs, ("quorumUp", "quorumDown"), vs.name)
            for rs in vs.realServers:
                yield from uses(GROUP_CHECK, ROLE_NOTIFY, rs, ("notifyUp", "notifyDown"),
                                str(rs.address))
        yield from uses(GROUP_CHECK, ROLE_NOTIFY, g, ("notifyFifoScript", "lvsNotifyFifoScript"))
    if getattr(config, "vrrpInstances", ()) or getattr(config, "vrrpConfigured", False):
        for vs in getattr(config, "vrrpScripts", ()):
            if vs.script is not None:
                yield use(GROUP_VRRP, ROLE_TRACK, vs.name, vs.script, vs.user or None)
        notifies = ("notifyBackup", "notifyMaster", "notifyFault", "notifyStop",
                    "notifyDeleted", "notify", "notifyMasterRxLowerPri")
        for owner in (*config.vrrpInstances, *getattr(config, "syncGroups", ())):
            yield from uses(GROUP_VRRP, ROLE_NOTIFY, owner, notifies, owner.name)
        yield from uses(GROUP_VRRP, ROLE_NOTIFY, g, ("notifyFifoScript", "vrrpNotifyFifoScript"))


#: kinds of L{audit} findings: reported by C{-t} as an error (and logged at
#: start); reported by C{-t} as a security error (exit 6); only logged; a
#: disabled vrrp_script (reported by C{-t}; at run time the script service
#: logs it each time it is built)
CONFIG_ERROR, SECURITY, NOTE, TRACK = "error", "security", "note", "track"


class _Auditor:
    """
    The state of one L{audit}: findings, notes already given, the once-only
    default-user lines.
    """

    def __init__(self, config: Any, policy: ScriptPolicy, environ: Any) -> None:
        self.config = config
        self.policy = policy
        self.path = environ.get("PATH")
        self.found: list[tuple[str, str]] = []
        self._notes: set[str] = set()
        self._defaultReported = False

    def add(self, kind: str, line: str) -> None:
        if kind == NOTE:
            if line in self._notes:
                return
            self._notes.add(line)
        self.found.append((kind, line))

    def identity(self, use: ScriptUse) -> tuple[int, int] | None:
        """
        The uid/gid C{use} runs as, or L{None} (with keepalived's lines)
        when it cannot be set.
        """
        what = shellCommand(use.argv) if use.argv else use.command
        try:
            uid, gid = self.policy.identity(use.user)
        except ValueError:
            if use.user:
                if use.role == ROLE_TRACK:
                    self.add(TRACK, f"Unable to set uid/gid for script {what}")
                    self.untracked(use.label)
                elif use.role == ROLE_MISC:
                    self.add(CONFIG_ERROR,
                             f"Failed to set uid/gid for misc checker script {what} - removing")
                else:
                    self.add(NOTE, f"Invalid user/group for notify script {use.argv[0]} -"
                                   " ignoring")
                return None
            if self.policy.defaultMissing and not self._defaultReported:
                self._defaultReported = True
                self.add(CONFIG_ERROR, f"Unable to set default user {DEFAULT_USER} for script")
            if use.role == ROLE_TRACK:
                self.add(TRACK, f"Unable to set default user for vrrp script {use.label} -"
                                " removing")
                self.untracked(use.label)
            elif use.role == ROLE_MISC:
                self.add(CONFIG_ERROR, f"Unable to set default user for misc script {what} -"
                                       " removing")
            else:
                self.add(NOTE, f"Failed to set default user for notify script {use.argv[0]} -"
                               " ignoring")
            return None
        if not use.user and self.policy.defaultMissing and not self._defaultReported:
            self._defaultReported = True
            self.add(NOTE, f"Script user '{DEFAULT_USER}' does not exist")
        return (os.geteuid() if uid is None else uid, os.getegid() if gid is None else gid)

    def untracked(self, name: str) -> None:
        """
        keepalived removes a vrrp_script whose user cannot be set while
        reading it: the instances and groups tracking it say so.
        """
        for owner in (*getattr(self.config, "vrrpInstances", ()),
                      *getattr(self.config, "syncGroups", ())):
            if any(t.name == name for t in owner.trackScripts):
                self.add(TRACK, f"({owner.name}) track script {name} not found, ignoring...")

    def inspect(self, use: ScriptUse) -> Inspection | None:
        """
        Inspect the file of C{use}, adding keepalived's lines about it.
        """
        if not use.argv:
            self.add(NOTE, f"Unable to parse script '{use.command}' - ignoring")
            return None
        ident = self.identity(use)
        if ident is None:
            return None
        found = self.policy.inspect(use.argv[0], ident[0], ident[1], self.path)
        for note in found.notes:
            self.add(NOTE, note)
        shellTests = use.role != ROLE_NOTIFY
        reason = found.reason(shellTests)
        if reason is not None and reason != "since not executable":
            if use.role == ROLE_TRACK:
                self.add(TRACK, f"Disabling track script {use.label} {reason}")
            elif use.role == ROLE_MISC:
                self.add(NOTE, f"Disabling misc script {shellCommand(use.argv)} {reason}")
        return found


def audit(config: Any, policy: ScriptPolicy, environ: Any = None) -> list[tuple[str, str]]:
    """
    keepalived's findings about the scripts of C{config} under C{policy}
    (see the module docstring).

    @param environ: the environment whose C{PATH} is searched (default
        C{os.environ}).
    @return: C{(kind, line)} pairs, kind one of L{CONFIG_ERROR},
        L{SECURITY}, L{NOTE}, L{TRACK}.
    """
    auditor = _Auditor(config, policy, os.environ if environ is None else environ)
    if policy.error is not None and not policy.defaultMissing:
        auditor.add(CONFIG_ERROR, "Error setting global script uid/gid")
    group: str | None = None
    exists = insecure = False

    def summary() -> None:
        # keepalived's summary closes each process's checks
        if group is not None and exists and not policy.enabled:
            auditor.add(SECURITY, _VIOLATION[group] + (" There are insecure scripts."
                                                       if insecure else ""))

    for use in configuredScripts(config):
        if use.group != group:
            summary()
            group, exists, insecure = use.group, False, False
        found = auditor.inspect(use)
        if found is not None:
            exists = exists or found.isScript
            insecure = insecure or found.insecure
    summary()
    return auditor.found


def auditMessages(config: Any, policy: ScriptPolicy, environ: Any = None) -> list[str]:
    """
    The lines of L{audit} logged at start: all but the disabled
    C{vrrp_script}s (the script service logs those).
    """
    return [line for kind, line in audit(config, policy, environ) if kind != TRACK]
