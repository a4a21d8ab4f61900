# -*- test-case-name: tests.unit.test_vrrp_track -*-
"""
L{TrackingCoordinator}: connects the trackers of every VRRP instance
(C{track_script}, C{track_file}, weighted C{track_interface},
C{track_process}, C{track_bfd}, and those of its sync group) to the
instance's state machine (keepalived's C{vrrp_track.c}).

C{track_bfd} follows the up/down events of the process's BFD sessions (an
object with C{isUp(name)}, C{subscribe(observer)} and
C{unsubscribe(observer)}, see L{keepalive_tx.bfd.service.BfdService}); a
session counts as down until it has been Up, so a weight-0 C{track_bfd}
holds its instance in FAULT from the start, as keepalived does.

Tracked processes are counted by a L{keepalive_tx.vrrp.processes.ProcessTracker}
(first from a C{/proc} scan when an instance is attached, then from the
kernel's process events, see L{keepalive_tx.net.procevents}).

It subscribes to the L{VrrpScriptService}, watches each used C{track_file}
(inotify, through L{keepalive_tx.check.file.FileChecker}) and receives link
events (C{linkChanged}); after every change it recomputes the instance's
L{keepalive_tx.vrrp.track.TrackingVerdict} and calls
C{machine.setEffectivePriority(total)} and C{machine.setFault(flag, on)} for
the flags that changed.

Instances tracking a weight-0 script wait in INIT, silently, until its first
result (keepalived's C{num_script_init}); members of a sync group wait for
the whole group. Use L{TrackingCoordinator.startInstance} instead of
C{instance.start()}.

Hook API for L{keepalive_tx.vrrp.service.VrrpService}::

    tracking = TrackingCoordinator.fromConfig(reactor, config, linkState=platform.linkUp,
                                              bfd=bfdService)
    tracking.attach(instance)          # after building each instance (before start)
    platform.watchLinks(tracking)      # link events
    tracking.startService()            # in startService, before the instances
    tracking.startInstance(instance)   # instead of instance.start()
    tracking.stopService()             # in stopService, before stopping instances
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

from keepalive_tx.config import model
from keepalive_tx.vrrp.scripts import VrrpScriptService
from keepalive_tx.vrrp.track import (
    BFD,
    FILE,
    INTERFACE,
    PROCESS,
    SCRIPT,
    InstanceTracking,
    TrackingVerdict,
    trackersFor,
)

__all__ = ["TrackingCoordinator", "initTrackFile"]


def initTrackFile(trackFile: model.TrackFile) -> None:
    """
    C{init_file [VALUE] [overwrite]}: create the file with VALUE (default 0)
    when it is absent, or always with C{overwrite} (regular files only).
    Blocking, but a tiny local write done once at startup.
    """
    if not trackFile.initFile or not trackFile.file:
        return
    path = trackFile.file
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        TrackingCoordinator.log.error("Cannot initialise track file {name}: {e}",
                                      name=trackFile.name, e=e)
        return
    if st is not None:
        if not trackFile.initOverwrite:
            return
        import stat

        if not stat.S_ISREG(st.st_mode):
            TrackingCoordinator.log.error(
                "Cannot initialise track file {name} - it is not a regular file",
                name=trackFile.name)
            return
    try:
        with open(path, "w") as f:
            f.write(f"{trackFile.initValue}\n")
    except OSError:
        TrackingCoordinator.log.error("Unable to initialise track file {name}",
                                      name=trackFile.name)


class _Tracked:
    """
    One attached instance: its tracking state and what was last applied.
    """

    def __init__(self, instance: Any, tracking: InstanceTracking, group: str | None) -> None:
        self.instance = instance
        self.tracking = tracking
        self.group = group
        self.appliedFaults: frozenset[str] = frozenset()
        self.appliedTotal: int | None = None
        self.held = False
        self.started = False


class TrackingCoordinator(Service):
    """
    Drives every attached instance's priority and fault flags from its
    trackers.

    @ivar scripts: the L{VrrpScriptService}.
    @ivar watchers: track-file watchers by track_file name.
    """

    log = Logger()
    name = "vrrp_tracking"

    def __init__(
        self,
        reactor: Any,
        config: model.Config,
        *,
        scripts: VrrpScriptService | None = None,
        linkState: Callable[[str], bool | None] | None = None,
        fileWatcherFactory: Callable[[model.TrackFile], Any] | None = None,
        processTracker: Any = None,
        processWatcherFactory: Callable[[Any], Any] | None = None,
        bfd: Any = None,
        previousScripts: VrrpScriptService | None = None,
    ) -> None:
        """
        @param scripts: the script service (default: built from C{config}).
        @param linkState: C{ifname -> up} (C{None}: no such interface,
            counted as down); default: every interface is up.
        @param fileWatcherFactory: builds the watcher of one track_file (an
            object with C{read() -> int}, C{value}, C{start(onResult)},
            C{stop()}); default a L{keepalive_tx.check.file.FileChecker}.
        @param processTracker: the L{keepalive_tx.vrrp.processes.ProcessTracker}
            (default: one for the used C{vrrp_track_process}es, reading
            C{/proc}, built when first needed).
        @param processWatcherFactory: C{tracker -> watcher} with C{start()}
            and C{stop()} feeding the tracker (default
            L{keepalive_tx.net.procevents.ProcessWatcher}).
        @param bfd: the BFD sessions (C{isUp}, C{subscribe}, C{unsubscribe});
            L{None}: no BFD runs, every C{track_bfd} stays down.
        @param previousScripts: at a reload, the script service of the
            configuration replaced: its scripts' states are carried over
            (L{VrrpScriptService.carryFrom}).  Track files and tracked
            processes need nothing carried: a file is read and the
            processes are counted when an instance is attached.
        """
        self.reactor = reactor
        self.config = config
        self.scripts = scripts if scripts is not None else VrrpScriptService.fromConfig(
            reactor, config)
        if previousScripts is not None:
            self.scripts.carryFrom(previousScripts)
        self.linkState = linkState or (lambda ifname: True)
        self.fileWatcherFactory = fileWatcherFactory or self._defaultWatcher
        disabled = getattr(self.scripts, "disabled", {})
        # a disabled script (keepalived: insecure or not runnable) is not tracked
        self._scriptConfigs = {s.name: s for s in config.vrrpScripts if s.name not in disabled}
        self._fileConfigs = {f.name: f for f in config.trackFiles}
        self._processConfigs = {p.name: p for p in config.trackProcesses}
        self._bfdConfigs = {b.name: b for b in config.bfdInstances if b.forVrrp}
        self.bfd = bfd
        self.processes = processTracker
        self._processScanned = processTracker is not None
        self.processWatcherFactory = processWatcherFactory
        self.processWatcher: Any = None
        if processTracker is not None:
            processTracker.subscribe(self.processChanged)
        self._groupConfigs = {g.name: g for g in config.syncGroups}
        self.watchers: dict[str, Any] = {}
        self._tracked: dict[str, _Tracked] = {}
        self.scripts.subscribe(self.scriptChanged)

    @classmethod
    def fromConfig(cls, reactor: Any, config: model.Config, **kw: Any) -> TrackingCoordinator:
        return cls(reactor, config, **kw)

    def _defaultWatcher(self, trackFile: model.TrackFile) -> Any:
        from keepalive_tx.check.file import FileChecker

        return FileChecker(self.reactor, trackFile.file or "", weight=1, reverse=False,
                           name=trackFile.name)

    # -- attaching ------------------------------------------------------------

    def attach(self, instance: Any) -> None:
        """
        Track C{instance} (a L{keepalive_tx.vrrp.instance.VrrpInstance}):
        apply its trackers' current state to its machine now. Call before
        the instance starts.
        """
        config: model.VrrpInstanceConfig = instance.config
        group = self._groupConfigs.get(config.syncGroup) if config.syncGroup else None
        entries = trackersFor(config, group, self._scriptConfigs, self._fileConfigs,
                              self._processConfigs, self._bfdConfigs)
        handled = getattr(instance, "trackedInterfaces", None)
        if handled is not None:
            # Interfaces whose loss the instance already turns into FAULT itself.
            own = handled()
            entries = [e for e in entries if not (e.kind == INTERFACE and e.name in own)]
        tracking = InstanceTracking(config.priority, entries)
        for entry in entries:
            if entry.kind == SCRIPT:
                waited = getattr(self.scripts, "waited", None)
                tracking.observe(SCRIPT, entry.name, self.scripts.state(entry.name),
                                 wait=waited is None or waited(entry.name))
            elif entry.kind == FILE:
                tracking.observe(FILE, entry.name, self._watcher(entry.name).value)
            elif entry.kind == INTERFACE:
                tracking.observe(INTERFACE, entry.name, self.linkState(entry.name) is True)
            elif entry.kind == PROCESS:
                tracking.observe(PROCESS, entry.name, self._processTracker().state(entry.name))
            elif entry.kind == BFD:
                tracking.observe(BFD, entry.name, self.bfd is not None and self.bfd.isUp(entry.name))
        tracked = self._tracked[instance.name] = _Tracked(
            instance, tracking, config.syncGroup)
        self._apply(tracked)

    def _processTracker(self) -> Any:
        """
        The process tracker, with its first C{/proc} scan done.
        """
        if self.processes is None:
            from keepalive_tx.net.procevents import readProcess
            from keepalive_tx.vrrp.processes import ProcessSpec, ProcessTracker

            used = self._usedProcesses()
            needCmdline = any(ProcessSpec.fromConfig(p).fullCommand for p in used)
            self.processes = ProcessTracker(
                self.reactor, used, functools.partial(readProcess, cmdline=needCmdline))
            self.processes.subscribe(self.processChanged)
        if not self._processScanned:
            from keepalive_tx.net.procevents import listPids

            self._processScanned = True
            self.processes.scan(listPids())
        return self.processes

    def _usedProcesses(self) -> list[model.TrackProcess]:
        used = {t.name for owner in (*self.config.vrrpInstances, *self.config.syncGroups)
                for t in owner.trackProcesses}
        return [p for p in self.config.trackProcesses if p.name in used]

    def _watcher(self, name: str) -> Any:
        watcher = self.watchers.get(name)
        if watcher is None:
            trackFile = self._fileConfigs[name]
            initTrackFile(trackFile)
            watcher = self.watchers[name] = self.fileWatcherFactory(trackFile)
            watcher.read()
        return watcher

    def verdict(self, name: str) -> TrackingVerdict | None:
        """
        The current verdict of an attached instance.
        """
        tracked = self._tracked.get(name)
        return None if tracked is None else tracked.tracking.verdict()

    # -- running --------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        for name, watcher in self.watchers.items():
            watcher.start(lambda result, name=name, watcher=watcher:
                          self.fileChanged(name, watcher.value))
        self.scripts.startService()
        if self.bfd is not None:
            self.bfd.subscribe(self.bfdChanged)
        if self.processes is not None and self.processes.tracked:
            factory = self.processWatcherFactory
            if factory is None:
                from keepalive_tx.net.procevents import ProcessWatcher

                def factory(tracker: Any) -> Any:
                    return ProcessWatcher(self.reactor, tracker)

            self.processWatcher = factory(self.processes)
            self.processWatcher.start()

    def stopService(self) -> None:
        Service.stopService(self)
        if self.bfd is not None:
            self.bfd.unsubscribe(self.bfdChanged)
        if self.scripts.running:
            self.scripts.stopService()
        for watcher in self.watchers.values():
            watcher.stop()
        if self.processWatcher is not None:
            self.processWatcher.stop()
            self.processWatcher = None
        if self.processes is not None:
            self.processes.stop()

    def startInstance(self, instance: Any) -> None:
        """
        Start C{instance} now, or as soon as the weight-0 scripts it (or its
        sync group) waits for have reported.
        """
        tracked = self._tracked.get(instance.name)
        if tracked is None:
            instance.start()
            return
        tracked.held = True
        self._releaseHeld()

    def _waiting(self, tracked: _Tracked) -> bool:
        if tracked.group is None:
            return bool(tracked.tracking.verdict().pending)
        return any(t.tracking.verdict().pending for t in self._tracked.values()
                   if t.group == tracked.group)

    def _releaseHeld(self) -> None:
        for tracked in list(self._tracked.values()):
            if not tracked.held or self._waiting(tracked):
                continue
            if tracked.group is not None and any(
                    not t.held and not t.started for t in self._tracked.values()
                    if t.group == tracked.group):
                continue  # a sibling has not been asked to start yet
            tracked.held = False
            tracked.started = True
            self._apply(tracked)
            tracked.instance.start()

    # -- inputs ---------------------------------------------------------------

    def scriptChanged(self, name: str, ok: bool) -> None:
        """
        A C{vrrp_script} changed state (L{VrrpScriptService} observer).
        """
        self._observe(SCRIPT, name, ok)

    def processChanged(self, name: str, up: bool) -> None:
        """
        A tracked process gained or lost its quorum.
        """
        self._observe(PROCESS, name, up)

    def bfdChanged(self, name: str, up: bool) -> None:
        """
        A BFD session went up or down (L{keepalive_tx.bfd.service.BfdService}
        observer).
        """
        for tracked in self._tracked.values():
            if tracked.tracking.tracks(BFD, name) and tracked.tracking.observed(BFD, name) != up:
                self.log.info("VRRP_Instance({instance}) Tracked BFD instance {name} is {state}",
                              instance=tracked.instance.name, name=name,
                              state="UP" if up else "DOWN")
        self._observe(BFD, name, up)

    def fileChanged(self, name: str, value: int) -> None:
        """
        A C{track_file}'s value changed.
        """
        self._observe(FILE, name, value)

    def linkChanged(self, ifname: str, ifindex: int, up: bool) -> None:
        """
        L{keepalive_tx.net.links.LinkMonitor} observer.
        """
        self._observe(INTERFACE, ifname, up)

    def _observe(self, kind: str, name: str, value: bool | int | None) -> None:
        for tracked in list(self._tracked.values()):
            if tracked.tracking.observed(kind, name) == value:
                continue
            if tracked.tracking.observe(kind, name, value):
                self._apply(tracked)
        self._releaseHeld()

    def _apply(self, tracked: _Tracked) -> None:
        verdict = tracked.tracking.verdict()
        machine = tracked.instance.machine
        if verdict.total != tracked.appliedTotal:
            tracked.appliedTotal = verdict.total
            machine.setEffectivePriority(verdict.total)
        if verdict.faults == tracked.appliedFaults:
            return
        old, tracked.appliedFaults = tracked.appliedFaults, verdict.faults
        for flag in sorted(old - verdict.faults):
            machine.setFault(flag, False)
        for flag in sorted(verdict.faults - old):
            machine.setFault(flag, True)
