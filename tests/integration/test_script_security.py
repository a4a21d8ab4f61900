"""
keepalived's script security end to end: our daemon (C{twistd -n keepalived
-C}, in a lab namespace so that any IPVS it finds is confined there) runs
MISC_CHECK scripts from real directories on this host's file system.

  - With C{enable_script_security}, a root script in a directory anyone may
    write to is disabled (its checker removed, the script never run) while
    the script in a root-only directory runs.
  - Without it, both run and keepalived's C{SECURITY VIOLATION ... There are
    insecure scripts.} warning is logged.
  - C{script_user} is the identity of scripts without their own C{user}.

The script directories are made under C{/tmp} (root-owned, sticky), so the
verdicts do not depend on where the checkout lives.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

from twisted.trial.unittest import TestCase

from tests.integration.netns import makeLab, requireCommand
from tests.integration.netns import waitUntil as waitFor
from tests.integration.vrrpnode import _TWISTD, ROOT

# Markers are written whole (renamed into place): a test that sees one
# never reads it half-written.
SCRIPT = "#!/bin/sh\nid -u > \"$1.$$\" && mv -f \"$1.$$\" \"$1\"\nexit 0\n"


class ScriptSecurityDaemonTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        requireCommand("twistd")
        self.lab = makeLab(self, 1)
        (self.host,) = self.lab.hosts
        self.root = tempfile.mkdtemp(prefix="ktx-sec-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.root, True)
        os.chmod(self.root, 0o755)
        self.safe = self.script("safe", 0o755)
        self.unsafe = self.script("unsafe", 0o777)
        # markers: world-writable but sticky (so still safe) for the nobody run
        self.markers = os.path.join(self.root, "markers")
        os.mkdir(self.markers)
        os.chmod(self.markers, 0o1777)

    def script(self, name: str, dirMode: int) -> str:
        directory = os.path.join(self.root, name)
        os.mkdir(directory)
        path = os.path.join(directory, "check.sh")
        with open(path, "w") as f:
            f.write(SCRIPT)
        os.chmod(path, 0o755)
        os.chmod(directory, dirMode)
        return path

    def marker(self, name: str) -> str:
        return os.path.join(self.markers, name)

    def configText(self, globalDefs: str, checks: list[str] | None = None) -> str:
        """
        C{global_defs} with C{globalDefs} lines and one virtual server whose
        real servers (203.0.113.21, .22, ...) each run one of the MISC_CHECK
        commands C{checks} (default: the safe script, then the unsafe one,
        each writing its marker).
        """
        if checks is None:
            checks = [f"{self.safe} {self.marker('safe')}", f"{self.unsafe} {self.marker('unsafe')}"]
        servers = "".join(f"""\
    real_server 203.0.113.{21 + n} 80 {{
        MISC_CHECK {{
            misc_path "{command}"
        }}
    }}
""" for n, command in enumerate(checks))
        return f"""\
