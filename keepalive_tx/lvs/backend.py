# -*- test-case-name: tests.unit.test_lvs_backend -*-
"""
The IPVS edge: L{IIPVSBackend} (what any IPVS implementation offers), an
in-memory L{MemoryIPVSBackend} (the unit-test fake, with kernel-like
errors), L{DryRunBackend} (logs what it would do: used where the kernel
has no IPVS), and L{IPVSTable}, which carries out the pools' actions on a
backend, reconciles with the kernel at start, remembers which services are
ours and removes them at stop.

Nothing here ever flushes IPVS: services we did not create are never
touched.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Mapping
from ipaddress import ip_address

from twisted.logger import Logger
from zope.interface import Interface, implementer

from keepalive_tx.lvs.table import (
    Action,
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    EditService,
    ServiceEntry,
    ServiceKey,
    ServiceSpec,
    Table,
    reconcile,
)


class IPVSError(Exception):
    """
    An IPVS request failed.

    @ivar code: the errno (positive): C{EEXIST}, C{ESRCH} (no such
        service), C{ENOENT} (no such destination), C{EINVAL}, ...
    """

    def __init__(self, code: int, message: str = "") -> None:
        self.code = code
        super().__init__(code, message or os.strerror(code))

    def __str__(self) -> str:
        return f"{self.args[1]} [{errno.errorcode.get(self.code, self.code)}]"


class IIPVSBackend(Interface):
    """
    Programs the kernel's IPVS table.  Every method is a short synchronous
    call and raises L{IPVSError} on failure.  There is deliberately no
    flush.
    """

    def services() -> list[ServiceSpec]:
        """
        Every service the kernel holds (ours or not).
        """

    def destinations(service: ServiceKey) -> list[DestSpec]:
        """
        The destinations of C{service}.
        """

    def addService(spec: ServiceSpec) -> None:
        """
        Create a service (C{EEXIST} if present).
        """

    def editService(spec: ServiceSpec) -> None:
        """
        Set every attribute of an existing service to C{spec}'s.
        """

    def deleteService(service: ServiceKey) -> None:
        """
        Delete a service and its destinations (C{ESRCH} if absent).
        """

    def addDest(service: ServiceKey, dest: DestSpec) -> None:
        """
        Add a destination (C{EEXIST} if present).
        """

    def editDest(service: ServiceKey, dest: DestSpec) -> None:
        """
        Set every attribute of an existing destination to C{dest}'s.
        """

    def deleteDest(service: ServiceKey, dest: DestKey) -> None:
        """
        Delete a destination (C{ENOENT} if absent).
        """


@implementer(IIPVSBackend)
class MemoryIPVSBackend:
    """
    An IPVS table in memory, with the kernel's error codes.

    @ivar table: service key → L{ServiceEntry} (destinations in a dict).
    @ivar calls: every call made, as C{(methodName, *args)}.
    @ivar failures: C{methodName} → errno to raise on the next calls of it
        (tests set it).
    """

    def __init__(self) -> None:
        self.table: dict[ServiceKey, ServiceEntry] = {}
        self.calls: list[tuple] = []
        self.failures: dict[str, int] = {}

    def _call(self, name: str, *args: object) -> None:
        self.calls.append((name, *args))
        code = self.failures.get(name)
        if code is not None:
            raise IPVSError(code)

    def _entry(self, key: ServiceKey) -> ServiceEntry:
        entry = self.table.get(key)
        if entry is None:
            raise IPVSError(errno.ESRCH, f"no service {key}")
        return entry

    def services(self) -> list[ServiceSpec]:
        self._call("services")
        return [e.spec for e in self.table.values()]

    def destinations(self, service: ServiceKey) -> list[DestSpec]:
        self._call("destinations", service)
        return list(self._entry(service).destinations.values())

    def addService(self, spec: ServiceSpec) -> None:
        self._call("addService", spec)
        if spec.key in self.table:
            raise IPVSError(errno.EEXIST, f"service {spec.key} exists")
        self.table[spec.key] = ServiceEntry(spec.normalized(), {})

    def editService(self, spec: ServiceSpec) -> None:
        self._call("editService", spec)
        entry = self._entry(spec.key)
        self.table[spec.key] = ServiceEntry(spec.normalized(), entry.destinations)

    def deleteService(self, service: ServiceKey) -> None:
        self._call("deleteService", service)
        self._entry(service)
        del self.table[service]

    def addDest(self, service: ServiceKey, dest: DestSpec) -> None:
        self._call("addDest", service, dest)
        dests = self._entry(service).destinations
        if dest.key in dests:
            raise IPVSError(errno.EEXIST, f"destination {dest.key} exists")
        dests[dest.key] = dest  # type: ignore[index]

    def editDest(self, service: ServiceKey, dest: DestSpec) -> None:
        self._call("editDest", service, dest)
        dests = self._entry(service).destinations
        if dest.key not in dests:
            raise IPVSError(errno.ENOENT, f"no destination {dest.key}")
        dests[dest.key] = dest  # type: ignore[index]

    def deleteDest(self, service: ServiceKey, dest: DestKey) -> None:
        self._call("deleteDest", service, dest)
        dests = self._entry(service).destinations
        if dest not in dests:
            raise IPVSError(errno.ENOENT, f"no destination {dest}")
        del dests[dest]  # type: ignore[attr-defined]


@implementer(IIPVSBackend)
class DryRunBackend(MemoryIPVSBackend):
    """
    Used where the kernel has no IPVS: logs each change it would make and
    keeps the resulting table in memory (so reconciliation and status
    output stay consistent), so the daemon goes on checking and reporting.
    """

    log = Logger()

    def _call(self, name: str, *args: object) -> None:
        # no call list: a dry run lasts as long as the daemon (and the
        # status API reads the table on every request)
        if name not in ("services", "destinations"):
            self.log.info(
                "IPVS (dry run): {call} {args}",
                call=name,
                args=" ".join(_describe(a) for a in args),
            )


def _describe(value: object) -> str:
    if isinstance(value, ServiceSpec):
        text = f"{value.key} {value.scheduler}"
        if value.persistenceTimeout:
            text += f" persistent {value.persistenceTimeout}"
        return text
    if isinstance(value, DestSpec):
        return f"{value.key} {value.method} weight {value.weight}"
    return str(value)


def describeAction(action: Action) -> str:
    """
    A keepalived-like log line for C{action}.
    """
    if isinstance(action, AddService):
        return f"Adding virtual server {action.spec.key}"
    if isinstance(action, EditService):
        return f"Updating virtual server {action.spec.key}"
    if isinstance(action, DeleteService):
        return f"Removing virtual server {action.key}"
    if isinstance(action, AddDest):
        verb = "Enabling" if action.dest.weight else "Adding (disabled)"
        return f"{verb} service {action.dest.key} to VS {action.service}"
    if isinstance(action, EditDest):
        verb = "Disabling" if action.dest.weight == 0 else "Setting weight"
        return f"{verb} service {action.dest.key} of VS {action.service} (weight {action.dest.weight})"
    return f"Removing service {action.dest} from VS {action.service}"


def readTable(backend: IIPVSBackend) -> dict[ServiceKey, ServiceEntry]:
    """
    The whole table a backend holds.
    """
    table = {}
    for spec in backend.services():
        try:
            dests = backend.destinations(spec.key)
        except IPVSError as e:
            if e.code == errno.ESRCH:  # vanished meanwhile
                continue
            raise
        table[spec.key] = ServiceEntry(spec, {d.key: d for d in dests})
    return table


def _keyToJSON(key: ServiceKey) -> dict:
    return {
        "family": key.family,
        "protocol": key.protocol,
        "address": None if key.address is None else str(key.address),
        "port": key.port,
        "fwmark": key.fwmark,
    }


def _keyFromJSON(data: Mapping) -> ServiceKey:
    address = data.get("address")
    return ServiceKey(
        int(data["family"]),
        data.get("protocol"),
        None if address is None else ip_address(address),
        int(data.get("port", 0)),
        int(data.get("fwmark", 0)),
    )


class IPVSTable:
    """
    Carries out pool actions on a backend and keeps track of the services
    we own.

    @ivar owned: the service keys we created or took over.
    @ivar recordPath: where the owned keys are recorded (JSON; written
        after each change of C{owned}), so that a later run can remove
        services a crashed run left behind; C{None}: no record.
    """

    log = Logger()

    def __init__(self, backend: IIPVSBackend, recordPath: str | None = None) -> None:
        self.backend = backend
        self.recordPath = recordPath
        self.owned: set[ServiceKey] = set()
        self.errors = 0

    def _readRecord(self) -> set[ServiceKey]:
        if self.recordPath is None:
            return set()
        try:
            with open(self.recordPath) as f:
                return {_keyFromJSON(item) for item in json.load(f)}
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.log.warn("Ignoring unreadable IPVS record {path}: {error}", path=self.recordPath, error=e)
            return set()

    def _writeRecord(self) -> None:
        if self.recordPath is None:
            return
        try:
            tmp = self.recordPath + ".tmp"
            with open(tmp, "w") as f:
                json.dump([_keyToJSON(k) for k in sorted(self.owned, key=ServiceKey.sortKey)], f)
            os.replace(tmp, self.recordPath)
        except OSError as e:
            self.log.warn("Cannot record IPVS services in {path}: {error}", path=self.recordPath, error=e)

    def start(self, wanted: Table, owned: Iterable[ServiceKey] = ()) -> list[Action]:
        """
        Make the kernel hold C{wanted}: services of C{wanted} are corrected
        in place (no flush, no connection loss); services recorded as ours
        (by a previous run, or listed in C{owned}) but no longer wanted are
        removed; all others are left alone.

        @return: the actions carried out.
        """
        try:
            kernel = readTable(self.backend)
        except IPVSError as e:
            self.log.error("IPVS: cannot read the table: {error}", error=str(e))
            kernel = {}
        mine = self._readRecord() | set(owned)
        actions = reconcile(wanted, kernel, mine)
        self.owned = set(wanted)
        self._writeRecord()
        self.apply(actions)
        return actions

    def apply(self, actions: Iterable[Action]) -> int:
        """
        Carry out C{actions} in order; failures are logged and counted,
        never raised.  Adding what exists becomes an edit; deleting what is
        gone is success.

        @return: the number of failed actions.
        """
        failed = 0
        changed = False
        for action in actions:
            try:
                self._apply(action)
            except IPVSError as e:
                failed += 1
                self.log.error("IPVS: {what} failed: {error}", what=describeAction(action), error=str(e))
            if isinstance(action, AddService) and action.spec.key not in self.owned:
                self.owned.add(action.spec.key)
                changed = True
            elif isinstance(action, DeleteService) and action.key in self.owned:
                self.owned.discard(action.key)
                changed = True
        if changed:
            self._writeRecord()
        self.errors += failed
        return failed

    def _apply(self, action: Action) -> None:
        b = self.backend
        if isinstance(action, AddService):
            try:
                b.addService(action.spec)
            except IPVSError as e:
                if e.code != errno.EEXIST:
                    raise
                b.editService(action.spec)
        elif isinstance(action, EditService):
            b.editService(action.spec)
        elif isinstance(action, DeleteService):
            try:
                b.deleteService(action.key)
            except IPVSError as e:
                if e.code != errno.ESRCH:
                    raise
        elif isinstance(action, AddDest):
            try:
                b.addDest(action.service, action.dest)
            except IPVSError as e:
                if e.code != errno.EEXIST:
                    raise
                b.editDest(action.service, action.dest)
        elif isinstance(action, EditDest):
            b.editDest(action.service, action.dest)
        elif isinstance(action, DeleteDest):
            try:
                b.deleteDest(action.service, action.dest)
            except IPVSError as e:
                if e.code not in (errno.ENOENT, errno.ESRCH):
                    raise

    def snapshot(self) -> dict:
        """
        For the status API, without I/O: the services we own and, in a dry
        run, the table as the daemon keeps it in memory (the kernel's own
        table is for C{ipvsadm -Ln} to show: reading it here would be a
        netlink dump on every request): C{{"dry_run", "owned": [service],
        "services": [{"service", "scheduler", "destinations":
        [{"destination", "method", "weight"}]}]}} (C{"services"} only in a
        dry run).
        """
        owned = sorted(self.owned, key=ServiceKey.sortKey)
        result: dict = {"dry_run": isinstance(self.backend, DryRunBackend),
                        "owned": [str(k) for k in owned]}
        if not result["dry_run"]:
            return result
        table = readTable(self.backend)  # memory: cannot fail
        result["services"] = [{
            "service": str(key),
            "scheduler": table[key].spec.scheduler,
            "destinations": [{"destination": str(d.key), "method": d.method, "weight": d.weight}
                             for d in sorted(table[key].destinations.values(),
                                             key=lambda d: d.key.sortKey())],
        } for key in owned if key in table]
        return result

    def stop(self) -> list[Action]:
        """
        Remove every service we own that the kernel still holds (each
        destination first), then forget them.  Call after the pools'
        own L{stop<keepalive_tx.lvs.pool.Pool.stop>} actions: this is the
        safety net.
        """
        actions: list[Action] = []
        try:
            present = {s.key for s in self.backend.services()}
        except IPVSError as e:
            self.log.error("IPVS: cannot read the table: {error}", error=str(e))
            present = set(self.owned)
        for key in sorted(self.owned & present, key=ServiceKey.sortKey):
            try:
                dests = self.backend.destinations(key)
            except IPVSError:
                dests = []
            actions.extend(DeleteDest(key, d.key) for d in dests)
            actions.append(DeleteService(key))
        self.apply(actions)
        self.owned.clear()
        self._writeRecord()
        return actions
