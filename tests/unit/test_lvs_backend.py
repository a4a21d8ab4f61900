"""
Tests for L{keepalive_tx.lvs.backend}: the in-memory and dry-run backends
and L{IPVSTable} (reconcile at start, ownership record, stop).
"""

from __future__ import annotations

import errno
import json
import os
from ipaddress import ip_address

from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from keepalive_tx.lvs.backend import (
    DryRunBackend,
    IIPVSBackend,
    IPVSError,
    IPVSTable,
    MemoryIPVSBackend,
    describeAction,
    readTable,
)
from keepalive_tx.lvs.pool import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    DestKey,
    DestSpec,
    EditDest,
    ServiceEntry,
    ServiceKey,
    ServiceSpec,
)

A = ip_address
KEY = ServiceKey(4, "TCP", A("192.0.2.100"), 80)
FOREIGN = ServiceKey(4, "TCP", A("203.0.113.5"), 80)
STALE = ServiceKey(6, "UDP", A("2001:db8::7"), 53)


def dest(last: int, weight: int = 1) -> DestSpec:
    return DestSpec(DestKey(A(f"192.0.2.{last}"), 8080), weight)


class MemoryBackendTests(SynchronousTestCase):
    def test_interface(self) -> None:
        """
        Both backends provide L{IIPVSBackend}.
        """
        verifyObject(IIPVSBackend, MemoryIPVSBackend())
        verifyObject(IIPVSBackend, DryRunBackend())

    def test_kernelErrors(self) -> None:
        """
        Duplicates give EEXIST, a missing service ESRCH, a missing
        destination ENOENT, like the kernel.
        """
        b = MemoryIPVSBackend()
        b.addService(ServiceSpec(KEY))
        self.assertEqual(self.assertRaises(IPVSError, b.addService, ServiceSpec(KEY)).code, errno.EEXIST)
        self.assertEqual(self.assertRaises(IPVSError, b.deleteService, FOREIGN).code, errno.ESRCH)
        self.assertEqual(self.assertRaises(IPVSError, b.addDest, FOREIGN, dest(1)).code, errno.ESRCH)
        b.addDest(KEY, dest(1))
        self.assertEqual(self.assertRaises(IPVSError, b.addDest, KEY, dest(1)).code, errno.EEXIST)
        self.assertEqual(self.assertRaises(IPVSError, b.editDest, KEY, dest(2)).code, errno.ENOENT)
        self.assertEqual(self.assertRaises(IPVSError, b.deleteDest, KEY, dest(2).key).code, errno.ENOENT)
        self.assertIn("ESRCH", str(IPVSError(errno.ESRCH)))

    def test_dryRunLogs(self) -> None:
        """
        The dry-run backend logs every change and keeps the table.
        """
        b = DryRunBackend()
        with capturedLogs() as events:
            b.addService(ServiceSpec(KEY, "rr", persistenceTimeout=60))
            b.addDest(KEY, dest(1, 3))
            b.services()
        texts = [e["log_format"].format(**e) for e in events]
        self.assertEqual(
            texts,
            [
                "IPVS (dry run): addService [192.0.2.100]:tcp:80 rr persistent 60",
                "IPVS (dry run): addDest [192.0.2.100]:tcp:80 [192.0.2.1]:8080 NAT weight 3",
            ],
        )
        self.assertEqual(list(readTable(b)[KEY].destinations), [dest(1).key])

    def test_dryRunKeepsNoCallList(self) -> None:
        """
        A dry run lasts as long as the daemon and its table is read on every
        status request: it does not accumulate a record of calls.
        """
        b = DryRunBackend()
        b.addService(ServiceSpec(KEY, "rr"))
        for _ in range(100):
            b.services()
            b.destinations(KEY)
        self.assertEqual(b.calls, [])


class IPVSTableTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.backend = MemoryIPVSBackend()
        self.record = self.mktemp()

    def test_snapshotDryRun(self) -> None:
        """
        In a dry run, L{IPVSTable.snapshot} gives the services we own as
        the daemon keeps them (destinations in address order); foreign
        services are left out.
        """
        backend = DryRunBackend()
        backend.addService(ServiceSpec(FOREIGN, "rr"))
        table = IPVSTable(backend)
        table.start(self.wanted(dest(2, 3), dest(1)))
        table.apply([DeleteDest(KEY, dest(2).key)])
        self.assertEqual(table.snapshot(), {
            "dry_run": True,
            "owned": ["[192.0.2.100]:tcp:80"],
            "services": [{
                "service": "[192.0.2.100]:tcp:80",
                "scheduler": "wrr",
                "destinations": [
                    {"destination": "[192.0.2.1]:8080", "method": "NAT", "weight": 1},
                ],
            }],
        })

    def test_snapshotKernel(self) -> None:
        """
        With a kernel backend the snapshot names the services we own and
        reads nothing from the kernel.
        """
        table = IPVSTable(self.backend)
        table.start(self.wanted(dest(1)))
        calls = len(self.backend.calls)
        self.backend.failures["services"] = errno.EPERM
        self.assertEqual(table.snapshot(), {"dry_run": False, "owned": ["[192.0.2.100]:tcp:80"]})
        self.assertEqual(len(self.backend.calls), calls)

    def wanted(self, *dests: DestSpec) -> dict:
        return {KEY: ServiceEntry(ServiceSpec(KEY, "wrr"), {d.key: d for d in dests})}

    def test_startReconciles(self) -> None:
        """
        At start a foreign service is untouched, a stale one recorded by a
        previous run is removed, a wanted one is corrected in place.
        """
        b = self.backend
        b.addService(ServiceSpec(FOREIGN, "rr"))
        b.addDest(FOREIGN, dest(9))
        b.addService(ServiceSpec(STALE, "rr"))
        b.addService(ServiceSpec(KEY, "rr"))
        b.addDest(KEY, dest(50))
        b.addDest(KEY, dest(1, 7))
        with open(self.record, "w") as f:
            json.dump([{"family": 6, "protocol": "UDP", "address": "2001:db8::7", "port": 53, "fwmark": 0}], f)
        table = IPVSTable(b, recordPath=self.record)
        table.start(self.wanted(dest(1, 2), dest(2)))
        self.assertEqual(set(b.table), {FOREIGN, KEY})
        self.assertEqual(b.table[FOREIGN].destinations, {dest(9).key: dest(9)})
        self.assertEqual(b.table[KEY].spec.scheduler, "wrr")
        self.assertEqual(b.table[KEY].destinations, {dest(1).key: dest(1, 2), dest(2).key: dest(2)})
        self.assertEqual(table.owned, {KEY})
        with open(self.record) as f:
            self.assertEqual(
                json.load(f), [{"family": 4, "protocol": "TCP", "address": "192.0.2.100", "port": 80, "fwmark": 0}]
            )

    def test_unrecordedNotRemoved(self) -> None:
        """
        Without a record, a service not wanted is never removed.
        """
        self.backend.addService(ServiceSpec(STALE, "rr"))
        IPVSTable(self.backend).start(self.wanted())
        self.assertIn(STALE, self.backend.table)

    def test_applyTolerates(self) -> None:
        """
        Adding what exists edits it; deleting what is gone succeeds; other
        failures are logged and counted, and the rest still runs.
        """
        table = IPVSTable(self.backend)
        actions = [
            AddService(ServiceSpec(KEY, "rr")),
            AddService(ServiceSpec(KEY, "wlc")),
            AddDest(KEY, dest(1)),
            AddDest(KEY, dest(1, 5)),
            DeleteDest(KEY, dest(2).key),
            EditDest(KEY, dest(3)),
            DeleteService(FOREIGN),
        ]
        with capturedLogs() as events:
            self.assertEqual(table.apply(actions), 1)
        self.assertEqual(self.backend.table[KEY].spec.scheduler, "wlc")
        self.assertEqual(self.backend.table[KEY].destinations[dest(1).key].weight, 5)
        self.assertEqual(len(events), 1)
        self.assertIn("192.0.2.3", events[0]["what"])
        self.assertEqual(table.errors, 1)
        self.assertEqual(table.owned, {KEY})

    def test_stopRemovesOwnedOnly(self) -> None:
        """
        Stop removes every service we own, destinations first, and empties
        the record; foreign services stay.
        """
        self.backend.addService(ServiceSpec(FOREIGN, "rr"))
        table = IPVSTable(self.backend, recordPath=self.record)
        table.start(self.wanted(dest(1)))
        self.assertEqual(table.stop(), [DeleteDest(KEY, dest(1).key), DeleteService(KEY)])
        self.assertEqual(set(self.backend.table), {FOREIGN})
        with open(self.record) as f:
            self.assertEqual(json.load(f), [])

    def test_badRecordIgnored(self) -> None:
        """
        An unreadable record is logged and ignored.
        """
        with open(self.record, "w") as f:
            f.write("{nope")
        with capturedLogs() as events:
            IPVSTable(self.backend, recordPath=self.record).start(self.wanted())
        self.assertEqual(len(events), 1)
        self.assertIn(KEY, self.backend.table)

    def test_unwritableRecord(self) -> None:
        """
        A record that cannot be written is logged, nothing else fails.
        """
        path = os.path.join(self.mktemp(), "missing", "record.json")
        with capturedLogs() as events:
            IPVSTable(self.backend, recordPath=path).start(self.wanted())
        self.assertEqual(len(events), 1)
        self.assertIn(KEY, self.backend.table)

    def test_describe(self) -> None:
        """
        Log lines name the change like keepalived.
        """
        self.assertEqual(
            describeAction(DeleteDest(KEY, dest(1).key)),
            "Removing service [192.0.2.1]:8080 from VS [192.0.2.100]:tcp:80",
        )
        self.assertEqual(
            describeAction(EditDest(KEY, dest(1, 0))),
            "Disabling service [192.0.2.1]:8080 of VS [192.0.2.100]:tcp:80 (weight 0)",
        )
