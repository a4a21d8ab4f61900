"""
twistd / twist entry point: keepalived's command line and L{makeService}.

C{twistd keepalived -c FILE --config-test} prints every configuration
problem as C{FILE:LINE: message} and exits with keepalived's C{-t} codes:
0 clean, 4 fatal, 5 other errors or warnings, 6 script security.

keepalived's flags that make sense under twistd are accepted and act as
keepalived's do (C{-p} and C{-n} become twistd's pid file and
foreground); the others are refused with the reason
(L{keepalive_tx.cliflags}).  Long options are never abbreviated.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from twisted.application.service import IService, Service
from twisted.python import usage

from keepalive_tx._version import __version__
from keepalive_tx.cliflags import normalise
from keepalive_tx.logs.syslog import DEFAULT_SOCKET, LOG_DAEMON, parseFacility

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"


class Options(usage.Options):
    """
    keepalived's options, as far as they make sense under twistd.
    """

    synopsis = "[options]"
    longdesc = (
        "Run VRRP failover, LVS health checks and SMTP alerts from a keepalived.conf. "
        "keepalived's flags that make sense under twistd are accepted; the others "
        "(-X -r -b -T -a -x -A -s -m -M --checkers_pid --perf --debug ...) are refused with "
        "the reason. -c is the configuration file (keepalived: -f), -f/--use-file works too. "
        "Long options are never abbreviated."
    )

    optParameters = [
        ["config", "c", DEFAULT_CONFIG, "Configuration file (keepalived's -f/--use-file)."],
        ["config-id", "i", None, "Id used to select @ID conditional lines (default: short host name)."],
        ["config-test", "t", None,
         "Check the configuration, print problems and exit (keepalived -t); "
         "-tFILE / --config-test=FILE appends the report to FILE."],
        ["pid", "p", None,
         "Pid file (under twistd: twistd's --pidfile; under twist: written once the reactor runs "
         "and removed at exit)."],
        ["log-file", "g", None,
         "Also log to files, keepalived's format: -gFILE / --log-file=FILE (default "
         "keepalived.log; relative: in $TMPDIR or /tmp), VRRP lines in FILE_vrrp, checker lines "
         "in FILE_healthcheckers."],
        ["syslog-socket", None, DEFAULT_SOCKET,
         "Syslog datagram socket (keepalive_tx extension)."],
        ["status", None, None,
         "Serve the status API and /metrics on this endpoint, e.g. tcp:8123:interface=127.0.0.1 "
         "(keepalive_tx extension; overrides global_defs status_listen)."],
    ]
    optFlags = [
        ["dump-conf", "d", "Print the normalised configuration model."],
        ["vrrp", "P", "Run only the VRRP subsystem."],
        ["check", "C", "Run only the health-checker (LVS) subsystem."],
        ["no_bfd", "B", "Don't run the BFD subsystem."],
        ["all", None,
         "Accepted: a subsystem whose configuration appears at a reload (SIGHUP) is started "
         "then anyway."],
        ["log-console", "l", "Also log to the console (standard error; under twistd with -n)."],
        ["log-detail", "D",
         "Detailed logging: keepalived's -D lines (at LOG_INFO) and debug lines (LOG_DEBUG)."],
        ["no-syslog", "G", "Don't log via syslog."],
        ["flush-log-file", None, "Accepted: log files are flushed after every line."],
        ["dont-fork", "n", "Stay in the foreground (under twistd: twistd's -n/--nodaemon)."],
        ["dont-respawn", "R",
         "Accepted: keepalive_tx has no child processes; when it dies it stays dead (systemd's "
         "Restart= decides)."],
        ["dont-release-vrrp", "V", "Leave VIPs, virtual routes and rules in place on stop."],
        ["dont-release-ipvs", "I", "Leave the IPVS table in place on stop."],
        ["all-config", "e", "Any missing configuration file is an error."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stdout: TextIO = sys.stdout
        self.stderr: TextIO = sys.stderr
        self["log-facility"] = LOG_DAEMON
        self["umask"] = None
        #: which keepalived flags twistd (the parent command) carries out
        self.delegated: set[str] = set()

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse keepalived's flags (see L{keepalive_tx.cliflags.normalise}).
        """
        argv = sys.argv[1:] if options is None else options
        super().parseOptions(normalise(argv, self.shortOpt, self.longOpt))

    def opt_help(self) -> None:
        """
        Display this help and exit.
        """
        self.stdout.write(f"{self}\n")
        raise SystemExit(0)

    opt_h = opt_help

    def opt_version(self) -> None:
        """
        Display the version of keepalive_tx and exit (on standard error, as keepalived).
        """
        import platform

        import twisted

        self.stderr.write(
            f"keepalive_tx v{__version__}\n\n"
            "keepalived rebuilt in Python on Twisted; reads keepalived 2.2.7 configurations\n\n"
            f"Python {platform.python_version()}, Twisted {twisted.__version__}\n"
            f"Running on {platform.system()} {platform.release()} {platform.version()}\n")
        raise SystemExit(0)

    opt_v = opt_version

    def opt_use_file(self, path: str) -> None:
        """
        Alias of --config (keepalived's -f/--use-file).
        """
        self["config"] = path

    opt_f = opt_use_file

    def opt_log_facility(self, name: str) -> None:
        """
        Syslog facility: 0-7 or local0-local7 (LOG_LOCAL0-7), user or daemon (default).
        """
        try:
            self["log-facility"] = parseFacility(name)
        except ValueError as e:
            raise usage.UsageError(f"{e}: 0-7, local0-local7, user or daemon") from None

    opt_S = opt_log_facility

    def opt_umask(self, mask: str) -> None:
        """
        File-creation umask, a C number: 0177 (octal), 0x7f, 127 (under twistd: its --umask).
        """
        try:
            self["umask"] = _cNumber(mask)
        except ValueError:
            raise usage.UsageError(f"invalid umask '{mask}'") from None
        if not 0 <= self["umask"] <= 0o777:
            raise usage.UsageError(f"umask '{mask}' outside range [0, 0777]")

    opt_u = opt_umask

    def opt_signum(self, name: str) -> None:
        """
        Print the number of keepalived's signal function (STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON) and exit.
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
        if self["config-test"] is not None:
            code = configTest(self, self.stdout, self._configTestStream())
            _noCollectionAtExit()
            raise SystemExit(code)
        self._delegate()

    def _configTestStream(self) -> TextIO:
        """
        Where C{--config-test} reports: standard error, or appended to the
        file named by C{--config-test=FILE}.
        """
        path = self["config-test"]
        if not path:
            return self.stderr
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            self.stderr.write(f"Unable to open config-test log file {path} {e.errno} - "
                              f"{e.strerror}\n")
            raise SystemExit(1) from None
        return os.fdopen(fd, "a")

    def _delegate(self) -> None:
        """
        Hand C{-p}, C{-n} and C{-u} to twistd (the parent command) when it
        has them: its pid file, foreground and umask (C{twist} has none of
        them; L{makeService} then acts itself).
        """
        parent = getattr(self, "parent", None)
        if parent is None:
            return
        for ours, theirs, value in (("pid", "pidfile", self["pid"]),
                                    ("dont-fork", "nodaemon", True if self["dont-fork"] else None),
                                    ("umask", "umask", self["umask"])):
            if value is not None and theirs in parent:
                parent[theirs] = value
                self.delegated.add(ours)

    def logSettings(self) -> Any:
        """
        The L{keepalive_tx.logs.entry.LogSettings} of these options.
        """
        from keepalive_tx.logs.entry import LogSettings

        return LogSettings(
            syslog=not self["no-syslog"], facility=self["log-facility"],
            socket=self["syslog-socket"], console=bool(self["log-console"]),
            logFile=self["log-file"], detail=bool(self["log-detail"]))

    def load(self):
        """
        Read and validate the configuration named by these options.
        """
        from keepalive_tx.config import loadConfig
        from keepalive_tx.config.interfaces import checkInterfaces
        from keepalive_tx.processwide import pausedCollector

        with pausedCollector():  # process-wide: the daemon's choice, not the library's
            result = loadConfig(
                self["config"], configId=self["config-id"], allConfig=bool(self["all-config"])
            )
        if not self["check"]:
            # keepalived's VRRP process checks the interfaces it is given
            result.diagnostics.extend(checkInterfaces(result.model, self.interfaceNames()))
        return result

    def interfaceNames(self) -> set[str]:
        """
        The interfaces that exist (tests replace this).
        """
        from keepalive_tx.config.interfaces import existingInterfaces

        return existingInterfaces()


def _cNumber(text: str) -> int:
    """
    A number as C's C{strtoul(text, NULL, 0)} reads it: C{0x} hexadecimal,
    a leading C{0} octal, else decimal.
    """
    if text.lower().startswith("0x"):
        return int(text[2:], 16)
    if text.startswith("0") and len(text) > 1:
        return int(text[1:], 8)
    return int(text, 10)


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
        auditAdvertSpace(result.model, result.diagnostics)
    for diagnostic in result.diagnostics:
        stderr.write(f"{diagnostic}\n")
    if options["dump-conf"] and result.model is not None:
        from keepalive_tx.config.dump import dumpConfig

        stdout.write(dumpConfig(result.model))
    return result.diagnostics.exitCode()


def auditScripts(model: Any, diagnostics: Any) -> None:
    """
    Add the script findings keepalived's C{-t} reports to C{diagnostics}, so
    that C{--config-test} exits as keepalived's does: 6 when an existing
    script runs without C{enable_script_security}, 5 when a vrrp_script is
    disabled (missing, unsafe) or a default user cannot be set.  What
    keepalived only logs (a missing notify script, a disabled MISC_CHECK)
    is logged by the running daemon, not reported here.
    """
    from keepalive_tx.config.errors import Severity
    from keepalive_tx.scripts.security import CONFIG_ERROR, SECURITY, TRACK, ScriptPolicy, audit

    severity = {CONFIG_ERROR: Severity.ERROR, TRACK: Severity.ERROR, SECURITY: Severity.SECURITY}
    policy = ScriptPolicy.fromGlobals(model.globalDefs)
    for kind, line in audit(model, policy):
        if kind in severity:
            diagnostics.add(severity[kind], line)


def auditAdvertSpace(model: Any, diagnostics: Any) -> None:
    """
    Add keepalived's warning for instances with more VIPs than one advert
    carries on their interface (the running daemon moves them to the
    excluded VIPs as it builds the instance).
    """
    if not model.vrrpInstances:
        return
    from keepalive_tx.vrrp.advertspace import auditAdvertSpace as audit
    from keepalive_tx.vrrp.advertspace import interfaceMtu

    audit(model, diagnostics, interfaceMtu)


def makeService(options: Options, reactor=None) -> IService:
    """
    Build the L{KeepalivedService} described by C{options}.  Run by twistd
    or twist (C{options} parsed as their subcommand), it is the process
    entry point: it also starts keepalived's logs (syslog, C{-l}, C{-g})
    and takes the process-wide settings the runner did not (C{-p}, C{-u}
    under C{twist}) and those of L{keepalive_tx.processwide}.
    """
    from twisted.logger import Logger

    logs = None
    if getattr(options, "parent", None) is not None:
        from keepalive_tx.logs.entry import install
        from keepalive_tx.processwide import lazyPackage

        # Before the service's modules import pyroute2's codecs.
        lazyPackage("pyroute2")
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        logs = install(options.logSettings(), reactor=reactor)
    from keepalive_tx.service import KeepalivedService

    log = Logger(namespace="keepalive_tx")
    log.info("Starting Keepalived (keepalive_tx v{version})", version=__version__)
    log.info("Configuration file {path}", path=options["config"])
    # Script security is reported by the service when it starts (once).
    result = options.load()
    for diagnostic in result.diagnostics:
        log.warn("{diagnostic}", diagnostic=str(diagnostic))
    if _refuses(result.diagnostics, options):
        if logs is None or not options.logSettings().console:
            # (not on the console yet: say why there)
            for diagnostic in result.diagnostics:
                options.stderr.write(f"{diagnostic}\n")
        log.error("{path}: keepalived would not run this configuration", path=options["config"])
        raise SystemExit(result.diagnostics.startExitCode())
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
        releaseVrrp=not options["dont-release-vrrp"],
        releaseIpvs=not options["dont-release-ipvs"],
    )
    # Process-level: SIGUSR1/SIGUSR2/SIGRTMAX-1/SIGRTMIN+2 dumps (while running).
    from keepalive_tx.status.dumps import DumpSignals, StateDumper

    DumpSignals(service.reactor, StateDumper(service)).setServiceParent(service)
    # Process-level: SIGHUP reloads (the service's own reloader, shared
    # with KeepalivedService.reload).
    import signal

    reloader = service.reloader
    # the file of -c as at start (-i, -e, interfaces checked unless --check)
    reloader.loader = options.load
    reloader.refuses = lambda diagnostics: _refuses(diagnostics, options)
    reloader.install = signal.signal
    reloader.afterReload = FreezeHeap.refreeze
    FreezeHeap().setServiceParent(service)
    if options["umask"] is not None and "umask" not in options.delegated:
        os.umask(options["umask"])
    elif options["umask"] is None:
        _configuredUmask(options, result.model.globalDefs.umask)
    if options["pid"] is not None and "pid" not in options.delegated:
        from keepalive_tx.pidfile import PidFile

        PidFile(options["pid"], service.reactor).setServiceParent(service)
    # Type=notify under systemd: READY/RELOADING/STOPPING/STATUS/WATCHDOG.
    # Last child, so it stops first (STOPPING=1 before the VIPs go).
    from keepalive_tx.systemd import SystemdNotifier

    notifier = SystemdNotifier.fromEnvironment(os.environ, service, service.reactor)
    if notifier is not None:
        reloader.listeners.append(notifier)
        notifier.setServiceParent(service)
    if logs is not None:
        service.reactor.callWhenRunning(logs.started)
        service.reactor.addSystemEventTrigger(
            "after", "shutdown", log.info, "Stopped Keepalived (keepalive_tx v{version})",
            version=__version__)
    return service


def _configuredUmask(options: Options, umask: int | None) -> None:
    """
    C{global_defs umask}, as keepalived: the command line's C{-u} wins (and
    here twistd's C{--umask} too).  Under twistd it becomes twistd's umask
    (applied where twistd applies its own); under C{twist} it is set now;
    embedded (no runner), the process is left alone.
    """
    parent = getattr(options, "parent", None)
    if umask is None or parent is None:
        return
    if "umask" in parent:
        if parent["umask"] is None:
            parent["umask"] = umask
    else:
        os.umask(umask)


def _refuses(diagnostics: Any, options: Options) -> bool:
    """
    Whether keepalived would refuse to start: it stops on what its VRRP
    process refuses only when that process runs (not under C{--check}).
    """
    from keepalive_tx.config.errors import Severity

    if options["check"]:
        return any(d.severity is Severity.FATAL or d.stop for d in diagnostics)
    return diagnostics.refusesStart


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
