"""
Acceptance: keepalived's own sample configurations load like keepalived loads them
(with a warning for each keyword keepalive_tx does not act on, listed here).
"""

from __future__ import annotations

import glob
import os
import re

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from keepalive_tx.config import loadConfig
from keepalive_tx.config.errors import Severity

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "keepalived-samples")

# File -> the ERROR-or-worse diagnostics keepalived also produces (see
# docs/keepalived-compat.md, "Quirks of keepalived's code kept on purpose"),
# as (line, message fragment).
_ETC_ERRORS = [
    (15, "vrrp_garp_interval: number '0' outside range"),  # explicit 0 refused
    (16, "vrrp_gna_interval: number '0' outside range"),
    (20, "(VI_1) State MASTER must match being address owner"),
    (25, "(VI_1) Strict mode does not support authentication. Ignoring."),
]
EXPECTED = {
    "keepalived.conf.vrrp.lvs_syncd": [
        (4, "Unknown keyword 'VI_2'"),  # legacy sync group
        (5, "Unknown keyword 'VI_3'"),
        (3, "Sync group VG1 has no virtual router(s)"),
        (11, "(VI_1) Specifying lvs_sync_daemon_interface against a vrrp is deprecated."),
        (11, "Please use global lvs_sync_daemon"),
    ],
    "keepalived.conf.vrrp.rules": [
        (11, "Invalid 'to' prefix '192.168.100./24'"),
        (26, "Invalid 'to' prefix '192.168.200./24'"),
    ],
    "extra/keepalived/etc/keepalived/keepalived.conf": _ETC_ERRORS,
    "extra/keepalived/etc/keepalived/keepalived.conf.sample.in": _ETC_ERRORS + [
        (19, "accept mode for VRRP version 2 does not comply with RFC3768 - resetting"),
    ],
}


# File -> the keywords it uses that keepalive_tx reads but does not act on
# (each reported once, as a warning: README, "Not implemented"). Entries
# whose keyword gets implemented drop out by themselves (see
# _notImplemented).
NOT_IMPLEMENTED_USES = {
    "keepalived.conf.conditional_conf": ["net_namespace", "use_vmac"],
    "keepalived.conf.vrrp.lvs_syncd": ["lvs_sync_daemon_interface"],
    "extra/keepalived/etc/keepalived/keepalived.conf": ["vrrp_skip_check_adv_addr", "vrrp_strict"],
    "extra/keepalived/etc/keepalived/keepalived.conf.sample.in": [
        "vrrp_skip_check_adv_addr", "vrrp_strict"],
}


def _notImplemented(name: str) -> list[str]:
    """
    The keywords of L{NOT_IMPLEMENTED_USES} for C{name} still declared not
    implemented.
    """
    from keepalive_tx.config.unimplemented import NOT_IMPLEMENTED

    declared = {kw for kws in NOT_IMPLEMENTED.values() for kw in kws}
    return [kw for kw in NOT_IMPLEMENTED_USES.get(name, []) if kw in declared]


def sampleFiles() -> list[str]:
    files = sorted(os.path.relpath(p, SAMPLES) for p in glob.glob(os.path.join(SAMPLES, "keepalived.conf.*")))
    return files + [
        "extra/docker/keepalived.conf",
        "extra/keepalived/etc/keepalived/keepalived.conf",
        "extra/keepalived/etc/keepalived/keepalived.conf.sample.in",
    ]


class SampleTests(SynchronousTestCase):
    """
    Every sample loads with no error except the diagnoses keepalived makes too.
    """

    def check(self, name: str) -> None:
        path = os.path.join(SAMPLES, name)
        if not os.path.exists(path):
            raise SkipTest(f"{path} not available")
        result = loadConfig(path, "high")
        got = [(d.location.line if d.location else None, d.message) for d in result.diagnostics
               if d.severity >= Severity.ERROR or "Unknown keyword" in d.message]
        for d in result.diagnostics:
            if d.location is not None:
                self.assertEqual(d.location.file, path, str(d))
        expected = EXPECTED.get(name, [])
        unmatched = list(got)
        for line, fragment in expected:
            hit = [g for g in unmatched if g[0] == line and fragment in g[1]]
            self.assertTrue(hit, f"{name}: expected diagnostic at line {line} containing {fragment!r}; got {got}")
            unmatched.remove(hit[0])
        self.assertEqual(unmatched, [], f"{name}: unexpected diagnostics")
        warned = [m.group(1) for d in result.diagnostics
                  for m in [re.match(r"'([^']+)' is not implemented by keepalive_tx", d.message)] if m]
        self.assertEqual(warned, _notImplemented(name), f"{name}: not-implemented keywords")

    def test_allSamplesListed(self) -> None:
        """
        The sample directory holds the files the acceptance list names.
        """
        if not os.path.isdir(SAMPLES):
            raise SkipTest("samples not available")
        self.assertGreaterEqual(len(sampleFiles()), 28)

    def test_vrrpContents(self) -> None:
        """
        Spot-check models made from samples.
        """
        path = os.path.join(SAMPLES, "keepalived.conf.vrrp.sync")
        if not os.path.exists(path):
            raise SkipTest("samples not available")
        m = loadConfig(path).model
        self.assertEqual([len(g.members) for g in m.syncGroups], [7, 2])
        self.assertEqual(len(m.vrrpInstances), 9)
        routes = loadConfig(os.path.join(SAMPLES, "keepalived.conf.vrrp.routes")).model
        self.assertEqual(len(routes.staticRoutes), 5)
        self.assertEqual(str(routes.staticRoutes[0].src), "192.168.100.1")
        vr = routes.vrrpInstances[0].virtualRoutes
        self.assertEqual(vr[5].type, "blackhole")
        self.assertEqual((vr[6].destination.prefixlen, vr[6].table), (0, "100"))


def _make(name: str):
    def test(self: SampleTests) -> None:
        self.check(name)

    test.__doc__ = f"{name} loads as keepalived loads it."
    return test


for _name in sampleFiles() if os.path.isdir(SAMPLES) else []:
    setattr(SampleTests, "test_" + _name.replace("/", "_").replace(".", "_").replace("-", "_"), _make(_name))
