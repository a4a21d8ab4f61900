"""
Tests for L{keepalive_tx.scripts.scriptfile}: keepalived's inspection of a
script's file, over a fake file system.
"""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.scripts.scriptfile import Inspection, inspectScript, isExecutable, unsafeComponent
from tests.fakes.scripts import FakeFS, st

DIR = stat.S_IFDIR
REG = stat.S_IFREG
LNK = stat.S_IFLNK


SAFE = {
    "/etc": st(DIR | 0o755),
    "/etc/keepalived": st(DIR | 0o755),
    "/etc/keepalived/chk.sh": st(REG | 0o755),
}


def realpathIn(fs: FakeFS, links: dict[str, str] | None = None):
    """
    A strict realpath over C{fs}: C{links} maps paths to their targets.
    """
    links = links or {}

    def realpath(path: str) -> str:
        path = links.get(path, path)
        fs(path)
        return path

    return realpath


def check(fs: FakeFS, path: str = "/etc/keepalived/chk.sh", uid: int = 0, gid: int = 0,
          enabled: bool = True, search: str | None = None) -> Inspection:
    return inspectScript(path, uid, gid, enabled, path=search, stat_=fs, lstat=fs,
                         realpath=realpathIn(fs))


class UnsafeComponentTests(SynchronousTestCase):
    def test_rootOwnedPathIsSafe(self) -> None:
        self.assertIsNone(unsafeComponent("/etc/keepalived/chk.sh", FakeFS(SAFE)))

    def test_worldWritableDirectory(self) -> None:
        fs = FakeFS({**SAFE, "/etc/keepalived": st(DIR | 0o777)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs),
                         ("unsafe", "/etc/keepalived"))

    def test_stickyDirectoryIsSafe(self) -> None:
        """
        A world-writable directory with the sticky bit (C{/tmp}) is safe:
        nobody else can replace a root-owned file in it.
        """
        fs = FakeFS({"/tmp": st(DIR | 0o1777), "/tmp/chk.sh": st(REG | 0o755)})
        self.assertIsNone(unsafeComponent("/tmp/chk.sh", fs))

    def test_groupWritable(self) -> None:
        """
        Group write permission is unsafe unless the group is root.
        """
        rootGroup = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o775)})
        self.assertIsNone(unsafeComponent("/etc/keepalived/chk.sh", rootGroup))
        staff = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o775, gid=50)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", staff),
                         ("unsafe", "/etc/keepalived/chk.sh"))

    def test_nonRootOwner(self) -> None:
        fs = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o700, uid=1000)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs)[0], "unsafe")
        fs = FakeFS({**SAFE, "/etc": st(DIR | 0o755, uid=1000)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs), ("unsafe", "/etc"))

    def test_symlinkModeIgnored(self) -> None:
        """
        A root-owned symlink's 0777 mode means nothing.
        """
        fs = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(LNK | 0o777)})
        self.assertIsNone(unsafeComponent("/etc/keepalived/chk.sh", fs))

    def test_wrongTypeAndMissing(self) -> None:
        fs = FakeFS({**SAFE, "/etc": st(REG | 0o644)})
        self.assertEqual(unsafeComponent("/etc/keepalived/chk.sh", fs), ("wrong type", "/etc"))
        self.assertEqual(unsafeComponent("/etc/keepalived/nope", FakeFS(SAFE)),
                         ("not found", "/etc/keepalived/nope"))