global_defs {{
    router_id lb1
{globalDefs}
}}
virtual_server 203.0.113.10 80 {{
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
{servers}}}
"""

    def runDaemon(self, globalDefs: str, text: str | None = None) -> str:
        """
        Run the daemon until the safe marker has been written twice, stop
        it, and return its log.

        @param text: the whole configuration (default: L{configText} of
            C{globalDefs}).
        """
        conf = os.path.join(self.root, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(text or self.configText(globalDefs))
        logPath = os.path.join(self.root, "ktx.log")
        with open(logPath, "wb") as log:
            # this checkout's code (the twistd command would import the
            # installed keepalive_tx)
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
            daemon = self.host.spawn(
                sys.executable, "-c", _TWISTD, "-n", "--pidfile",
                os.path.join(self.root, "ktx.pid"), "keepalived", "-c", conf, "-C", cwd=ROOT,
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

            def text() -> str:
                with open(logPath, errors="replace") as f:
                    return f.read()

            try:
                waitFor(lambda: os.path.exists(self.marker("safe")), 30,
                        lambda: "the safe script to run; log:\n" + text())
                os.unlink(self.marker("safe"))
                # one more round: the unsafe script had its chance too
                waitFor(lambda: os.path.exists(self.marker("safe")), 30,
                        lambda: "a second round; log:\n" + text())
            finally:
                daemon.send_signal(signal.SIGTERM)
                self.assertIn(daemon.wait(15), (0, -signal.SIGTERM))
        return text()

    def test_unsafeScriptDisabled(self) -> None:
        log = self.runDaemon("    enable_script_security\n    script_user root")
        self.assertFalse(os.path.exists(self.marker("unsafe")), log)
        self.assertIn(f"Unsafe permissions found for script '{self.unsafe}' - disabling.", log)
        self.assertIn(f"Disabling misc script '{self.unsafe}' '{self.marker('unsafe')}' due to"
                      " insecure", log)
        self.assertNotIn("SECURITY VIOLATION", log)
        with open(self.marker("safe")) as f:
            self.assertEqual(f.read().strip(), "0")

    def test_withoutSecurityEverythingRuns(self) -> None:
        log = self.runDaemon("")
        self.assertTrue(os.path.exists(self.marker("unsafe")), log)
        self.assertIn(f"Unsafe permissions found for script '{self.unsafe}'.", log)
        self.assertIn("SECURITY VIOLATION - check scripts are being executed but script_security"
                      " not enabled. There are insecure scripts.", log)

    def test_scriptUser(self) -> None:
        """
        C{script_user nobody}: scripts without their own user run as nobody,
        and an unprivileged script is not path-checked (both run).
        """
        nobody = pwd.getpwnam("nobody").pw_uid
        self.runDaemon("    enable_script_security\n    script_user nobody")
        for name in ("safe", "unsafe"):
            with open(self.marker(name)) as f:
                self.assertEqual(f.read().strip(), str(nobody))

    def test_startupAndShutdownScripts(self) -> None:
        """
        C{startup_script} has ended before any checker runs (the MISC_CHECK
        finds its marker); C{shutdown_script} runs once the daemon has
        stopped its children.
        """
        up, down = self.marker("up"), self.marker("down")
        startup = self.script("startup", 0o755)
        with open(startup, "w") as f:
            f.write(f"#!/bin/sh\nsleep 1\ntouch {up}\n")
        check = self.script("check", 0o755)
        with open(check, "w") as f:
            f.write(f"#!/bin/sh\nif [ -e {up} ]; then echo ok; else echo early; fi > \"$1.$$\"\n"
                    'mv -f "$1.$$" "$1"\n')
        shutdown = self.script("shutdown", 0o755)
        with open(shutdown, "w") as f:
            f.write(f"#!/bin/sh\ntouch {down}\n")
        log = self.runDaemon("", self.configText(
            f"    script_user root\n    enable_script_security\n    startup_script {startup}\n"
            f"    shutdown_script {shutdown}", [f"{check} {self.marker('safe')}"]))
        with open(self.marker("safe")) as f:
            self.assertEqual(f.read().strip(), "ok", log)
        self.assertTrue(os.path.exists(down), log)
        self.assertIn(f"Running startup script [{startup}]", log)
        self.assertIn(f"Running shutdown script [{shutdown}]", log)

    def test_startupScriptTimeout(self) -> None:
        """
        A startup script that hangs is killed after
        C{startup_script_timeout}; the daemon then goes on.
        """
        hang = self.script("hang", 0o755)
        with open(hang, "w") as f:
            f.write("#!/bin/sh\nsleep 60\n")
        check = self.script("check", 0o755)
        with open(check, "w") as f:
            f.write("#!/bin/sh\ntouch \"$1\"\n")
        log = self.runDaemon("", self.configText(
            f"    script_user root\n    enable_script_security\n    startup_script {hang}\n"
            "    startup_script_timeout 1", [f"{check} {self.marker('safe')}"]))
        self.assertIn(f"Startup script [{hang}] timed out", log)
