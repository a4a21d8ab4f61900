"""
Run one command inside a throw-away User-Mode-Linux guest whose kernel has
the real IPVS (LVS) load balancer.

Why: the host kernel of the development and CI machines may be built
without C{CONFIG_IP_VS} and be unable to load modules.  Debian's
C{user-mode-linux} package ships a Linux kernel that runs as an ordinary
host process (C{/usr/bin/linux.uml}) with its modules, C{ip_vs*.ko}
included, in C{/usr/lib/uml/modules/VERSION}.  It boots in about 1.5-2.5 s.

Inside the guest:

  - the host's root filesystem is the guest's root, B{read-only} (hostfs),
    so the checkout, the Python interpreter and its site-packages are all
    there at the same paths (guest code imports C{keepalive_tx} straight
    from the checkout; no byte-code is written there, so L{runInGuest}
    compiles the checkout on the host first: compiling in the guest, again
    at every start, doubled the CPU time of a guest running our daemon);
  - C{/run}, C{/tmp} and C{/dev/shm} are fresh tmpfs (writes vanish);
  - you are root, C{lo} is up (IPVS refuses destinations while it is down),
    the C{ip_vs} module and every scheduler module present are loaded
    (with C{finit_module(2)} from a few lines of Python: the host may have
    no kmod); there is B{no module autoloader}, so ask for extra modules
    (C{veth}, C{bridge}, ...) with C{runInGuest(..., modules=...)};
  - the network is loopback only: build namespaces/veths inside the guest;
  - stdin is C{/dev/null}; stdout and stderr go to files in a host
    directory mounted read-write (hostfs writes are write-through), read
    back when the guest has powered off.

Use L{runInGuest} from tests; L{requireUML} skips (or fails under C{CI})
when the tools are missing.  Test code may block; this module is never
imported by library code.

Command line: C{python -m tests.integration.uml [--timeout S] -- CMD ...}
"""

from __future__ import annotations

import compileall
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SkipTest

UML_BINARY = os.environ.get("KTX_UML", "/usr/bin/linux.uml")
UML_MODULES = Path("/usr/lib/uml/modules")

#: Modules loaded at boot (those missing from the kernel are skipped).
IPVS_MODULES = (
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_mh",
    "ip_vs_twos",
)

#: Exit codes of our own (the command's are relayed as they are).
EXIT_TIMEOUT = 124
EXIT_GUEST_FAILED = 125

# PID 1 of the guest.  Process creation costs ~45 ms under UML, so it runs
# as few commands as possible: one mount -a with a prepared fstab, one
# module loader, one ip.
_INIT = r"""#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -a -T "$KTX_UML_RUN/fstab" || echo "uml: mount failed" >&2
run=/run/ktx                   # the host run directory, read-write
"$(cat $run/python)" -S -I $run/insmod.py $run/modules >>$run/out/init.log 2>&1
echo ktx-uml >/proc/sys/kernel/hostname
ip link set lo up
(
    . $run/env
    cd "$(cat $run/cwd)" || exit 125
    . $run/cmd
) </dev/null >$run/out/stdout 2>$run/out/stderr
echo $? >$run/out/rc
echo o >/proc/sysrq-trigger
sleep 10
"""

# Loads kernel modules (absolute .ko paths, dependencies first) with
# finit_module(2): the host may have no kmod, and this costs one process.
_INSMOD = """import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for path in open(sys.argv[1]).read().split():
    fd = os.open(path, os.O_RDONLY)
    if libc.syscall(313, fd, b"", 0) != 0:
        e = ctypes.get_errno()
        if e != errno.EEXIST:
            print("uml: cannot load", path, os.strerror(e))
    os.close(fd)
"""

_ENV_SKIP = frozenset(("PWD", "OLDPWD", "SHLVL", "_", "PPID", "BASHOPTS", "SHELLOPTS"))


def umlKernelRelease() -> str | None:
    """
    The release of the installed UML kernel's modules, or C{None}.
    """
    try:
        releases = sorted(p.name for p in UML_MODULES.iterdir() if (p / "modules.dep").exists())
    except OSError:
        return None
    return releases[-1] if releases else None


