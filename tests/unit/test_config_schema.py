"""
Tests for the block parser framework and the global/VRRP keyword tables.
"""

from __future__ import annotations

import ipaddress

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.config import schema as S
from keepalive_tx.config.dump import dumpConfig
from keepalive_tx.config.errors import Diagnostics, Location, Severity
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.parser import parseLines


def L(n: int, text: str) -> LogicalLine:
    return LogicalLine(Location("t.conf", n), text, tuple(text.split()))


def msgs(diags, severity=None):
    return [(d.location.line if d.location else None, d.message) for d in diags
            if severity is None or d.severity is severity]


def parse(text: str):
    return parseText(text, "t.conf", "host")


VI = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    %s
    virtual_ipaddress {
        192.0.2.1/24 dev eth0
    }
}
"""


class FrameworkTests(SynchronousTestCase):
    """
    The parser over hand-made logical-line streams with a small table.
    """

    def setUp(self) -> None:
        inner = S.BlockSpec("blk", {"x": S.simple(S.setInt("x", 1, 10))})
        self.top = S.BlockSpec("<top>", {
            "a": S.simple(S.setStr("a")),
            "blk": S.block(inner),
            "vals": S.values(S.appendItem("vals", lambda ctx, line: line.tokens)),
        })

    def run_(self, *texts: str):
        d = Diagnostics()
        root = parseLines([L(i + 1, t) for i, t in enumerate(texts)], d, self.top)
        return root, d

    def test_blockAndValues(self) -> None:
        """
        Keyword blocks fill a child builder; value blocks collect raw lines.
        """
        root, d = self.run_("a hello", "blk", "{", "x 5", "}", "vals", "{", "p q", "r", "}")
        self.assertEqual(msgs(d), [])
        self.assertEqual(root["a"], "hello")
        self.assertEqual(root["blk"]["x"], 5)
        self.assertEqual(root["vals"], [("p", "q"), ("r",)])

    def test_unknownKeyword(self) -> None:
        """
        An unknown keyword is reported at its line and skipped.
        """
        root, d = self.run_("zzz 1", "a b")
        self.assertEqual(msgs(d), [(1, "Unknown keyword 'zzz'")])
        self.assertEqual(d.items[0].severity, Severity.ERROR)
        self.assertEqual(root["a"], "b")

    def test_unknownKeywordBlockNotSkipped(self) -> None:
        """
        The contents of an unknown keyword's block are parsed at the
        current level and its '}' closes the enclosing block early.
        """
        root, d = self.run_("blk", "{", "foo", "{", "x 3", "}", "x 4", "}", "a z")
        self.assertEqual(msgs(d), [
            (3, "Unknown keyword 'foo'"), (4, "Unexpected '{' - ignoring"),
            # 'x 4' is now at top level, and the last '}' too (the braces
            # are balanced in the text, so none is "extra").
            (7, "Unknown keyword 'x'"), (8, "Unknown keyword '}'"),
        ])
        # x 3 was applied to the enclosing block, which the '}' then closed:
        self.assertEqual(root["blk"]["x"], 3)
        self.assertEqual(root["a"], "z")

    def test_missingOpenBrace(self) -> None:
        """
        A block keyword not followed by '{' is reported; lines are still read.
        """
        root, d = self.run_("blk", "x 2", "}")
        self.assertEqual(msgs(d), [
            (3, "Extra '}' found"), (2, "Missing '{' at beginning of configuration block")])
        self.assertEqual(root["blk"]["x"], 2)

    def test_missingOpenBraceValueBlock(self) -> None:
        """
        A value block without its '{' takes the next lines as values up to
        the next '}' (keepalived only logs it: a note, not an error).
        """
        root, d = self.run_("vals", "p q", "}", "a z")
        self.assertEqual(root["vals"], [("p", "q")])
        self.assertEqual(root["a"], "z")
        self.assertEqual(msgs(d), [(3, "Extra '}' found"), (1, "'{' missing from beginning of block vals")])
        self.assertEqual([x.severity for x in d], [Severity.ERROR, Severity.NOTE])

    def test_strayBraces(self) -> None:
        """
        Stray '{' and extra '}' give keepalived's messages.
        """
        root, d = self.run_("{", "}", "a q", "}")
        self.assertEqual(msgs(d), [
            (4, "Extra '}' found"),
            (1, "Unexpected '{' - ignoring"), (2, "Unknown keyword '}'"), (4, "Unknown keyword '}'")])

    def test_missingCloseAtEof(self) -> None:
        """
        EOF inside a block is reported.
        """
        root, d = self.run_("blk", "{", "x 1", "}", "vals", "{", "p", "{", "{")
        self.assertEqual(msgs(d), [(None, "There are 3 missing '}'s or extra '{'s")])
        self.assertEqual(root["blk"]["x"], 1)
        self.assertEqual(root["vals"], [("p",), ("{",), ("{",)])

    def test_missingParameter(self) -> None:
        """
        A keyword that needs a value, alone on its line, gets keepalived's
        report and keepalived's early exit (2); a block keyword's block is
        skipped and the rest still read.
        """
        self.top.keywords["blk"].spec.required = frozenset({"x"})
        self.top.required = frozenset({"blk"})
        try:
            root, d = self.run_("blk one", "{", "x", "}", "blk", "{", "x 3", "}", "a b")
        finally:
            self.top.required = self.top.keywords["blk"].spec.required = frozenset()
        self.assertEqual(msgs(d), [(3, "*** Configuration line starting `x` is missing a parameter "
                                       "after keyword `x` at word position 2"),
                                   (5, "*** Configuration line starting `blk` is missing a parameter "
                                       "after keyword `blk` at word position 2")])
        self.assertEqual(root["a"], "b")
        self.assertEqual(d.exitCode(), 2)
        self.assertTrue(d.refusesStart)
        self.assertEqual(d.startExitCode(), 2)

    def test_missingParameterTables(self) -> None:
        """
        The real tables: C{interface} alone in a vrrp_instance, and a
        global_defs keyword (keepalived's parent process stops on it before
        an include check is looked at).
        """
        r = parse(VI % "priority")
        self.assertEqual(msgs(r.diagnostics, Severity.ERROR)[0],
                         (5, "*** Configuration line starting `priority` is missing a parameter "
                             "after keyword `priority` at word position 2"))
        self.assertEqual(r.diagnostics.exitCode(), 2)
        r = parse("includem /nonexistent/x.conf\nglobal_defs {\n smtp_server\n}\n")
        self.assertEqual(r.diagnostics.exitCode(), 2)
        r = parse("includem /nonexistent/x.conf\n" + VI % "priority")
        self.assertEqual(r.diagnostics.exitCode(), 6)
        # nopreempt takes no value; smtp_alert's is optional
        self.assertEqual(parse(VI % "nopreempt\nsmtp_alert").diagnostics.exitCode(), 0)

    def test_numbers(self) -> None:
        """
        Numbers are decimal only; out of range is reported and ignored.
        """
        root, d = self.run_("blk", "{", "x 11", "x 0x5", "x 7", "}")
        self.assertEqual(msgs(d), [
            (3, "x: number '11' outside range [1, 10] - ignoring"),
            (4, "x: invalid number '0x5' (decimal integer in [1, 10] expected) - ignoring"),
        ])
        self.assertEqual(root["blk"]["x"], 7)

    def test_unsplitBraceLine(self) -> None:
        """
        A 'keyword {' line (not split by the preprocessor) also opens a block.
        """
        root, d = self.run_("blk {", "x 9", "}")
        self.assertEqual(msgs(d), [])
        self.assertEqual(root["blk"]["x"], 9)

    def test_timer(self) -> None:
        """
        Timers: decimal seconds, at most 6 decimals.
        """
        d = Diagnostics()
        ctx = S.Context(d)
        line = L(1, "t 1.5")
        self.assertEqual(S.parseTimer(ctx, line, "1.5", 0, 10), 1.5)
        self.assertIsNone(S.parseTimer(ctx, line, "11", 0, 10))
        self.assertIsNone(S.parseTimer(ctx, line, "1e3", 0, 10))
        self.assertEqual(S.parseTimer(ctx, line, "0.0000015", 0, 10), 0.000002)
        self.assertEqual(len(d), 3)


class GlobalDefsTests(SynchronousTestCase):
    """
    global_defs keywords.
    """

    def test_mail(self) -> None:
        """
        Mail settings parse with their defaults.
        """
        r = parse("global_defs {\n notification_email {\n a@b\n c@d\n }\n"
                  " notification_email_from x@y\n smtp_server 192.0.2.1 2525\n router_id R1\n}\n")
        g = r.model.globalDefs
        self.assertEqual(msgs(r.diagnostics), [])
        self.assertEqual(g.notificationEmail, ("a@b", "c@d"))
        self.assertEqual((g.smtpServer, g.smtpPort, g.smtpConnectTimeout), ("192.0.2.1", 2525, 30))
        self.assertEqual(g.routerId, "R1")

    def test_garpIntervalZero(self) -> None:
        """
        vrrp_garp_interval 0 is rejected and the default 0 kept.
        """
        r = parse("global_defs {\n vrrp_garp_interval 0\n vrrp_gna_interval 0.5\n}\n")
        self.assertEqual(msgs(r.diagnostics, Severity.ERROR),
                         [(2, "vrrp_garp_interval: number '0' outside range [0.000001, 4294.967295] - ignoring")])
        self.assertEqual(r.model.globalDefs.vrrpGarpInterval, 0.0)
        self.assertEqual(r.model.globalDefs.vrrpGnaInterval, 0.5)

    def test_fileLocationUnknown(self) -> None:
        """
        *_file_location and lvs_id are unknown keywords.
        """
        r = parse("global_defs {\n state_file_location /x\n lvs_id LVS1\n state_dump_file /tmp/d\n}\n")
        self.assertEqual(msgs(r.diagnostics), [
            (2, "Unknown keyword 'state_file_location'"), (3, "Unknown keyword 'lvs_id'")])
        self.assertEqual(r.model.globalDefs.stateDumpFile, "/tmp/d")

    def test_skipCheckAdvAddrFalse(self) -> None:
        """
        vrrp_skip_check_adv_addr false still sets the flag.
        """
        r = parse("global_defs {\n vrrp_skip_check_adv_addr false\n}\n")
        self.assertTrue(r.model.globalDefs.vrrpSkipCheckAdvAddr)

    def test_deprecatedSynonym(self) -> None:
        """
        Deprecated synonyms work; those keepalived 2.2.7 reports are reported
        as DEPRECATED with its words (C{-t} exits 5), the others silently.
        """
        r = parse("global_defs {\n lvs_flush_onstop\n vrrp_rlimit_rtime 1000\n}\n")
        self.assertEqual(r.model.globalDefs.lvsFlushOnStop, "all")
        # (no deprecation: only that keepalive_tx does not act on them)
        self.assertEqual(msgs(r.diagnostics), [
            (2, "'lvs_flush_onstop' is not implemented by keepalive_tx (ignored)"),
            (3, "'vrrp_rlimit_rtime' is not implemented by keepalive_tx (ignored)")])
        r = parse("global_defs {\n vrrp_vmac_garp_intvl 10\n}\n"
                  "vrrp_sync_group G {\n group {\n VI_1\n }\n global_tracking\n}\n" + VI % "")
        self.assertEqual(msgs(r.diagnostics, Severity.DEPRECATED), [
            (2, 'Keyword "vrrp_vmac_garp_intvl" is deprecated - please use "vrrp_garp_extra_if"'),
            (8, "(G) global_tracking is deprecated. Use track_interface/script/file on the sync group")])

    def test_topLevelOneLiners(self) -> None:
        """
        Top-level one-liners and small blocks.
        """
        r = parse("net_namespace blue\nuse_pid_dir\nchild_wait_time 7\n"
                  "interface_up_down_delays {\n eth0 2 4\n eth1 1.5\n}\n"
                  "linkbeat_interfaces {\n eth0 MII\n}\n")
        m = r.model
        self.assertEqual(msgs(r.diagnostics), [
            (line, f"'{kw}' is not implemented by keepalive_tx (ignored)")
            for line, kw in ((1, "net_namespace"), (2, "use_pid_dir"), (3, "child_wait_time"),
                             (4, "interface_up_down_delays"), (8, "linkbeat_interfaces"))])
        self.assertEqual((m.netNamespace, m.usePidDir, m.childWaitTime), ("blue", True, 7))
        self.assertEqual([(d.name, d.downDelay, d.upDelay) for d in m.interfaceUpDownDelays],
                         [("eth0", 2.0, 4.0), ("eth1", 1.5, 1.5)])
        self.assertEqual(m.linkbeatInterfaces[0].mode, "MII")


class VrrpInstanceTests(SynchronousTestCase):
    """
    vrrp_instance parsing and keepalived's instance completion.
    """

    def test_defaults(self) -> None:
        """
        Priority 100 and state BACKUP by default; typed fields.
        """
        r = parse(VI % "advert_int 2")
        self.assertEqual(msgs(r.diagnostics), [])
        vi = r.model.vrrpInstances[0]
        self.assertEqual((vi.priority, vi.state, vi.version, vi.advertInt), (100, "BACKUP", 2, 2.0))
        self.assertEqual(vi.virtualIpaddresses[0].address, ipaddress.ip_interface("192.0.2.1/24"))
        self.assertEqual(vi.virtualIpaddresses[0].dev, "eth0")
        self.assertEqual(vi.garp.masterDelay, 5.0)

    def test_masterDefaultsOwner(self) -> None:
        """
        State MASTER without priority means 255; priority 255 means MASTER.
        """
        r = parse(VI % "state MASTER")
        self.assertEqual(r.model.vrrpInstances[0].priority, 255)
        r = parse(VI % "priority 255")
        self.assertEqual(r.model.vrrpInstances[0].state, "MASTER")

    def test_nopreemptMaster(self) -> None:
        """
        nopreempt with state MASTER is cleared with an error.
        """
        r = parse(VI % "state MASTER\n priority 100\n nopreempt")
        vi = r.model.vrrpInstances[0]
        self.assertFalse(vi.nopreempt)
        self.assertEqual([m for m in msgs(r.diagnostics) if "nopreempt" in m[1]][0][0], 7)

    def test_priorityRange(self) -> None:
        """
        Out-of-range priority is reported and ignored.
        """
        r = parse(VI % "priority 256")
        self.assertEqual(msgs(r.diagnostics), [(5, "priority: number '256' outside range [1, 255] - ignoring")])
        self.assertEqual(r.model.vrrpInstances[0].priority, 100)

    def test_missingVrid(self) -> None:
        """
        An instance without virtual_router_id is dropped with an error.
        """
        r = parse("vrrp_instance X {\n interface eth0\n}\n")
        self.assertEqual(r.model.vrrpInstances, ())
        self.assertIn("virtual router id must be set", msgs(r.diagnostics)[0][1])

    def test_vipFamilyMismatch(self) -> None:
        """
        VIPs of another family than the first are dropped with an error.
        """
        r = parse("vrrp_instance X {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n"
                  "  192.0.2.1\n  2001:db8::1\n }\n}\n")
        self.assertEqual(len(r.model.vrrpInstances[0].virtualIpaddresses), 1)
        (line, m), = msgs(r.diagnostics, Severity.ERROR)
        self.assertEqual(line, 6)
        self.assertIn("IPv6 but the instance is IPv4", m)

    def test_vipSyntax(self) -> None:
        """
        The full VIP syntax is understood.
        """
        r = parse(VI.replace("192.0.2.1/24 dev eth0",
                             "192.0.2.9/24 brd 192.0.2.255 dev eth1 scope link label eth1:1 home -nodad no_track\n"
                             "        192.0.2.10 peer 192.0.2.11/32\n        192.0.2.12 bogus") % "")
        a, b, c = r.model.vrrpInstances[0].virtualIpaddresses
        self.assertEqual((a.dev, a.scope, a.label, a.home, a.dad, a.noTrack),
                         ("eth1", "link", "eth1:1", True, True, True))
        self.assertEqual(str(a.broadcast), "192.0.2.255")
        self.assertEqual(str(b.peer), "192.0.2.11/32")
        self.assertEqual(msgs(r.diagnostics),
                         [(9, "Unknown configuration entry 'bogus' for ip address - ignoring")])

    def test_authentication(self) -> None:
        """
        auth_pass is truncated to 8 bytes with a warning; v3 ignores auth.
        """
        r = parse(VI % "authentication {\n auth_type PASS\n auth_pass 0123456789\n }")
        self.assertEqual(r.model.vrrpInstances[0].authentication.password, b"01234567")
        self.assertIn("Truncating auth_pass", msgs(r.diagnostics, Severity.WARNING)[0][1])
        r = parse(VI % "version 3\n authentication {\n auth_type PASS\n auth_pass x\n }")
        self.assertIsNone(r.model.vrrpInstances[0].authentication)
        self.assertIn("only supported by VRRPv2", msgs(r.diagnostics, Severity.ERROR)[0][1])

    def test_trackScriptUndefined(self) -> None:
        """
        A track_script naming no vrrp_script defined before it is an error
        (keepalived looks scripts up as it reads); unused scripts are noted
        (keepalived reports them only when it runs: C{-t} exits 0).
        """
        r = parse("vrrp_script s1 {\n script /bin/true\n}\n" + VI % "track_script {\n nope\n }")
        self.assertIn((9, "(VI_1) track script nope not found, ignoring..."), msgs(r.diagnostics))
        self.assertIn((1, "Warning - script s1 is not used"), msgs(r.diagnostics, Severity.NOTE))
        r = parse(VI % "track_script {\n s1\n s1\n }" + "vrrp_script s1 {\n script /bin/true\n}\n")
        self.assertEqual(msgs(r.diagnostics, Severity.ERROR), [
            (6, "(VI_1) track script s1 not found, ignoring..."),
            (7, "(VI_1) track script s1 not found, ignoring...")])
        self.assertEqual(r.model.vrrpInstances[0].trackScripts, ())
        r = parse("vrrp_script s1 {\n script /bin/true\n}\n" + VI % "track_script {\n s1\n s1\n }")
        self.assertEqual(msgs(r.diagnostics), [(10, "(VI_1) duplicate track_script s1 - ignoring")])
        self.assertEqual(r.diagnostics.exitCode(), 5)

    def test_scriptWords(self) -> None:
        """
        notify scripts keep the command string and the argv.
        """
        r = parse(VI % "notify_master \"/bin/x.sh a 'b c'\" nobody")
        s = r.model.vrrpInstances[0].notifyMaster
        self.assertEqual(s.argv, ("/bin/x.sh", "a", "b c"))
        self.assertEqual(s.user, "nobody")
        self.assertEqual(s.command, "/bin/x.sh a 'b c'")

    def test_scriptLineTokenising(self) -> None:
        """
        keepalived's two passes run over the whole line: a quoted prefix
        joins the next characters, user and group are the next two words.
        """
        r = parse(VI % 'notify_master "/opt/a.sh"zz nobody nogroup extra')
        s = r.model.vrrpInstances[0].notifyMaster
        self.assertEqual((s.argv, s.user), (("/opt/a.shzz",), "nobody:nogroup"))
        self.assertEqual(list(r.diagnostics), [])

    def test_scriptKeywordHasNoUserWords(self) -> None:
        """
        vrrp_script's C{script} takes no user words (keepalived ignores
        them; the C{user} keyword sets the identity).
        """
        r = parse("vrrp_script s1 {\n script \"/bin/x a\" nobody\n}\n"
                  + VI % "track_script {\n s1\n }")
        vs = r.model.vrrpScripts[0]
        self.assertEqual((vs.script.argv, vs.script.user, vs.user), (("/bin/x", "a"), None, None))

    def test_notifyLoneBackslash(self) -> None:
        """
        A notify command ending in a lone backslash after pass 1 is no
        configuration error (keepalived 2.2.7 logs it and drops the script,
        C{-t} exits 0): the script is kept without argv, so it never runs.
        An unterminated quote is an error, as in keepalived.
        """
        r = parse(VI % 'notify_master "/bin/x\\\\"')
        self.assertEqual(r.model.vrrpInstances[0].notifyMaster.argv, ())
        self.assertEqual(list(r.diagnostics), [])
        r = parse(VI % "notify_master '/bin/x \\'y'")
        self.assertIsNone(r.model.vrrpInstances[0].notifyMaster)
        self.assertEqual(msgs(r.diagnostics), [(5, "String '/bin/x 'y': missing terminating '")])

    def test_duplicateVrid(self) -> None:
        """
        Two instances with the same VRID on one interface are diagnosed,
        unless unicast with disjoint peers.
        """
        two = VI % "" + VI.replace("VI_1", "VI_2") % ""
        r = parse(two)
        self.assertEqual(msgs(r.diagnostics), [(11, "VI_1 and VI_2 both use VRID 51 with IPv4 on interface eth0")])
        self.assertTrue(r.diagnostics.refusesStart)
        self.assertEqual(r.diagnostics.exitCode(), 5)
        # another multicast group: no conflict
        r = parse(VI % "" + VI.replace("VI_1", "VI_2") % "mcast_dst_ip 224.0.0.19")
        self.assertEqual(msgs(r.diagnostics), [])
        uni = (VI % "unicast_peer {\n 192.0.2.7\n }" +
               VI.replace("VI_1", "VI_2") % "unicast_peer {\n 192.0.2.8\n }")
        self.assertEqual(msgs(parse(uni).diagnostics), [])
        uni = (VI % "unicast_peer {\n 192.0.2.7\n }" +
               VI.replace("VI_1", "VI_2") % "unicast_peer {\n 192.0.2.7\n }")
        self.assertEqual(msgs(parse(uni).diagnostics), [(13, "(VI_1) duplicate VRID conflict with VI_2 VRID 51")])

    def test_strict(self) -> None:
        """
        Strict mode rules (vrrp_strict); unicast peers are kept, as keepalived
        2.2.7 keeps them (the whole list: tests.unit.test_config_strict).
        """
        r = parse("global_defs {\n vrrp_strict\n}\n" + VI % "state MASTER\n priority 100\n unicast_peer {\n 192.0.2.7\n }")
        vi = r.model.vrrpInstances[0]
        # keepalived 2.2.7 checks strict mode's "no unicast" before it knows the
        # instance is unicast: the peers are kept, silently
        self.assertEqual((vi.state, len(vi.unicastPeers), vi.accept, vi.lowerPrioNoAdvert), ("BACKUP", 1, False, True))
        self.assertEqual(len(msgs(r.diagnostics, Severity.ERROR)), 1)


class SyncGroupTests(SynchronousTestCase):
    """
    vrrp_sync_group membership checks.
    """

    def test_bareNames(self) -> None:
        """
        Legacy sync groups: bare names are unknown keywords and the empty group is removed.
        """
        r = parse("vrrp_sync_group G {\n VI_1\n}\n" + VI % "")
        self.assertEqual(msgs(r.diagnostics), [
            (2, "Unknown keyword 'VI_1'"), (1, "Sync group G has no virtual router(s). removing")])
        self.assertEqual(r.model.syncGroups, ())

    def test_members(self) -> None:
        """
        Missing members and members of two groups are errors.
        """
        text = ("vrrp_sync_group G {\n group {\n VI_1\n VI_9\n }\n}\n"
                "vrrp_sync_group H {\n group {\n VI_1\n }\n}\n" + VI % "")
        r = parse(text)
        ms = [m for _, m in msgs(r.diagnostics)]
        self.assertTrue(any("VI_9 specified in sync group G doesn't exist" in m for m in ms))
        self.assertTrue(any("already in sync group G" in m for m in ms))
        self.assertEqual(r.model.syncGroups[0].members, ("VI_1",))
        self.assertEqual(r.model.vrrpInstances[0].syncGroup, "G")


class DumpTests(SynchronousTestCase):
    """
    The normalised dump.
    """

    def test_dump(self) -> None:
        """
        The dump names instances and effective values and hides passwords.
        """
        r = parse(VI % "authentication {\n auth_type PASS\n auth_pass secret\n }")
        text = dumpConfig(r.model)
        self.assertIn("VrrpInstance VI_1", text)
        self.assertIn("virtualRouterId = 51", text)
        self.assertIn("password = ********", text)
        self.assertNotIn("secret", text)

    def test_dumpBlockNames(self) -> None:
        """
        Model classes named C{...Config} to tell them from running objects
        are dumped under their blocks' names, as before.
        """
        r = parse("vrrp_sync_group G {\n group {\n VI_1\n }\n}\n"
                  "garp_group {\n garp_interval 1\n interface eth0\n}\n" + VI % ""
                  + "virtual_server 192.0.2.10 80 {\n protocol TCP\n real_server 192.0.2.11 80 {\n"
                  "  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n")
        lines = dumpConfig(r.model).splitlines()
        self.assertIn("    SyncGroup G", lines)
        self.assertIn("    VrrpInstance VI_1", lines)
        self.assertIn("    GarpGroup", lines)
        self.assertIn("      garp = GarpSettings", lines)
        self.assertTrue(any(line.strip() == "HttpUrl" for line in lines))
        self.assertEqual([line for line in lines[1:] if line.endswith("Config")], [])