class InspectTests(SynchronousTestCase):
    unsafe = FakeFS({**SAFE, "/etc/keepalived": st(DIR | 0o777)})

    def test_safe(self) -> None:
        found = check(FakeFS(SAFE))
        self.assertEqual(found, Inspection(path="/etc/keepalived/chk.sh", isScript=True,
                                           executable=True))
        self.assertTrue(found.runnable(False))
        self.assertIsNone(found.reason(False))

    def test_enabledInhibitsUnsafeRootScript(self) -> None:
        found = check(self.unsafe)
        self.assertEqual((found.insecure, found.inhibit, found.isScript), (True, True, True))
        self.assertEqual(found.notes, ("Unsafe permissions found for script "
                                       "'/etc/keepalived/chk.sh' - disabling.",))
        self.assertEqual(found.reason(True), "due to insecure")

    def test_notEnabledOnlyFlags(self) -> None:
        found = check(self.unsafe, enabled=False)
        self.assertEqual((found.insecure, found.inhibit), (True, False))
        self.assertTrue(found.runnable(False))
        self.assertEqual(found.notes, ("Unsafe permissions found for script "
                                       "'/etc/keepalived/chk.sh'.",))

    def test_unprivilegedScriptNotChecked(self) -> None:
        """
        A script run as an ordinary user and group is not path-checked.
        """
        self.assertFalse(check(self.unsafe, uid=1000, gid=1000).insecure)
        self.assertTrue(check(self.unsafe, uid=1000, gid=0).inhibit)

    def test_setuidRootFileChecked(self) -> None:
        fs = FakeFS({**SAFE, "/etc/keepalived": st(DIR | 0o777),
                     "/etc/keepalived/chk.sh": st(REG | 0o4755)})
        self.assertTrue(check(fs, uid=1000, gid=1000).insecure)

    def test_missing(self) -> None:
        """
        A missing file is not found (and no script: no security finding).
        """
        found = check(FakeFS(SAFE), "/etc/keepalived/nope.sh")
        self.assertEqual((found.notFound, found.isScript, found.path), (True, False, None))
        self.assertEqual(found.reason(True), "since not found/accessible")
        self.assertEqual(found.notes, ("Script /etc/keepalived/nope.sh cannot be accessed - "
                                       "No such file or directory",))
        self.assertFalse(found.runnable(True))

    def test_notExecutable(self) -> None:
        """
        An existing file its user may not execute is a script (a security
        finding) that is disabled.
        """
        fs = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o644)})
        found = check(fs)
        self.assertEqual((found.isScript, found.executable, found.notFound), (True, False, False))
        self.assertFalse(found.runnable(True))
        self.assertEqual(found.reason(True), "since not executable")
        self.assertEqual(found.notes, ("WARNING - script '/etc/keepalived/chk.sh' is not"
                                       " executable for uid:gid 0:0 - disabling.",))
        runsAsOwner = FakeFS({**SAFE, "/etc/keepalived/chk.sh": st(REG | 0o071, uid=7)})
        self.assertFalse(check(runsAsOwner, uid=7, gid=7).runnable(True))

    def test_directory(self) -> None:
        """
        A directory: root may "execute" it, and the path check finds the
        wrong file type (keepalived's C{due to insecure}).
        """
        found = check(FakeFS(SAFE), "/etc/keepalived")
        self.assertTrue(found.inhibit)
        self.assertEqual(found.reason(True), "due to insecure")
        self.assertEqual(found.notes, ("Wrong file type found in script path "
                                       "'/etc/keepalived'.",))

    def test_pathSearch(self) -> None:
        """
        A bare name is searched on PATH: the first regular executable file;
        none gives keepalived's path-search lines.
        """
        fs = FakeFS({**SAFE, "/usr": st(DIR | 0o755), "/usr/bin": st(DIR | 0o755),
                     "/usr/bin/chk.sh": st(REG | 0o644), "/usr/bin/sub": st(DIR | 0o755)})
        found = check(fs, "chk.sh", search="/usr/bin:/etc/keepalived")
        self.assertEqual(found.path, "/etc/keepalived/chk.sh")
        self.assertIn("resolved by path search to `/etc/keepalived/chk.sh`", found.notes[0])
        denied = check(fs, "chk.sh", search="/usr/bin")
        self.assertEqual(denied.notes, ("Permissions failure for script chk.sh in path -"
                                        " disabling",))
        self.assertTrue(denied.notFound)
        missing = check(fs, "nope", search="/usr/bin")
        self.assertEqual(missing.notes, ("Cannot find script nope in path - disabling",))
        self.assertTrue(check(fs, "sub", search="/usr/bin").notFound)

    def test_shellTest(self) -> None:
        """
        C{</path} (blanks allowed after C{<}) is a redirection test: no file
        is looked at; only some callers accept it.
        """
        for name in ("</dev/tcp/127.0.0.1/80", "<  /tmp/flag", "<\t/x"):
            found = check(FakeFS({}), name)
            self.assertEqual(found, Inspection(shellTest=True), name)
            self.assertTrue(found.runnable(True))
            self.assertFalse(found.runnable(False))
        self.assertTrue(check(FakeFS({}), "<tmp").notFound)

    def test_resolvedPathIsChecked(self) -> None:
        """
        The resolved path is what runs and is checked (C{/bin} -> C{/usr/bin}
        on merged-usr systems is not "wrong type"); a configured file name
        that differs from the resolved one is kept when it is the same file
        in the resolved directory, and both are checked.
        """
        fs = FakeFS({"/usr": st(DIR | 0o755), "/usr/bin": st(DIR | 0o755),
                     "/usr/bin/true": st(REG | 0o755, ino=7),
                     "/usr/bin/alias": st(REG | 0o755, ino=7),
                     "/usr/bin/other": st(REG | 0o755, ino=8),
                     "/bin": st(LNK | 0o777)})
        links = {"/bin/true": "/usr/bin/true", "/bin/alias": "/usr/bin/true",
                 "/bin/other": "/usr/bin/true"}
        seen: list[str] = []

        def lstat(path: str) -> os.stat_result:
            seen.append(path)
            return fs(path)

        def inspect(name: str) -> Inspection:
            seen.clear()
            return inspectScript(name, 0, 0, True, stat_=lambda p: fs(links.get(p, p)),
                                 lstat=lstat, realpath=realpathIn(fs, links))

        found = inspect("/bin/true")
        self.assertEqual((found.path, found.notes), ("/usr/bin/true", ()))
        self.assertNotIn("/bin", seen)
        self.assertEqual(inspect("/bin/alias").path, "/usr/bin/alias")
        self.assertIn("/usr/bin/alias", seen)
        self.assertIn("/usr/bin/true", seen)
        self.assertEqual(inspect("/bin/other").path, "/usr/bin/true")


class IsExecutableTests(SynchronousTestCase):
    def test_isExecutable(self) -> None:
        """
        keepalived's rule: root needs any x bit; the owner the user bit; the
        group the group bit; others the other bit.
        """

        def st(mode, uid=100, gid=200):
            return SimpleNamespace(st_mode=stat.S_IFREG | mode, st_uid=uid, st_gid=gid)

        self.assertTrue(isExecutable(st(0o001), 0, 0))
        self.assertFalse(isExecutable(st(0o644), 0, 0))
        self.assertTrue(isExecutable(st(0o100), 100, 1))
        self.assertFalse(isExecutable(st(0o011), 100, 200))
        self.assertTrue(isExecutable(st(0o010), 101, 200))
        self.assertFalse(isExecutable(st(0o001), 101, 200))
        self.assertTrue(isExecutable(st(0o001), 101, 201))
