"""
Nothing is ignored silently: every keyword of the schema is either acted on
by the daemon, or declared in L{keepalive_tx.config.unimplemented} (and
then reported once, with C{FILE:LINE}, when a configuration uses it).
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.config.errors import Severity
from keepalive_tx.config.unimplemented import (
    INERT,
    NOT_IMPLEMENTED,
    OPTIONS,
    Gap,
    message,
    optionMessage,
)
from tests.unit import keyword_audit as audit

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "README.md")

#: names the configuration layer itself acts on (they need no runtime
#: reader): field or builder key -> what does
CONSUMED_IN_CONFIG: dict[str, str] = {
    # global defaults resolved into every instance (config/validate.py)
    "vrrpVersion": "each instance's version",
    "vrrpDownTimerAdverts": "each instance's down_timer_adverts",
    "vrrpLowerPrioNoAdvert": "each instance's lower_prio_no_advert",
    "vrrpHigherPrioSendAdvert": "each instance's higher_prio_send_advert",
    "vrrpOwnerIgnoreAdverts": "each instance's owner_ignore_adverts",
    "vrrpMinGarp": "the global GARP defaults",
    "lvsSyncDaemonInterface": "global_defs' lvs_sync_daemon, for its instance, when none is "
                              "set (config/validate.py)",
    "vrrpNotifyPriorityChanges": "each instance's notify_priority_changes",
    "vrrpSkipCheckAdvAddr": "each instance's skip_check_adv_addr",
    "vrrpStrict": "strict mode's rules, applied to each instance (config/validate_strict.py)",
    "strictMode": "strict mode's rules, applied to the instance (config/validate_strict.py)",
    "vrrpIptables": "turns nftables on, as Debian's keepalived does (config/schema_nftables.py)",
    "nativeIpv6": "the instance's family",
    "globalTracking": "whether a sync group's members keep tracker weights",
    "syncGroupTrackingWeight": "whether a sync group's members keep tracker weights",
    "noVirtualIpaddress": "silences the warning for an instance without VIPs",
    "authPass": "the Authentication password",
    # checks of the configuration
    "includeCheck": "the preprocessor's include checks (config/preprocess.py)",
    "dynamicInterfaces": "missing interfaces are not refused (config/interfaces.py); the "
                         "instance waits for its interface",
    "interfaceLocation": "where a missing interface is reported",
    # settings of the data dumps, which only the dumps read
    "dataUseInstance": "the data dump file names (status/dumps.py)",
    "stateDumpFile": "where SIGUSR1 writes (status/dumps.py)",
    "jsonVersion": "the JSON dump's layout (status/dumps.py)",
    # what the keyword asks for is what always happens here
    "accept": "no firewall rules: VIPs always accept traffic (accept's meaning)",
    # builder keys made into model objects (config/validate.py, build_lvs.py)
    "authenticationBuilder": "the instance's Authentication",
    "hosts": "SMTP_CHECK's host blocks: checkers of their own (config/build_lvs.py)",
}

#: keywords the audit cannot see acting: (block, keyword) -> why they are
#: implemented
IMPLEMENTED: dict[tuple[str, str], str] = {
    ("<top>", "global_defs"): "opens the block",
    ("DNS_CHECK", "name"): "the name queried (check/dns.py)",
}

#: fields set by an option word declared in OPTIONS -> (keyword, word)
OPTION_FIELDS: dict[str, tuple[str, str]] = {
    "dynamicInterfacesAllowIfChanges": ("dynamic_interfaces", "allow_if_changes"),
    "useVmac": ("virtual_ipaddress", "use_vmac"),
}

def _declared() -> dict[tuple[str, str], str]:
    """
    (block, keyword) -> "not implemented" or "inert", for every declaration.
    """
    out = {(block, kw): "not implemented" for block, kws in NOT_IMPLEMENTED.items() for kw in kws}
    out.update({(block, kw): "inert" for block, kws in INERT.items() for kw in kws})
    return out


class SchemaWalkTests(SynchronousTestCase):
    """
    Every keyword of every block (checker blocks, C{global_defs}, the top
    level) is implemented or declared.
    """

    def setUp(self) -> None:
        self.fields = audit.modelFields()
        self.read = audit.namesRead()
        self.consumed = set(self.read) | set(CONSUMED_IN_CONFIG)
        self.known = set(self.fields) | set(CONSUMED_IN_CONFIG)

    def test_walkCoversTheSchema(self) -> None:
        """
        The walk reaches the checker blocks, C{global_defs} and the top level.
        """
        blocks = {block for block, _, _ in audit.walk()}
        for block in ("<top>", "global_defs", "vrrp_instance", "virtual_server", "real_server",
                      "HTTP_GET", "url", "SMTP_CHECK", "host", "MISC_CHECK", "BFD_CHECK",
                      "bfd_instance", "SSL"):
            self.assertIn(block, blocks)
        self.assertGreater(len(list(audit.walk())), 400)

    def test_declarationsNameKeywords(self) -> None:
        """
        Every declared keyword exists in its block (a renamed or removed
        keyword cannot leave a stale declaration), and none is declared twice.
        """
        schema = {(block, name) for block, name, _ in audit.walk()}
        for key in _declared():
            self.assertIn(key, schema, f"{key} is declared but not in the schema")
        for block, kws in INERT.items():
            for kw in kws:
                self.assertNotIn(kw, NOT_IMPLEMENTED.get(block, {}))
        for keyword, _ in OPTIONS:
            self.assertIn(keyword, {name for _, name, _ in audit.walk()})
        for key in IMPLEMENTED:
            self.assertIn(key, schema)
            self.assertNotIn(key, _declared())

    def test_everyKeywordImplementedOrDeclared(self) -> None:
        """
        A keyword that is not declared sets something the daemon reads (or
        the configuration layer acts on: L{CONSUMED_IN_CONFIG}).
        """
        declared = _declared()
        covered: set[str] = set()  # blocks declared not implemented: their contents too
        problems = []
        for block, name, kw in audit.walk():
            if block in covered or (block, name) in IMPLEMENTED:
                if kw.spec is not None:
                    covered.add(kw.spec.name)
                continue
            if (block, name) in declared:
                if kw.spec is not None and declared[(block, name)] == "not implemented":
                    covered.add(kw.spec.name)
                continue
            names = (audit.keywordNames(kw) & self.known) - audit.GENERIC
            if not names:
                problems.append(f"{block} {name}: sets nothing the audit can see - declare it")
            elif not names & self.consumed:
                problems.append(f"{block} {name}: sets {sorted(names)}, which nothing outside "
                                f"config/ reads")
        self.assertEqual(problems, [], "\nnot implemented and not declared (add them to "
                         "keepalive_tx/config/unimplemented.py, or act on them):\n  "
                         + "\n  ".join(problems))

    def test_everyFieldReadOrDeclared(self) -> None:
        """
        Backstop: every model field is read outside C{config/}, consumed by
        the configuration layer, or set only by declared keywords.
        """
        declared = _declared()
        setBy: dict[str, set[tuple[str, str]]] = {}
        for block, name, kw in audit.walk():
            names = audit.keywordNames(kw)
            # a block's builder becomes the field of the same name
            names |= {n[: -len("Builder")] for n in names if n.endswith("Builder")}
            for field in names & set(self.fields):
                setBy.setdefault(field, set()).add((block, name))
        problems = []
        for field, classes in sorted(self.fields.items()):
            if field in self.consumed or OPTION_FIELDS.get(field) in OPTIONS:
                continue
            setters = setBy.get(field, set())
            if setters and all(key in declared or _inDeclaredBlock(key) for key in setters):
                continue
            problems.append(f"{'/'.join(sorted(classes))}.{field} (set by "
                            f"{sorted(setters) or 'no keyword'})")
        self.assertEqual(problems, [], "\nmodel fields nothing reads:\n  " + "\n  ".join(problems))

    def test_consumedInConfigIsUsed(self) -> None:
        """
        Every L{CONSUMED_IN_CONFIG} name is one the schema sets.
        """
        names = set()
        for _, _, kw in audit.walk():
            names |= audit.keywordNames(kw)
        for name in CONSUMED_IN_CONFIG:
            self.assertIn(name, names)

    def test_pendingBranches(self) -> None:
        """
        Entries implemented on other branches say which (they go at its
        merge); none is pending now (the vmac branch was the last).
        """
        pending = {gap.pending for kws in NOT_IMPLEMENTED.values() for gap in kws.values()}
        pending |= {gap.pending for gap in OPTIONS.values()}
        self.assertEqual(pending - {None}, set())

    def test_auditFindsUnreadFields(self) -> None:
        """
        The audit's reader scan is not vacuous: fields the daemon acts on are
        read, fields it does not act on are not.
        """
        self.assertIn("advertInt", self.read)
        self.assertIn("virtualRouterId", self.read)
        unread = audit.unreadFields()
        for field in ("snmpSocket", "enableDbus", "netNamespace", "promoteSecondaries"):
            self.assertIn(field, unread)
        self.assertNotIn("smtpServer", unread)


def _inDeclaredBlock(key: tuple[str, str]) -> bool:
    """
    Whether C{key}'s block is opened by a keyword declared not implemented.
    """
    block = key[0]
    return any(block == name for kws in NOT_IMPLEMENTED.values() for name in kws)


class WarningTests(SynchronousTestCase):
    """
    A not-implemented keyword is one WARNING with C{FILE:LINE}, at its
    first use; C{-t} then exits 5.
    """

    def warnings(self, text: str) -> list[str]:
        result = parseText(text, "k.conf")
        return [str(d) for d in result.diagnostics if "not implemented by keepalive_tx" in d.message]

    def test_globalKeyword(self) -> None:
        """
        C{global_defs enable_snmp_vrrp}: the example of the issue.
        """
        result = parseText("global_defs {\n    router_id lb1\n    enable_snmp_vrrp\n}\n", "k.conf")
        self.assertEqual([str(d) for d in result.diagnostics],
                         ["k.conf:3: 'enable_snmp_vrrp' is not implemented by keepalive_tx (ignored)"])
        self.assertEqual(result.diagnostics.items[0].severity, Severity.WARNING)
        self.assertEqual(result.diagnostics.exitCode(), 5)

    def test_onceWithCount(self) -> None:
        """
        Further uses of the same keyword are counted in the first warning,
        not reported again; the same keyword in another block is another
        warning.
        """
        rs = "    real_server 192.0.2.{n} 80 {{\n        snmp_name rs{n}\n        {check} {{\n" \
             "            fwmark 1\n        }}\n    }}\n"
        text = ("virtual_server 192.0.2.1 80 {\n    protocol TCP\n    lvs_sched rr\n    lvs_method NAT\n"
                "    snmp_name vs\n"
                + "".join(rs.format(n=n, check=check) for n, check in
                          ((2, "TCP_CHECK"), (3, "TCP_CHECK"), (4, "TCP_CHECK"), (5, "SMTP_CHECK"),
                           (6, "UDP_CHECK")))
                + "}\n")
        self.assertEqual(self.warnings(text), [
            "k.conf:5: 'snmp_name' is not implemented by keepalive_tx (ignored; also on 5 more lines)",
            "k.conf:9: 'fwmark' is not implemented by keepalive_tx (ignored; also on 3 more lines)",
        ])

    def test_blockCoversItsContents(self) -> None:
        """
        A not-implemented block is reported at its header only.
        """
        text = "garp_group {\n    garp_interval 1\n    interfaces {\n        eth0\n    }\n}\n"
        self.assertEqual(self.warnings(text),
                         ["k.conf:1: 'garp_group' is not implemented by keepalive_tx (ignored)"])

    def test_valueStillChecked(self) -> None:
        """
        The keyword's value is still checked as keepalived checks it.
        """
        result = parseText("global_defs {\n    vrrp_priority 40\n}\n", "k.conf")
        messages = [d.message for d in result.diagnostics]
        self.assertEqual(len(messages), 2, messages)
        self.assertIn("outside range", messages[1])

    def test_options(self) -> None:
        """
        Declared words inside a line are reported too (a VIP's C{use_vmac},
        implemented, is not).
        """
        text = ("global_defs {\n    dynamic_interfaces allow_if_changes\n}\n"
                "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n"
                "    virtual_ipaddress {\n        192.0.2.1/24 use_vmac\n        192.0.2.2/24\n    }\n}\n")
        self.assertEqual(self.warnings(text), [
            "k.conf:2: 'allow_if_changes' of dynamic_interfaces is not implemented by keepalive_tx (ignored)",
        ])

    def test_includedFile(self) -> None:
        """
        The warning names the file the keyword is in.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "inc.conf"), "w") as f:
            f.write("\n\nnet_namespace blue\n")
        result = parseText(f"include {directory}/inc.conf\n", "k.conf")
        self.assertEqual([str(d) for d in result.diagnostics], [
            f"{directory}/inc.conf:3: 'net_namespace' is not implemented by keepalive_tx (ignored)"])

    def test_inertAndImplementedSayNothing(self) -> None:
        """
        Keywords keepalived ignores too, and implemented ones, give no warning.
        """
        text = ("vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    debug 2\n"
                "    accept\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n")
        result = parseText(text, "k.conf")
        self.assertEqual([str(d) for d in result.diagnostics], [])
        self.assertEqual(result.diagnostics.exitCode(), 0)

    def test_everyDeclaredKeywordWarns(self) -> None:
        """
        Each top-level and C{global_defs} declaration gives its warning.
        """
        for keyword, gap in NOT_IMPLEMENTED["global_defs"].items():
            got = self.warnings(f"global_defs {{\n    {keyword} 1\n}}\n")
            self.assertEqual(got, [f"k.conf:2: {message(keyword, gap)}"], keyword)
        for keyword, gap in NOT_IMPLEMENTED["<top>"].items():
            got = self.warnings(f"{keyword} x\n")
            self.assertEqual(got, [f"k.conf:1: {message(keyword, gap)}"], keyword)

    def test_messages(self) -> None:
        """
        The wording: keyword, "not implemented by keepalive_tx", the effect.
        """
        self.assertEqual(message("x", Gap("a", "b")), "'x' is not implemented by keepalive_tx (ignored)")
        self.assertEqual(optionMessage("dynamic_interfaces", "nope"), None)