def umlProblems() -> list[str]:
    """
    Why a guest cannot run here (empty when it can).
    """
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    if not os.access(UML_BINARY, os.X_OK):
        problems.append(f"{UML_BINARY} missing (apt-get install user-mode-linux)")
    if umlKernelRelease() is None:
        problems.append(f"no modules under {UML_MODULES}")
    return problems


def requireUML(*commands: str) -> None:
    """
    Skip (or, when C{CI} is set, fail) unless a UML guest can run here and
    the host has C{commands} (the guest sees the host's programs).
    """
    problems = umlProblems()
    for name in commands:
        if shutil.which(name) is None and not os.path.exists(f"/usr/sbin/{name}"):
            problems.append(f"{name} missing")
    if problems:
        reason = "User-Mode Linux guest unavailable: " + ", ".join(problems)
        if os.environ.get("CI"):
            raise AssertionError(reason + " (CI is set: integration tests must run)")
        raise SkipTest(reason)


def _fstabPath(path: str) -> str:
    return path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")


def moduleLoadOrder(release: str, names: tuple[str, ...] | list[str]) -> list[Path]:
    """
    Absolute paths of the UML kernel modules C{names} and their
    dependencies, each once, dependencies first (from C{modules.dep});
    names the kernel does not ship are left out.
    """
    base = UML_MODULES / release
    deps: dict[str, list[str]] = {}
    byName: dict[str, str] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        module, _, rest = line.partition(":")
        deps[module] = rest.split()
        byName[Path(module).name.split(".ko")[0].replace("-", "_")] = module
    order: list[str] = []

    def visit(module: str) -> None:
        if module in order:
            return
        # modules.dep lists every (transitive) dependency, deepest last
        for dep in reversed(deps.get(module, [])):
            visit(dep)
        order.append(module)

    for name in names:
        module = byName.get(name.replace("-", "_"))
        if module is not None:
            visit(module)
    return [base / m for m in order]


_CHECKOUT = Path(__file__).resolve().parents[2]
_compiled = False


def _compileCheckout() -> None:
    """
    Byte-compile the checkout's Python code (once per process; files
    already compiled cost a C{stat}).
    """
    global _compiled
    if not _compiled:
        for part in ("keepalive_tx", "tests", "twisted"):
            compileall.compile_dir(str(_CHECKOUT / part), quiet=2)
        _compiled = True


def _prepare(
    run: Path, argv: list[str], cwd: str, env: dict[str, str], release: str, modules: list[str]
) -> None:
    (run / "out").mkdir()
    init = run / "init"
    init.write_text(_INIT)
    init.chmod(0o755)
    (run / "insmod.py").write_text(_INSMOD)
    (run / "python").write_text(sys.executable + "\n")
    paths = moduleLoadOrder(release, modules)
    (run / "modules").write_text("\n".join(str(p) for p in paths) + "\n")
    fstab = [
        "proc /proc proc defaults 0 0",
        "sysfs /sys sysfs defaults 0 0",
        "tmpfs /run tmpfs mode=755 0 0",
        f"none /run/ktx hostfs {_fstabPath(str(run))},X-mount.mkdir 0 0",
        "tmpfs /run/netns tmpfs X-mount.mkdir 0 0",
        "tmpfs /tmp tmpfs mode=1777 0 0",
    ]
    # The guest gets fresh tmpfs on /tmp and /run: a checkout (or working
    # directory) living there -- CI may clone anywhere -- is mounted back in.
    hidden = []
    for path in (str(_CHECKOUT), cwd):
        if path.startswith(("/tmp/", "/run/")) and not any(
            path == h or path.startswith(h + "/") for h in hidden
        ):
            hidden.append(path)
    for path in sorted(hidden, key=len):
        fstab.append(f"none {_fstabPath(path)} hostfs {_fstabPath(path)},X-mount.mkdir 0 0")
    (run / "fstab").write_text("\n".join(fstab) + "\n")
    (run / "cwd").write_text(cwd + "\n")
    lines = []
    for key, value in env.items():
        if key in _ENV_SKIP or not key.replace("_", "a").isalnum() or key[0].isdigit():
            continue
        lines.append(f"export {key}={shlex.quote(value)}")
    (run / "env").write_text("\n".join(lines) + "\n")
    (run / "cmd").write_text("exec " + " ".join(shlex.quote(a) for a in argv) + "\n")


