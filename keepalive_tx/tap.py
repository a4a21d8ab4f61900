"""
twistd / twist entry point: keepalived-compatible command line and
L{makeService}.

C{twistd keepalived -c FILE --config-test} prints every configuration
problem as C{FILE:LINE: message} and exits with keepalived's C{-t} codes
(catalogue §0 #3): 0 clean, 4 fatal, 5 other errors or warnings, 6 script
security.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from twisted.application.service import IService, Service
from twisted.python import usage

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"


class Options(usage.Options):
    """
    keepalived's options, as far as they make sense under twistd.
    """

    synopsis = "[options]"
    longdesc = (
        "Run VRRP failover, LVS health checks and SMTP alerts from a keepalived.conf. "
        "Reserved keepalived flags are accepted for compatibility."
    )

    optParameters = [
        ["config", "c", DEFAULT_CONFIG, "Configuration file (keepalived's -f/--use-file)."],
        ["config-id", "i", None, "Id used to select @ID conditional lines (default: short host name)."],
        ["status", None, None,
         "Serve the status API and /metrics on this endpoint, e.g. tcp:8123:interface=127.0.0.1 "
         "(keepalive_tx extension; overrides global_defs status_listen)."],
    ]
    optFlags = [
        ["config-test", "t", "Check the configuration, print problems and exit (keepalived -t)."],
        ["dump-conf", "d", "Print the normalised configuration model."],
        ["vrrp", "P", "Run only the VRRP subsystem."],
        ["check", "C", "Run only the health-checker (LVS) subsystem."],
        ["no_bfd", "B", "Do not run the BFD subsystem."],
        ["log-console", "l", "Also log to the console."],
        ["log-detail", "D", "Detailed logging."],
        ["all-config", "e", "Any missing configuration file is an error."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stdout: TextIO = sys.stdout
        self.stderr: TextIO = sys.stderr

    def opt_use_file(self, path: str) -> None:
        """
        Alias of --config (keepalived's -f/--use-file).
        """
        self["config"] = path

    opt_f = opt_use_file

    def opt_signum(self, name: str) -> None:
        """
        Print the number of keepalived's signal function NAME (STOP, RELOAD,
        DATA, STATS, STATS_CLEAR, JSON) and exit.
        """
        from keepalive_tx.status.dumps import signalNumber

        number = signalNumber(name)
        if number is None:
            self.stderr.write(f"Unknown sigfunc {name}\n")
            raise SystemExit(1)
        self.stdout.write(f"{number}\n")
        raise SystemExit(0)

    def postOptions(self) -> None:
        if self["vrrp"] and self["check"]:
            raise usage.UsageError("--vrrp and --check are mutually exclusive")
        if self["config-test"]:
            code = configTest(self, self.stdout, self.stderr)
            _noCollectionAtExit()
            raise SystemExit(code)

    def load(self):
        """
        Read and validate the configuration named by these options.
        """
        from keepalive_tx.config import loadConfig

        return loadConfig(
            self["config"], configId=self["config-id"], allConfig=bool(self["all-config"])
        )


_exitHook: list[bool] = []


def _noCollectionAtExit() -> None:
    """
    The process is about to exit (C{--config-test}): have the interpreter
    skip the garbage collections of its shutdown, which would traverse every
    object twistd and the configuration left behind (about 40 ms) only to free
    memory the exit frees anyway. C{gc.freeze()} runs as an C{atexit} hook:
    nothing changes before the interpreter exits (also when tests call
    C{postOptions}), and objects made by later hooks are collected as usual.
    """
    if not _exitHook:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _exitHook.append(True)


def configTest(options: Options, stdout: TextIO, stderr: TextIO) -> int:
    """
    Implement C{--config-test}: print every problem and return the exit code.
    """
    result = options.load()
    if result.model is not None:
        auditScripts(result.model, result.diagnostics)
    for diagnostic in result.diagnostics:
        stderr.write(f"{diagnostic}\n")
    if options["dump-conf"] and result.model is not None:
        from keepalive_tx.config.dump import dumpConfig

        stdout.write(dumpConfig(result.model))
    return result.diagnostics.exitCode()


def auditScripts(model: Any, diagnostics: Any) -> None:
    """
    Add keepalived's script-security findings to C{diagnostics}, so that
    C{--config-test} exits as keepalived's does: 6 when scripts are
    configured without C{enable_script_security}, 5 when a script is
    disabled.
    """
    from keepalive_tx.alert.security import DISABLED, VIOLATION, ScriptPolicy, audit
    from keepalive_tx.config.errors import Severity

    severity = {DISABLED: Severity.ERROR, VIOLATION: Severity.SECURITY}
    policy = ScriptPolicy.fromGlobals(model.globalDefs)
    for kind, line in audit(model, policy):
        diagnostics.add(severity.get(kind, Severity.WARNING), line)


def makeService(options: Options, reactor=None) -> IService:
    """
    Build the L{KeepalivedService} described by C{options}.
    """
    from twisted.logger import Logger

    from keepalive_tx.config.errors import Severity
    from keepalive_tx.service import KeepalivedService

    log = Logger(namespace="keepalive_tx")
    result = options.load()
    if result.model is not None:
        auditScripts(result.model, result.diagnostics)
    for diagnostic in result.diagnostics:
        log.warn("{diagnostic}", diagnostic=str(diagnostic))
    if result.diagnostics.worst is Severity.FATAL:
        raise SystemExit(f"{options['config']}: configuration cannot be used (see messages above)")
    if options["dump-conf"]:
        from keepalive_tx.config.dump import dumpConfig

        options.stdout.write(dumpConfig(result.model))
    service = KeepalivedService(
        result.model,
        reactor=reactor,
        vrrp=not options["check"],
        checkers=not options["vrrp"],
        bfd=not options["no_bfd"],
        logDetail=bool(options["log-detail"]),
        statusListen=options["status"],
    )
    # Process-level: SIGUSR1/SIGUSR2/SIGRTMAX-1/SIGRTMIN+2 dumps (while running).
    from keepalive_tx.status.dumps import DumpSignals, StateDumper

    DumpSignals(service.reactor, StateDumper(service)).setServiceParent(service)
    from keepalive_tx.reload import ReloadSignal

    reloader = ReloadSignal(service, options.load, afterReload=FreezeHeap.refreeze,
                            listeners=[service])
    reloader.setServiceParent(service)
    FreezeHeap().setServiceParent(service)
    # Type=notify under systemd: READY/RELOADING/STOPPING/STATUS/WATCHDOG.
    # Last child, so it stops first (STOPPING=1 before the VIPs go).
    import os

    from keepalive_tx.systemd import SystemdNotifier

    notifier = SystemdNotifier.fromEnvironment(os.environ, service, service.reactor)
    if notifier is not None:
        reloader.listeners.append(notifier)
        notifier.setServiceParent(service)
    return service


class FreezeHeap(Service):
    """
    Once everything has started, move the objects that live as long as the
    daemon (configuration model, instances, checkers) out of the cyclic
    collector's way with C{gc.freeze()}: full collections then take about a
    millisecond instead of tens, which would otherwise delay VRRP adverts
    when thousands of checks run.  Process-wide, so it belongs to the twistd
    entry point, not to the embeddable L{KeepalivedService}.
    """

    name = "freeze-heap"

    def startService(self) -> None:
        import gc

        super().startService()
        gc.freeze()

    @staticmethod
    def refreeze() -> None:
        """
        After a reload: let the replaced services (frozen with everything
        else) be collected, then freeze the new ones.
        """
        import gc

        gc.unfreeze()
        gc.collect()
        gc.freeze()