def readmeTable() -> str:
    """
    README's "Not implemented" table, made from the declarations: one row
    per reason, its keywords grouped by block.
    """
    rows: dict[int, tuple[Gap, dict[str, list[str]]]] = {}
    entries = [(gap, block, f"`{keyword}`") for block, kws in NOT_IMPLEMENTED.items()
               for keyword, gap in kws.items()]
    entries += [(gap, f"`{keyword}` lines", f"`{word}`") for (keyword, word), gap in OPTIONS.items()]
    for gap, block, keyword in entries:
        rows.setdefault(id(gap), (gap, {}))[1].setdefault(block, []).append(keyword)
    lines = ["| keywords (block) | keepalived | keepalive_tx |", "|---|---|---|"]
    for gap, blocks in rows.values():
        names = "; ".join(f"{', '.join(kws)} ({'top level' if block == '<top>' else block})"
                          for block, kws in blocks.items())
        why = gap.why + (f" (**{gap.pending} branch**)" if gap.pending else "")
        lines.append(f"| {names} | {gap.keepalived} | {why} |")
    return "\n".join(lines) + "\n"


class ReadmeTests(SynchronousTestCase):
    """
    README lists every not-implemented keyword, as the table says.
    """

    def test_readmeTable(self) -> None:
        """
        README's table is the one made from the declarations (to update it,
        paste the expected text of this test's failure).
        """
        with open(README, encoding="utf-8") as f:
            text = f.read()
        expected = readmeTable()
        self.assertIn(expected, text, f"README's 'Not implemented' table should be:\n{expected}")

    def test_readmeInert(self) -> None:
        """
        README names the keywords keepalived does not act on either.
        """
        with open(README, encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("## Not implemented"):]
        for kws in INERT.values():
            for keyword in kws:
                self.assertTrue(re.search(rf"`{keyword}`", section), keyword)