def runInGuest(
    argv: list[str] | tuple[str, ...],
    timeout: float = 60.0,
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    mem: str = "512M",
    modules: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """
    Boot a guest, run C{argv} in it and return its outcome.

    @param argv: the command (looked up on the guest's C{PATH}, which is
        the host's C{PATH} plus the sbin directories).
    @param timeout: seconds for the whole run (boot included); on expiry
        the guest is killed and C{returncode} is L{EXIT_TIMEOUT}.
    @param cwd: working directory in the guest (default: ours); it must
        exist on the host, and is read-only in the guest.
    @param env: environment of the command (default: ours), with
        C{PYTHONDONTWRITEBYTECODE=1} added.
    @param modules: kernel modules to load besides the IPVS ones (the
        guest has no module autoloader: e.g. C{("veth", "bridge")}).
    @return: C{args}, C{returncode} (the command's; L{EXIT_GUEST_FAILED}
        when the guest never ran it), C{stdout}, C{stderr} (text); the
        guest console log is appended to C{stderr} when it failed.
    """
    argv = list(argv)
    release = umlKernelRelease()
    if release is None:
        raise RuntimeError(f"no UML modules under {UML_MODULES}")
    _compileCheckout()
    environment = dict(os.environ if env is None else env)
    environment.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    environment["PATH"] = environment.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
    with tempfile.TemporaryDirectory(prefix="ktx-uml-") as tmp:
        run = Path(tmp)
        _prepare(
            run,
            argv,
            os.path.realpath(cwd or os.getcwd()),
            environment,
            release,
            list(IPVS_MODULES) + list(modules),
        )
        umid = f"ktx{os.getpid()}{run.name[-6:]}"
        console = open(run / "console.log", "wb")
        try:
            proc = subprocess.Popen(
                [
                    UML_BINARY,
                    f"mem={mem}",
                    "root=/dev/root",
                    "rootfstype=hostfs",
                    "rootflags=/",
                    "ro",
                    f"init={run / 'init'}",
                    f"KTX_UML_RUN={run}",
                    f"umid={umid}",
                    f"uml_dir={run}",
                    "con=null",
                    "ssl=null",
                    "con0=null,fd:1",
                    "quiet",
                    "loglevel=3",
                    "panic=1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=console,
                start_new_session=True,
            )
        finally:
            console.close()
        timedOut = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timedOut = True
        finally:
            # UML runs as several host processes in its own session
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        host = run / "out"

        def read(name: str) -> str:
            try:
                return (host / name).read_text(errors="replace")
            except OSError:
                return ""

        stdout, stderr, rc = read("stdout"), read("stderr"), read("rc").strip()
        if timedOut:
            returncode = EXIT_TIMEOUT
            stderr += f"\numl: guest timed out after {timeout}s\n"
        elif rc.isdigit():
            returncode = int(rc)
        else:
            returncode = EXIT_GUEST_FAILED
        if returncode in (EXIT_TIMEOUT, EXIT_GUEST_FAILED) or read("init.log"):
            log = (run / "console.log").read_text(errors="replace")
            stderr += "\n--- guest console ---\n" + "\n".join(log.splitlines()[-30:]) + "\n" + read("init.log")
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)


def main(args: list[str]) -> int:
    timeout = 600.0
    while args and args[0] != "--":
        if args[0] == "--timeout" and len(args) > 1:
            timeout = float(args[1])
            args = args[2:]
        else:
            print("usage: python -m tests.integration.uml [--timeout S] -- CMD ...", file=sys.stderr)
            return 2
    args = args[1:]
    if not args:
        print("usage: python -m tests.integration.uml [--timeout S] -- CMD ...", file=sys.stderr)
        return 2
    started = time.monotonic()
    result = runInGuest(args, timeout)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    print(f"uml: {time.monotonic() - started:.2f} s", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
