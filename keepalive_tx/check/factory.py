# -*- test-case-name: tests.unit.test_lvs_service -*-
"""
Build runnable checkers from the configuration model.

A registry maps each checker keyword of the model (C{TCP_CHECK},
C{HTTP_GET}, ...) to a factory function.  A factory returns a
L{BuiltChecker}: the checker object (what
L{keepalive_tx.check.base.CheckerScheduler} runs), its pure state machine
and its timing, all with the model's effective values (see
C{docs/keepalived-compat.md}, "Checker parameters: inheritance and defaults").

Checker modules written separately register here by adding one entry to
L{_LAZY}: the module is imported the first time a configuration uses that
checker, so a checker module that is missing (or broken) only disables its
own checker kind, with one clear message, and never the daemon.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

from keepalive_tx.check.base import CheckerState, CheckTiming, ConnectOptions, HttpCheckerState

log = Logger()

__all__ = [
    "BuiltChecker",
    "CheckerFactory",
    "UnsupportedChecker",
    "buildChecker",
    "checkTiming",
    "connectOptions",
    "register",
    "registeredKinds",
    "shareKey",
]


class UnsupportedChecker(Exception):
    """
    The checker kind has no factory (or its module could not be imported).
    """


@dataclass(frozen=True, slots=True)
class BuiltChecker:
    """
    A checker ready to schedule.

    @ivar checker: has C{kind}, C{describe()} and C{check(target)}; when
        C{driven}, also C{start(onResult)} and C{stop()}.
    @ivar state: L{CheckerState} or L{HttpCheckerState}.
    @ivar timing: the effective scheduling parameters.
    @ivar driven: the checker is event driven (FILE_CHECK): it is not
        scheduled, it delivers results to C{start}'s C{onResult} itself.
    """

    checker: Any
    state: Any
    timing: CheckTiming
    driven: bool = False


#: C{(reactor, checkerConfig, realServer, virtualServer, model) -> BuiltChecker}
CheckerFactory = Callable[[Any, Any, Any, Any, Any], BuiltChecker]

_REGISTRY: dict[str, CheckerFactory] = {}


def register(kind: str, factory: CheckerFactory) -> None:
    """
    Register (or replace) the factory of checker keyword C{kind}.
    """
    _REGISTRY[kind] = factory


def registeredKinds() -> frozenset[str]:
    """
    @return: the checker keywords that can be built now (lazy entries
        included when their module imports).
    """
    kinds = set(_REGISTRY)
    for kind in _LAZY:
        try:
            _factoryFor(kind)
        except UnsupportedChecker:
            continue
        kinds.add(kind)
    return frozenset(kinds)


# --- shared pieces -------------------------------------------------------------


def checkTiming(config: Any, model: Any = None) -> CheckTiming:
    """
    The L{CheckTiming} of a scheduled checker of the model.

    @param model: the whole configuration, for the global
        C{checker_log_all_failures} when the checker does not set it.
    """
    logAll = getattr(config, "logAllFailures", None)
    if logAll is None:
        g = getattr(model, "globalDefs", None)
        logAll = bool(getattr(g, "checkerLogAllFailures", False))
    return CheckTiming(
        delayLoop=config.delayLoop,
        retry=config.retry,
        delayBeforeRetry=config.delayBeforeRetry,
        warmup=config.warmup,
        alpha=config.alpha,
        logAllFailures=logAll,
    )


def connectOptions(config: Any) -> ConnectOptions:
    """
    The L{ConnectOptions} of a connecting checker of the model.
    """
    return ConnectOptions(
        str(config.connectIp),
        config.connectPort,
        str(config.bindTo) if config.bindTo is not None else None,
        config.bindPort or 0,
        config.connectTimeout,
    )


def _simple(checker: Any, config: Any, model: Any) -> BuiltChecker:
    timing = checkTiming(config, model)
    return BuiltChecker(checker, CheckerState(timing), timing)


# --- built-in factories ------------------------------------------------------


def _tcp(reactor: Any, config: Any, rs: Any, vs: Any, model: Any) -> BuiltChecker:
    from keepalive_tx.check.tcp import TcpChecker

    return _simple(TcpChecker(reactor, connectOptions(config)), config, model)


def _http(reactor: Any, config: Any, rs: Any, vs: Any, model: Any) -> BuiltChecker:
    from keepalive_tx.check.http import HttpChecker, HttpUrl, StatusCodes
    from keepalive_tx.check.tls import TlsClientOptions

    urls = []
    for url in config.urls:
        regex = None
        if url.regex is not None:
            from keepalive_tx.check.httpregex import RegexSpec
            from keepalive_tx.config.pcre import RegexError

            try:
                regex = RegexSpec(
                    url.regex,
                    url.regexOptions,
                    url.regexNoMatch,
                    url.regexMinOffset or 0,
                    url.regexMaxOffset,
                )
            except (RegexError, ValueError) as e:  # the schema reports these first
                log.error(
                    "{kind} {chk}: url {path}: invalid regex ({e}) - it always fails",
                    kind=config.checkerName,
                    chk=connectOptions(config).describe(),
                    path=url.path,
                    e=e,
                )
                regex = RegexSpec("(?!)")
        urls.append(
            HttpUrl(url.path, url.digest, StatusCodes(tuple(url.statusCodes)), url.virtualhost, regex)
        )
    tls = None
    if config.ssl:
        tls = TlsClientOptions(
            enableSni=config.enableSni,
            sniName=config.sniName,
            tlsCompliant=config.tlsCompliant,
        )
    checker = HttpChecker(
        reactor,
        connectOptions(config),
        urls,
        protocol=config.httpProtocol,
        virtualhost=config.virtualhost,
        tls=tls,
    )
    timing = checkTiming(config, model)
    state = HttpCheckerState(timing, len(urls), config.fastRecovery)
    return BuiltChecker(checker, state, timing)


def _fromConfig(module: str, className: str, withServer: bool = False) -> CheckerFactory:
    """
    A factory calling C{module.className.fromConfig(reactor, config[, rs])}
    (the convention of the separately written checker modules).
    """

    def factory(reactor: Any, config: Any, rs: Any, vs: Any, model: Any) -> BuiltChecker:
        cls = getattr(importlib.import_module(module), className)
        checker = cls.fromConfig(reactor, config, rs) if withServer else cls.fromConfig(reactor, config)
        return _simple(checker, config, model)

    factory.module = module  # type: ignore[attr-defined]
    factory.className = className  # type: ignore[attr-defined]
    return factory


def _misc(reactor: Any, config: Any, rs: Any, vs: Any, model: Any) -> BuiltChecker:
    """
    MISC_CHECK under keepalived's script security: the default script user
    of C{global_defs}, and a script that cannot run (missing, not
    executable, unknown user, unsafe path under C{enable_script_security})
    removes the checker, as keepalived's C{Disabling misc script ...} does.
    """
    from keepalive_tx.check.misc import MiscChecker
    from keepalive_tx.scripts.security import ScriptPolicy

    policy = ScriptPolicy.fromGlobals(getattr(model, "globalDefs", None))
    checker = MiscChecker.fromConfig(reactor, config, rs, policy=policy)
    runner = checker.runner
    if runner.error is not None:
        from keepalive_tx.scripts.runner import shellCommand

        if runner.disabledReason is not None:
            # keepalived's words (missing, not executable, unsafe)
            raise UnsupportedChecker(
                f"Disabling misc script {shellCommand(config.script.argv)}"
                f" {runner.disabledReason} ({runner.error})")
        raise UnsupportedChecker(
            f"Disabling misc script {config.script.command}: {runner.error}")
    return _simple(checker, config, model)


_misc.module = "keepalive_tx.check.misc"  # type: ignore[attr-defined]
_misc.className = "MiscChecker"  # type: ignore[attr-defined]


def _file(reactor: Any, config: Any, rs: Any, vs: Any, model: Any) -> BuiltChecker:
    """
    FILE_CHECK: follows the top-level C{track_file} named by the checker
    (keepalived's C{check_file.c}); its value decides up/down and, with a non-zero
    weight, the checker's contribution to the real server's weight.
    """
    from keepalive_tx.check.file import FileChecker

    trackFile = next(
        (t for t in getattr(model, "trackFiles", ()) if t.name == config.trackFile), None
    )
    if trackFile is None:
        raise UnsupportedChecker(f"FILE_CHECK: track_file {config.trackFile} not found")
    if not trackFile.file:
        raise UnsupportedChecker(f"FILE_CHECK: track_file {config.trackFile} has no file")
    delayLoop = getattr(rs, "delayLoop", 60.0)
    checker = FileChecker.fromConfig(reactor, config, trackFile, delayLoop)
    # retry 0: every verdict change is decisive (inotify, not polling)
    timing = CheckTiming(delayLoop=delayLoop, retry=0, delayBeforeRetry=delayLoop,
                         warmup=0.0, alpha=config.alpha)
    return BuiltChecker(checker, CheckerState(timing), timing, driven=True)


_file.module = "keepalive_tx.check.file"  # type: ignore[attr-defined]
_file.className = "FileChecker"  # type: ignore[attr-defined]


def _bfd(reactor: Any, config: Any, rs: Any, vs: Any, model: Any) -> BuiltChecker:
    """
    BFD_CHECK: follows the C{bfd_instance} named by the checker; the LVS
    service binds it to the BFD sessions (L{keepalive_tx.check.bfd.BfdChecker.bind}).
    """
    from keepalive_tx.check.bfd import BfdChecker

    instance = next(
        (b for b in getattr(model, "bfdInstances", ()) if b.name == config.name), None
    )
    if instance is None or not instance.forChecker:
        raise UnsupportedChecker(f"BFD_CHECK: BFD {config.name} not configured")
    delayLoop = getattr(rs, "delayLoop", 60.0)
    timing = CheckTiming(delayLoop=delayLoop, retry=0, delayBeforeRetry=delayLoop,
                         warmup=0.0, alpha=config.alpha)
    return BuiltChecker(BfdChecker.fromConfig(reactor, config), CheckerState(timing), timing,
                        driven=True)


_bfd.module = "keepalive_tx.check.bfd"  # type: ignore[attr-defined]
_bfd.className = "BfdChecker"  # type: ignore[attr-defined]


register("TCP_CHECK", _tcp)
register("HTTP_GET", _http)
register("SSL_GET", _http)

#: Checkers whose modules are imported on first use: keyword -> factory.
#: FILE_CHECK and BFD_CHECK are not scheduled: they follow a track_file /
#: a BFD session (C{driven}).
_LAZY: dict[str, CheckerFactory] = {
    "MISC_CHECK": _misc,
    "SMTP_CHECK": _fromConfig("keepalive_tx.check.smtp", "SmtpChecker"),
    "DNS_CHECK": _fromConfig("keepalive_tx.check.dns", "DnsChecker"),
    "UDP_CHECK": _fromConfig("keepalive_tx.check.udp", "UdpChecker"),
    "PING_CHECK": _fromConfig("keepalive_tx.check.ping", "PingChecker"),
    "FILE_CHECK": _file,
    "BFD_CHECK": _bfd,
}


def _factoryFor(kind: str) -> CheckerFactory:
    factory = _REGISTRY.get(kind)
    if factory is not None:
        return factory
    lazy = _LAZY.get(kind)
    if lazy is None:
        raise UnsupportedChecker(f"{kind} is not supported yet")
    module = getattr(lazy, "module", None)
    className = getattr(lazy, "className", None)
    if module is not None:
        try:
            cls = getattr(importlib.import_module(module), className)
        except (ImportError, AttributeError) as e:
            raise UnsupportedChecker(f"{kind} is not available ({e})") from e
        if not hasattr(cls, "fromConfig"):
            raise UnsupportedChecker(f"{kind} is not available ({className}.fromConfig missing)")
    return lazy


def buildChecker(reactor: Any, config: Any, rs: Any, vs: Any, model: Any = None) -> BuiltChecker:
    """
    Build the runnable checker of C{config} (a checker of real server C{rs}
    of virtual server C{vs}).

    @raise UnsupportedChecker: no factory for this kind.
    """
    return _factoryFor(type(config).kind)(reactor, config, rs, vs, model)


# --- shared identical checks -----------------------------------------------------


def _normalised(value: Any) -> Any:
    """
    C{value} without what does not change a check: where it was written
    (C{location}) and which keywords were written at its level
    (C{explicit}: an inherited value equals a written one).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if f.name == "location":
                changes["location"] = None
            elif f.name == "explicit":
                changes["explicit"] = frozenset()
            else:
                inner = getattr(value, f.name)
                normal = _normalised(inner)
                if normal is not inner:
                    changes[f.name] = normal
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, tuple):
        items = tuple(_normalised(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def shareKey(config: Any, rs: Any, vs: Any, model: Any = None) -> Hashable | None:
    """
    What makes two checkers of the model run the same check (for
    C{checker_share_identical}): equal keys mean the same checker kind
    with the same full definition (connect ip/port, bind, timeouts, retry,
    delays, URLs and digests, virtualhost, script, ...), values being the
    effective (inherited) ones, plus what the factory takes from the real
    server (MISC_CHECK: its address and, with C{misc_dynamic}, its weight;
    FILE_CHECK: its C{delay_loop}).

    @return: a hashable key, or L{None} when this checker cannot be shared
        (BFD_CHECK: it costs nothing and logs per real server).
    """
    kind = type(config).kind
    if kind == "BFD_CHECK":
        return None
    extra: tuple = ()
    if kind == "MISC_CHECK":
        extra = (str(rs.address), rs.weight if config.dynamic else None)
    elif kind == "FILE_CHECK":
        extra = (getattr(rs, "delayLoop", None),)
    key = (kind, _normalised(config), extra)
    try:
        hash(key)
    except TypeError:
        return None
    return key
