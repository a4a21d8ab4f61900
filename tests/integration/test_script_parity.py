"""
Scripts that cannot run, and how script commands are split, side by side
with Debian's keepalived 2.2.7 in a lab namespace.

  - L{ConfigTestParityTests}: a corpus of configurations with missing, non
    executable, unsafe, misplaced and well-formed scripts of every kind;
    C{keepalived -t} and ours C{-t} must exit with the same code, and
    keepalived's script lines (C{Disabling track script ...}, C{SECURITY
    VIOLATION ...}) must be ours too.
  - L{MissingTrackScriptTests}: ours and keepalived, each as the only node,
    with a weight-0 C{vrrp_script} whose file does not exist (the common
    container case), a non-executable one and a missing notify script:
    both become MASTER (the scripts are disabled, not failing).
  - L{SplitParityTests}: C{notify_master} commands with quotes in the
    middle of words, escapes in both passes, user and group words: both
    daemons run the same argv as the same user (the script records them).

The scripts live under C{/tmp} (root-owned, sticky), so security verdicts do
not depend on where the checkout lives.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab, requireCommand, waitUntil
from tests.integration.support import PARITY_INSTANCE, scriptConfig
from tests.integration.vrrpnode import (
    KEEPALIVED,
    OURS,
    Node,
    VrrpLabMixin,
    configTestsMany,
)


class ScriptTree:
    """
    Scripts under a fresh C{/tmp} directory: C{ok.sh} (0755), C{noexec.sh}
    (0644), C{adir/} (a directory), C{ww/ok.sh} (in a world-writable
    directory).
    """

    def __init__(self, testcase: TestCase) -> None:
        self.root = tempfile.mkdtemp(prefix="ktx-scr-", dir="/tmp")
        testcase.addCleanup(shutil.rmtree, self.root, True)
        os.chmod(self.root, 0o755)
        self.ok = self.write("ok.sh", "#!/bin/sh\nexit 0\n", 0o755)
        self.noexec = self.write("noexec.sh", "#!/bin/sh\nexit 0\n", 0o644)
        self.adir = os.path.join(self.root, "adir")
        os.mkdir(self.adir)
        ww = os.path.join(self.root, "ww")
        os.mkdir(ww)
        self.unsafe = self.write("ww/ok.sh", "#!/bin/sh\nexit 0\n", 0o755)
        os.chmod(ww, 0o777)
        self.missing = os.path.join(self.root, "missing", "chk.sh")

    def write(self, name: str, text: str, mode: int) -> str:
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path


def corpus(t: ScriptTree) -> dict[str, tuple[str, int]]:
    """
    C{name -> (configuration, keepalived 2.2.7's -t exit code)}.
    """
    secure = "    enable_script_security\n    script_user root\n"
    misc = "        MISC_CHECK {{\n            misc_path {}\n        }}\n".format
    tcp = "        TCP_CHECK {\n        }\n"
    return {
        "track missing": (scriptConfig(vscript=t.missing), 5),
        "track missing, script security": (scriptConfig(secure, vscript=t.missing), 5),
        "track missing, bare name": (scriptConfig(vscript="no-such-command-ktx"), 5),
        "track found by path search": (scriptConfig(vscript="true"), 6),
        "track not executable": (scriptConfig(vscript=t.noexec), 6),
        "track not executable, script security": (scriptConfig(secure, vscript=t.noexec), 0),
        "track directory": (scriptConfig(vscript=t.adir), 6),
        "track unsafe": (scriptConfig(vscript=t.unsafe), 6),
        "track unsafe, script security": (scriptConfig(secure, vscript=t.unsafe), 5),
        "track redirection test": (scriptConfig(vscript="</dev/tcp/127.0.0.1/80"), 0),
        "track quoted prefix joins": (scriptConfig(secure, vscript=f'\\"{t.ok[:-3]}\\".sh'), 0),
        "track quoted prefix, missing": (scriptConfig(secure, vscript=f'\\"{t.ok}\\"zz'), 5),
        "track, no default user under security": (
            scriptConfig("    enable_script_security\n", vscript=t.ok), 5),
        "track unknown user": (
            scriptConfig(vscript=t.ok).replace("    interval 1\n", "    interval 1\n"
                                         "    user no-such-user-ktx\n"), 5),
        "misc unknown user": (scriptConfig(instance=None, vs="", rs=misc(t.ok).replace(
            "        }\n", "            user no-such-user-ktx\n        }\n")), 5),
        "notify missing": (scriptConfig(instance=f"    notify_master {t.missing}\n"), 0),
        "notify not executable": (scriptConfig(instance=f"    notify_master {t.noexec}\n"), 6),
        "notify unknown user": (
            scriptConfig(instance=f"    notify_master {t.ok} no-such-user-ktx\n"), 0),
        "notify lone backslash": (scriptConfig(instance=f'    notify_master "{t.ok}\\\\"\n'), 0),
        "notify missing, no default user under security": (
            scriptConfig("    enable_script_security\n", instance=f"    notify_master {t.missing}\n"),
            5),
        "misc missing": (scriptConfig(instance=None, vs="", rs=misc(t.missing)), 0),
        "misc existing": (scriptConfig(instance=None, vs="", rs=misc(t.ok)), 6),
        "misc not executable": (scriptConfig(instance=None, vs="", rs=misc(t.noexec)), 6),
        "quorum missing": (scriptConfig(instance=None, vs=f"    quorum_up {t.missing}\n", rs=tcp), 0),
        "quorum existing": (scriptConfig(instance=None, vs=f"    quorum_up {t.ok}\n", rs=tcp), 6),
        "real server notify missing": (
            scriptConfig(instance=None, vs="", rs=f"        notify_up {t.missing}\n" + tcp), 0),
        "startup missing": (scriptConfig(f"    startup_script {t.missing}\n"), 0),
        "startup existing": (scriptConfig(f"    startup_script {t.ok}\n"), 6),
        "fifo script missing": (
            scriptConfig(f"    notify_fifo {t.root}/fifo\n    notify_fifo_script {t.missing}\n"), 0),
        "misc missing, track existing": (
            scriptConfig(vscript=t.ok, vs="", rs=misc(t.missing)), 6),
    }


#: keepalived's script lines that ours must print too (prefix removed)
_SCRIPT_LINE = re.compile(r"^(?:\(.*?Line \d+\) )?(.*(?:track script|SECURITY VIOLATION|"
                          r"default user).*)$")


class ConfigTestParityTests(TestCase):
    """
    C{-t} on the corpus, keepalived and ours, in one lab host.
    """

    timeout = 240

    def test_corpus(self) -> None:
        keepalived = requireCommand("keepalived")
        (host,) = makeLab(self, 1).hosts
        tree = ScriptTree(self)
        work = os.path.abspath(self.mktemp())
        os.mkdir(work)
        cases = corpus(tree)
        paths = []
        for n, (text, _) in enumerate(cases.values()):
            paths.append(os.path.join(work, f"case{n}.conf"))
            with open(paths[-1], "w") as f:
                f.write(text)
        problems = []
        runs = configTestsMany(host, keepalived, paths, work)
        for (name, (_, expected)), (theirs, ours) in zip(cases.items(), runs, strict=True):
            wanted = [m.group(1) for m in map(_SCRIPT_LINE.match, theirs.stderr.splitlines())
                      if m]
            ourLines = ours.stderr.splitlines()
            missing = [line for line in wanted if not any(line in o for o in ourLines)]
            extra = [o for o in ourLines if "SECURITY VIOLATION" in o and o not in wanted]
            if (theirs.returncode, ours.returncode) != (expected, expected) or missing or extra:
                problems.append(
                    f"{name}: keepalived -t {theirs.returncode} (expected {expected}), ours "
                    f"{ours.returncode}; lines missing {missing}, extra {extra}\n"
                    f"  keepalived: {theirs.stderr.strip()!r}\n  ours: {ours.stderr.strip()!r}")
        self.assertEqual(problems, [], "\n".join(problems))


class MissingTrackScriptTests(VrrpLabMixin, TestCase):
    """
    A node alone on its LAN whose weight-0 track scripts cannot run becomes
    MASTER, ours as keepalived.
    """

    timeout = 90

    def test_bothBecomeMaster(self) -> None:
        (ours,) = self.makeNodes([OURS])
        theirs = Node(ours.host, KEEPALIVED, self.directory)
        tree = ScriptTree(self)
        body = (f"    notify_master {tree.missing}\n"
                "    track_script {\n        chk\n        chk_noexec\n    }\n")
        text = (f'vrrp_script chk {{\n    script "{tree.missing}"\n    interval 1\n}}\n'
                f'vrrp_script chk_noexec {{\n    script "{tree.noexec}"\n    interval 1\n}}\n'
                + PARITY_INSTANCE.format(body=body))
        for node in (ours, theirs):
            node.start(text)
            self.waitHolders("192.0.2.100", [1], timeout=20)
            log = node.logSinceStart()
            self.assertIn("Disabling track script chk since not found/accessible", log, node)
            self.assertIn(f"WARNING - script '{tree.noexec}' is not executable", log, node)
            self.assertNotIn("FAULT", log, node)
            node.stop()
            self.waitHolders("192.0.2.100", [], timeout=10)


#: notify_master commands whose split both daemons must agree on (the
#: script records its argv and uid in a file named after its first argument)
SPLIT_CASES = (
    '"{s}"zz',
    '"{s} c2 a\\ b"',
    "{s}\\ c3",
    '"{s} c4 \\\\x41"',
    '"{s} c5 \\x414"',
    "'{s} c6 \"q r\"'",
    '"{s} c7" nobody',
    '"{s} c8" nobody nogroup',
    '"{s} c10 \\"dq\\""',
    "\"{s} c11 'it''s' x\\\"y\\\"z\"",
    '"{s} c12 a\\0b c"',
    '"{s} c13 \\c"',
    '"{s} c14" nobody :nogroup',
    "\"{s} c15 '\\t' \\\"\\t\\\"\"",
    "{s} c16 extra",
    "\"{s} c17 ''\"",
    '"{s} c19 \\101\\1012"',
    '"{s} c20 \\\\\\\\ \\\\ab"',
    '"{s} c24 \\cab"',
)

RECORDER = """\
#!/bin/sh
f="{out}/$(basename "$0")_$1"
{{ id -u; for a in "$0" "$@"; do printf '[%s]' "$a" | od -An -c; done; }} > "$f.tmp"
mv "$f.tmp" "$f"
"""


class SplitParityTests(VrrpLabMixin, TestCase):
    """
    The same tricky C{notify_master} lines run by keepalived and by ours.
    """

    timeout = 120

    def runAll(self, node, text: str, out: str) -> dict[str, str]:
        for name in os.listdir(out):
            os.unlink(os.path.join(out, name))
        node.start(text)
        expected = len(SPLIT_CASES) - 2  # c14 and c16 name unknown users
        try:
            waitUntil(lambda: len(os.listdir(out)) >= expected, 30,
                      lambda: f"{node.kind} to run the notify scripts: {os.listdir(out)}\n"
                              + node.logTail())
            time.sleep(1)  # any extra run would show as an extra file
        finally:
            node.stop()
        result = {}
        for name in sorted(os.listdir(out)):
            with open(os.path.join(out, name)) as f:
                result[name] = f.read()
        return result

    def test_sameArgv(self) -> None:
        (ours,) = self.makeNodes([OURS])
        theirs = Node(ours.host, KEEPALIVED, self.directory)
        tree = ScriptTree(self)
        out = os.path.join(tree.root, "out")
        os.mkdir(out)
        os.chmod(out, 0o1777)
        script = tree.write("args.sh", RECORDER.format(out=out), 0o755)
        # "args.sh"zz runs args.shzz; /path/args.sh\ c3 must not run "args.sh c3"
        tree.write("args.shzz", RECORDER.format(out=out), 0o755)
        tree.write("args.sh c3", RECORDER.format(out=out), 0o755)
        blocks = []
        for n, case in enumerate(SPLIT_CASES):
            vrid = 10 + n
            blocks.append(
                PARITY_INSTANCE.format(body=f"    notify_master {case.format(s=script)}\n")
                .replace("VI_1", f"VI_{vrid}").replace("virtual_router_id 51",
                                                       f"virtual_router_id {vrid}")
                .replace("192.0.2.100/24", f"198.51.100.{vrid}/32"))
        text = "global_defs {\n    router_id t\n}\n" + "".join(blocks)
        results = {node.kind: self.runAll(node, text, out) for node in (theirs, ours)}
        self.assertEqual(results[OURS], results[KEEPALIVED])
        self.assertIn("args.shzz_", results[OURS])
        self.assertNotIn("args.sh c3_", results[OURS])
        self.assertNotIn("args.sh_c14", results[OURS])
        self.assertEqual(results[OURS]["args.sh_c7"].split()[0], str(_uid("nobody")))


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid
