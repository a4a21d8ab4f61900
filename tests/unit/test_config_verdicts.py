"""
keepalived 2.2.7's verdicts on configurations it refuses, skips or warns
about (issue 8 §4), reproduced by the model and the diagnostics: the same
message at the same line, the same C{-t} exit code, the same refusal to
start. tests/integration/test_config_corpus.py checks them against
keepalived itself.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import checkInterfaces, parseText
from keepalive_tx.config.errors import Severity

VI = """vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    %s
    virtual_ipaddress {
        192.0.2.1/24
    }
}
"""

SECURE = "global_defs {\n    enable_script_security\n    script_user root\n}\n"


def parse(text: str):
    return parseText(text, "t.conf", "host")


def msgs(diagnostics, severity=None):
    return [(d.location.line if d.location else None, d.message) for d in diagnostics
            if severity is None or d.severity is severity]


class InterfaceTests(SynchronousTestCase):
    """
    Interfaces that do not exist: keepalived warns where they are named,
    says "Non-existent interface specified in configuration" and does not
    start; C{-t} exits 5 (the warnings are the milder class).
    """

    def test_instanceInterface(self) -> None:
        model = parse(VI % "track_interface {\n eth1\n }").model
        d = checkInterfaces(model, {"lo"})
        self.assertEqual(msgs(d), [
            (2, "WARNING - interface eth0 for vrrp_instance VI_1 doesn't exist"),
            (5, "(VI_1) tracked interface eth1 doesn't exist"),
            (None, "Non-existent interface specified in configuration"),
        ])
        self.assertTrue(d.refusesStart)
        self.assertEqual(d.exitCode(), 5)
        self.assertEqual(d.startExitCode(), 2)
        self.assertEqual(list(checkInterfaces(model, {"lo", "eth0", "eth1"})), [])

    def test_dynamicInterfaces(self) -> None:
        """
        With C{dynamic_interfaces} nothing is reported: the instance waits.
        """
        model = parse("global_defs {\n dynamic_interfaces\n}\n" + VI % "").model
        self.assertEqual(list(checkInterfaces(model, {"lo"})), [])

    def test_addressDevices(self) -> None:
        model = parse(VI.replace("192.0.2.1/24", "192.0.2.1/24 dev eth7\n 192.0.2.2 dev eth8") % "").model
        self.assertEqual(msgs(checkInterfaces(model, {"eth0"}))[:2], [
            (6, "WARNING - interface eth7 for ip address 192.0.2.1/24 doesn't exist"),
            (7, "WARNING - interface eth8 for ip address 192.0.2.2 doesn't exist"),
        ])

    def test_staticAddressDefaultInterface(self) -> None:
        """
        A static address without C{dev} needs default_interface (fatal
        alone: C{-t} exits 4).
        """
        model = parse("static_ipaddress {\n 192.0.2.5/24\n}\n").model
        d = checkInterfaces(model, {"eth1"})
        self.assertEqual(msgs(d), [
            (2, "Static address 192.0.2.5/24 requires either an interface or default interface must exist"),
            (None, "Non-existent interface specified in configuration")])
        self.assertEqual(d.exitCode(), 4)


class RefusalTests(SynchronousTestCase):
    """
    What keepalived's VRRP process refuses to start with.
    """

    def test_noVirtualRouterId(self) -> None:
        r = parse(VI.replace("virtual_router_id 51", "virtual_router_id 256") % "")
        self.assertIn((1, "(VI_1) the virtual router id must be set"), msgs(r.diagnostics))
        self.assertTrue(r.diagnostics.refusesStart)
        self.assertEqual(r.diagnostics.exitCode(), 5)
        self.assertEqual(r.model.vrrpInstances, ())

    def test_refusedInstanceScriptsStillChecked(self) -> None:
        """
        An instance refused for its VRID still makes keepalived run (and so
        check the scripts of) its VRRP process: an existing script without
        script security is a violation, C{-t} exits 6.
        """
        from keepalive_tx.tap import auditScripts

        r = parse("vrrp_script chk {\n script /bin/true\n}\n" + VI.replace("virtual_router_id 51", "") % "")
        self.assertTrue(r.model.vrrpConfigured)
        self.assertEqual(r.model.vrrpInstances, ())
        auditScripts(r.model, r.diagnostics)
        self.assertEqual(r.diagnostics.exitCode(), 6)

    def test_noInterface(self) -> None:
        r = parse(VI.replace("interface eth0", "unicast_src_ip 192.0.2.10") % "unicast_peer {\n 192.0.2.11\n }")
        self.assertEqual(msgs(r.diagnostics), [(1, "(VI_1) Unknown interface!")])
        self.assertTrue(r.diagnostics.refusesStart)

    def test_noVipVersion3(self) -> None:
        r = parse(VI.replace("192.0.2.1/24", "") % "version 3")
        self.assertEqual(msgs(r.diagnostics), [(1, "(VI_1) No VIP specified; at least one is required")])
        self.assertTrue(r.diagnostics.refusesStart)
        r = parse(VI.replace("192.0.2.1/24", "") % "")
        self.assertEqual(msgs(r.diagnostics, Severity.WARNING), [(1, "(VI_1) No VIP specified; at least one is sensible")])
        self.assertFalse(r.diagnostics.refusesStart)

    def test_clean(self) -> None:
        r = parse(VI % "")
        self.assertEqual(list(r.diagnostics), [])
        self.assertFalse(r.diagnostics.refusesStart)


class WarningTests(SynchronousTestCase):
    """
    Warnings keepalived prints (C{-t} exits 5).
    """

    def test_emptyNotificationEmail(self) -> None:
        r = parse("global_defs {\n notification_email {\n }\n}\n")
        self.assertEqual(msgs(r.diagnostics), [(3, "Warning - empty notification_email block")])
        self.assertEqual(r.diagnostics.exitCode(), 5)

    def test_notificationEmailWords(self) -> None:
        """
        Every word of the block is an address.
        """
        r = parse("global_defs {\n notification_email {\n a@example.com b@example.com\n c@example.com\n }\n}\n")
        self.assertEqual(r.model.globalDefs.notificationEmail, ("a@example.com", "b@example.com", "c@example.com"))
        self.assertEqual(list(r.diagnostics), [])

    def test_notifyFifoTwice(self) -> None:
        r = parse("global_defs {\n notify_fifo /run/f1\n notify_fifo /run/f2\n"
                  " vrrp_notify_fifo /run/f3\n vrrp_notify_fifo /run/f4\n}\n")
        self.assertEqual(msgs(r.diagnostics), [
            (3, "notify_fifo already specified - ignoring /run/f2"),
            (5, "vrrp_notify_fifo already specified - ignoring /run/f4")])
        self.assertEqual(r.model.globalDefs.notifyFifo.path, "/run/f1")

    def test_ownInterfaceTracked(self) -> None:
        r = parse(VI % "track_interface {\n eth0\n eth1\n }")
        self.assertEqual(msgs(r.diagnostics), [(5, "(VI_1) Ignoring track_interface eth0 since own interface")])
        self.assertEqual([t.name for t in r.model.vrrpInstances[0].trackInterfaces], ["eth1"])

    def test_ownerWeightedScript(self) -> None:
        """
        An address owner ignores weighted scripts, whether the weight is the
        tracker's or the script's own.
        """
        script = "vrrp_script chk {\n script /bin/true\n weight 10\n}\n"
        r = parse(SECURE + script + VI % "priority 255\n track_script {\n chk\n }")
        self.assertEqual(msgs(r.diagnostics, Severity.ERROR),
                         [(14, "(VI_1) ignoring tracked script chk with weights due to address_owner")])
        self.assertEqual(r.model.vrrpInstances[0].trackScripts, ())
        r = parse(SECURE + script + VI % "priority 255\n track_script {\n chk weight 0\n }")
        self.assertEqual(msgs(r.diagnostics), [])

    def test_trackedFileDefaultWeight(self) -> None:
        """
        A tracked file's default weight 1 is turned to 0 for an owner (kept),
        another weight drops it.
        """
        files = "track_file f1 {\n file /run/f1\n}\ntrack_file f2 {\n file /run/f2\n weight 4\n}\n"
        r = parse(files + VI % "priority 255\n track_file {\n f1\n f2\n }")
        self.assertEqual(msgs(r.diagnostics), [
            (13, "(VI_1) ignoring weight from tracked file f1 due to address_owner. specify weight 0"),
            (14, "(VI_1) ignoring tracked file f2 with weight 4 due to address_owner")])
        self.assertEqual([(t.name, t.weight) for t in r.model.vrrpInstances[0].trackFiles], [("f1", 0)])

    def test_syncGroupInterfaceWeight(self) -> None:
        """
        In a sync group without sync_group_tracking_weight a weighted
        interface is tracked unweighted.
        """
        group = "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n"
        two = VI % "track_interface {\n eth1 weight 5\n }" + VI.replace("VI_1", "VI_2").replace(" 51", " 52") % ""
        r = parse(group + two)
        self.assertEqual(msgs(r.diagnostics), [(11, "(VI_1) ignoring eth1 tracked interface weight due to SYNC group")])
        self.assertEqual([(t.name, t.weight) for t in r.model.vrrpInstances[0].trackInterfaces], [("eth1", 0)])


class RangeTests(SynchronousTestCase):
    def test_garpInterval(self) -> None:
        """
        vrrp_garp_interval / vrrp_gna_interval go up to 4294.967295 s.
        """
        r = parse("global_defs {\n vrrp_garp_interval 4294.967295\n vrrp_gna_interval 2000\n}\n")
        self.assertEqual(list(r.diagnostics), [])
        self.assertEqual(r.model.globalDefs.vrrpGarpInterval, 4294.967295)
        r = parse("global_defs {\n vrrp_garp_interval 4294.967296\n}\n")
        self.assertEqual(r.diagnostics.exitCode(), 5)


class VirtualServerGroupTests(SynchronousTestCase):
    def test_fwmarkGroupNeedsNoProtocol(self) -> None:
        group = "virtual_server_group G {\n fwmark 5\n fwmark 6\n}\n"
        vs = "virtual_server group G {\n lb_algo rr\n lb_kind DR\n real_server 192.0.2.2 {\n weight 1\n }\n}\n"
        r = parse(group + vs)
        self.assertEqual(list(r.diagnostics), [])
        r = parse(group.replace("fwmark 5", "192.0.2.9 80") + vs.replace("192.0.2.2", "192.0.2.2 80"))
        self.assertIn((5, "Virtual server [G]:0: no protocol set - defaulting to UDP"), msgs(r.diagnostics))
