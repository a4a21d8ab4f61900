"""
The installed distribution carries the twistd plugin and twistd finds it.

A fresh virtual environment (without the checkout on C{sys.path}) gets
C{pip install .}; the dependencies come from the interpreter's own
site-packages through a C{.pth} line, so nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.integration.shared import sharedFixture

ROOT = Path(__file__).resolve().parents[2]


def _venv(tmp: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    py = tmp / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # the system site-packages as a plain path entry: its .pth files (such as
    # an editable install of this checkout) are NOT processed
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return py


def _cleanEnvironment() -> dict[str, str]:
    """
    Our environment without C{PYTHONPATH} (trial's C{-j} workers have the
    checkout on it, and so would every process they start).
    """
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _pristineCopy(prefix: str) -> tuple[Path, Path]:
    """
    A temporary directory (removed when this process exits) holding C{src},
    a copy of the checkout without caches and build products.
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    import atexit
    atexit.register(shutil.rmtree, tmp, True)
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "_trial_temp*", "*.egg-info", "build", "dist", "__pycache__", ".hypothesis"))
    for cache in src.rglob("dropin.cache"):
        cache.unlink()
    return tmp, src


def _install() -> dict[str, str]:
    tmp, src = _pristineCopy("ktx-pkg-")
    py = _venv(tmp)
    env = dict(_cleanEnvironment(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
         "--no-build-isolation", "--no-deps", "--root-user-action=ignore", str(src)],
        check=True, capture_output=True, env=env, cwd=tmp,
    )
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    return {"tmp": str(tmp), "py": str(py), "purelib": purelib}


def _build() -> dict[str, str]:
    tmp, src = _pristineCopy("ktx-dist-")
    env = dict(_cleanEnvironment(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp / "wheel"), str(src)],
        check=True, capture_output=True, env=env, cwd=tmp)
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp / "sdist")],
                   check=True, capture_output=True, cwd=src, env=_cleanEnvironment())
    return {"wheel": str(next((tmp / "wheel").glob("keepalive_tx-*.whl"))),
            "sdist": str(next((tmp / "sdist").glob("keepalive_tx-*.tar.gz")))}


#: C{pip install .} of a pristine copy into a clean virtual environment, and
#: the sdist and wheel built from one: once per test run, shared by trial's
#: workers
installed = sharedFixture("packaging-venv", _install, seconds=3)
built = sharedFixture("packaging-dist", _build, seconds=3)


class InstalledPluginTests(TestCase):
    """
    C{pip install .} into a clean environment.
    """

    def setUp(self) -> None:
        venv = installed()
        self.tmp, self.py, self.purelib = (
            Path(venv["tmp"]), Path(venv["py"]), Path(venv["purelib"]))

    def _python(self, *code: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.py), *code], capture_output=True, text=True,
                              cwd=self.tmp, env=_cleanEnvironment(), timeout=120)

    def test_pluginFileInstalled(self) -> None:
        """
        The plugin module is installed beside Twisted's plugins, with no
        C{__init__.py} of ours and no C{dropin.cache} shipped.
        """
        plugins = self.purelib / "twisted" / "plugins"
        self.assertTrue((plugins / "keepalive_tx_plugin.py").is_file())
        self.assertFalse((self.purelib / "twisted" / "__init__.py").exists())
        self.assertFalse((plugins / "__init__.py").exists())
        record = next(self.purelib.glob("keepalive_tx-*.dist-info")) / "RECORD"
        self.assertNotIn("dropin.cache", record.read_text())

    def test_checkoutNotOnPath(self) -> None:
        """
        The environment really is clean: the package is imported from the
        installed copy.
        """
        out = self._python("-c", "import keepalive_tx; print(keepalive_tx.__file__)")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.strip().startswith(str(self.purelib)), out.stdout)

    def test_discoverable(self) -> None:
        """
        L{getPlugins} yields a service maker with tapname C{keepalived}.
        """
        out = self._python("-c", "from twisted.plugin import getPlugins\n"
                        "from twisted.application.service import IServiceMaker\n"
                        "print(sorted(p.tapname for p in getPlugins(IServiceMaker)))")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("'keepalived'", out.stdout)

    def test_metricsOutOfTheBox(self) -> None:
        """
        prometheus-client is an install requirement of the installed
        distribution, and the installed copy renders C{/metrics} (501 only
        ever means a broken install).
        """
        out = self._python("-c", "from importlib.metadata import requires\n"
                           "print(requires('keepalive_tx'))\n"
                           "from keepalive_tx.status.web import statusRoot\n"
                           "from twisted.web.test.requesthelper import DummyRequest\n"
                           "request = DummyRequest([b'metrics'])\n"
                           "resource = statusRoot(lambda: {'started': None, 'vrrp': None,"
                           " 'lvs': None, 'smtp': None}).getChildWithDefault(b'metrics', request)\n"
                           "print(resource.render(request).decode())\n"
                           "print('code', request.responseCode)")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"'prometheus-client>=[0-9.]+'")
        self.assertIn("keepalive_tx_build_info{", out.stdout)
        self.assertIn("code 200", out.stdout)

    def test_twistdHelp(self) -> None:
        """
        C{twistd --help} lists keepalived; C{twistd keepalived --help} and
        C{twist keepalived --help} print our options.
        """
        out = self._python("-c", "import sys; from twisted.scripts.twistd import run; run()", "--help")
        self.assertIn("keepalived", out.stdout)
        out = self._python("-c", "from twisted.scripts.twistd import run; run()", "keepalived", "--help")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("--config-test", out.stdout)
        out = self._python("-c", "from twisted.application.twist._twist import Twist; Twist.main()",
                        "keepalived", "--help")
        self.assertIn("--config-test", out.stdout + out.stderr)


class DistributionFilesTests(TestCase):
    """
    The sdist and the wheel carry the GPL-2.0 text and the package metadata.
    """

    def setUp(self) -> None:
        self._built = {k: Path(v) for k, v in built().items()}

    def test_wheelLicenseAndMetadata(self) -> None:
        """
        The wheel's dist-info holds LICENSE and METADATA names the licence,
        classifiers, project URLs and the bounded pyroute2 requirement.
        """
        import zipfile

        with zipfile.ZipFile(self._built["wheel"]) as wheel:
            names = wheel.namelist()
            licence = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
            self.assertEqual(len(licence), 1, names)
            self.assertIn(b"GNU GENERAL PUBLIC LICENSE", wheel.read(licence[0]))
            self.assertIn(b"Version 2, June 1991", wheel.read(licence[0]))
            metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        text = metadata.decode()
        self.assertIn("Classifier: Framework :: Twisted", text)
        self.assertIn("Classifier: License :: OSI Approved :: GNU General Public License v2", text)
        self.assertIn("Project-URL: ", text)
        self.assertRegex(text, r"Requires-Dist: pyroute2.*<0\.10")
        self.assertRegex(text, r"Requires-Dist: prometheus-client")

    def test_sdistLicense(self) -> None:
        """
        The source distribution holds LICENSE at its top.
        """
        import tarfile

        with tarfile.open(self._built["sdist"]) as sdist:
            top = [m for m in sdist.getnames() if m.count("/") == 1 and m.endswith("/LICENSE")]
            self.assertEqual(len(top), 1)
            member = sdist.extractfile(top[0])
            assert member is not None
            self.assertIn(b"GNU GENERAL PUBLIC LICENSE", member.read())
