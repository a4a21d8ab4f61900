"""
Keyword tables for the LVS / health-checker half of the configuration:
top-level C{virtual_server_group NAME {}}, C{virtual_server ... {}} and
C{SSL {}}, with everything nested in them (real and sorry servers, checkers).

Handlers fill builder dicts whose keys are the model field names (see
L{keepalive_tx.config.schema} for the framework). When a C{virtual_server}
block closes it is turned into a frozen L{VirtualServer} by
L{keepalive_tx.config.build_lvs}, which resolves inheritance and reports
semantic problems; L{finish} and L{validate} do the cross-checks that need the
whole file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from keepalive_tx.config import schema as S
from keepalive_tx.config.build_lvs import buildVirtualServer, checkGroupReferences
from keepalive_tx.config.lexer import _shellWords
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.model_lvs import (
    DNS_TYPES,
    SCHEDULERS,
    AddressRange,
    SSLConfig,
    VirtualServerGroup,
)
from keepalive_tx.config.values_lvs import (
    INT32_MAX,
    UINT32_MAX,
    BadValue,
    parseAddress,
    parseDigest,
    parseGranularity,
    parseHexPattern,
    parseLvsMethod,
    parsePort,
    parseServerAddress,
    parseStatusCodes,
    parseUnsigned,
    parseVsgEntry,
    parseVsHeader,
)

Builder = S.Builder
Context = S.Context

TIMER_MAX = 4294967295.0
_TINY = 0.000001


def _append(b: Builder, field: str, value: object) -> None:
    lst = b.get(field)
    if lst is None:
        b[field] = [value]
    else:
        lst.append(value)


def _args(ctx: Context, line: LogicalLine, n: int = 1) -> tuple[str, ...] | None:
    if len(line.tokens) <= n:
        ctx.error(line, f"{line.keyword}: missing parameter")
        return None
    return line.tokens[1:]


# --- SSL ------------------------------------------------------------------------------


def _openSsl(ctx: Context, line: LogicalLine, root: Builder) -> Builder:
    if root.get("ssl") is not None:
        ctx.warning(line, "SSL context already specified - replacing")
    return {"location": line.location}


def _closeSsl(ctx: Context, b: Builder, root: Builder) -> None:
    root["ssl"] = SSLConfig(
        password=b.get("password"),
        ca=b.get("ca"),
        certificate=b.get("certificate"),
        key=b.get("key"),
        location=b["location"],
    )


SSL_BLOCK = S.BlockSpec(
    "SSL",
    {
        "password": S.simple(S.setStr("password")),
        "ca": S.simple(S.setStr("ca")),
        "certificate": S.simple(S.setStr("certificate")),
        "key": S.simple(S.setStr("key")),
    },
    open=_openSsl,
    close=_closeSsl,
)


# --- virtual_server_group ----------------------------------------------------------


def _openVsg(ctx: Context, line: LogicalLine, root: Builder) -> Builder | None:
    if len(line.tokens) < 2:
        ctx.error(line, "virtual_server_group: missing group name - skipping block")
        return None
    if len(line.tokens) > 2:
        ctx.error(line, f"virtual_server_group {line.tokens[1]}: unexpected '{' '.join(line.tokens[2:])}' - ignoring")
    return {"name": line.tokens[1], "location": line.location, "ranges": [], "fwmarks": []}


def _vsgItem(ctx: Context, line: LogicalLine, b: Builder) -> None:
    try:
        entry = parseVsgEntry(line.tokens)
    except BadValue as e:
        ctx.error(line, f"virtual_server_group {b['name']}: {e} - skipping entry")
        return
    entry = replace(entry, location=line.location)
    (b["ranges"] if isinstance(entry, AddressRange) else b["fwmarks"]).append(entry)


def _closeVsg(ctx: Context, b: Builder, root: Builder) -> None:
    if not b["ranges"] and not b["fwmarks"]:
        ctx.error(b["location"], f"virtual server group {b['name']} has no entries - removing")
        return
    groups = root.setdefault("virtualServerGroups", [])
    if any(g.name == b["name"] for g in groups):
        ctx.error(b["location"], f"virtual server group {b['name']} defined twice - ignoring the second")
        return
    families = {r.family for r in b["ranges"]}
    if len(families) > 1:
        ctx.warning(b["location"], f"virtual server group {b['name']} mixes IPv4 and IPv6 addresses")
    groups.append(
        VirtualServerGroup(b["name"], tuple(b["ranges"]), tuple(b["fwmarks"]), b["location"])
    )


# --- shared handler factories ----------------------------------------------------------


# Large configurations repeat the same few argument spellings thousands of
# times ("connect_timeout 3", "weight 1"): valid conversions are memoised by
# argument text, one table per range (shared by the keywords with that range).
_CACHE: dict[tuple[str, object, object], object] = {}
_RANGE_CACHES: dict[tuple[object, object], dict[str, object]] = {}


def _cachedNumber(field: str, key: tuple[object, object], parse: Callable) -> S.Keyword:
    """
    A keyword taking one number, parsed by C{parse(ctx, line, text)} (which
    reports bad values); valid spellings are cached per range, since
    thousands of real servers repeat the same few values.
    """
    cache = _RANGE_CACHES.setdefault(key, {})
    cached = cache.get

    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        tokens = line.tokens
        if len(tokens) > 1:
            value = cached(tokens[1])
            if value is None:
                value = parse(ctx, line, tokens[1])
                if value is None:
                    return
                cache[tokens[1]] = value
            b[field] = value
        else:
            ctx.error(line, f"{line.keyword}: missing parameter")

    return S.simple(handler)


def _timer(field: str, lo: float = _TINY) -> S.Keyword:
    return _cachedNumber(
        field, (lo, None), lambda ctx, line, text: S.parseTimer(ctx, line, text, lo, TIMER_MAX))


def _int(field: str, lo: int, hi: int) -> S.Keyword:
    return _cachedNumber(
        field, (lo, hi), lambda ctx, line, text: S.parseInt(ctx, line, text, lo, hi))


def _setAddress(field: str) -> S.Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        args = _args(ctx, line)
        if args is None:
            return
        try:
            b[field] = parseAddress(args[0], f"{line.keyword} address")
        except BadValue as e:
            ctx.error(line, f"{e} - ignoring")

    return handler


def _setPort(field: str) -> S.Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        tokens = line.tokens
        if len(tokens) < 2:
            ctx.error(line, f"{line.keyword}: missing parameter")
            return
        key = (tokens[1], "port", None)
        value = _CACHE.get(key)
        if value is None:
            try:
                value = _CACHE[key] = parsePort(tokens[1], line.keyword, lo=1)
            except BadValue as e:
                ctx.error(line, f"{e} - ignoring")
                return
        b[field] = value

    return handler


def _method(field: str) -> S.Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        args = _args(ctx, line)
        if args is None:
            return
        try:
            b[field] = parseLvsMethod(args)
        except BadValue as e:
            ctx.error(line, f"{line.keyword}: {e} - ignoring")

    return handler


def _hex(field: str, wildcards: bool) -> S.Handler:
    def handler(ctx: Context, line: LogicalLine, b: Builder) -> None:
        if len(line.tokens) < 2:
            if wildcards:  # bare require_reply: any reply will do
                b[field] = True
            else:
                ctx.error(line, f"{line.keyword}: a hex payload is required")
            return
        try:
            pattern = parseHexPattern(" ".join(line.tokens[1:]), wildcards)
        except BadValue as e:
            ctx.error(line, f"{line.keyword}: {e} - ignoring")
            return
        b[field] = pattern if wildcards else pattern.value

    return handler


# --- checkers --------------------------------------------------------------------------


def _scheduledKeywords() -> dict[str, S.Keyword]:
    return {
        "retry": _int("retry", 0, UINT32_MAX),
        "delay_before_retry": _timer("delayBeforeRetry", 0.0),
        "warmup": _timer("warmup", 0.0),
        "delay_loop": _timer("delayLoop"),
        "alpha": S.simple(S.setBool("alpha")),
        "log_all_failures": S.simple(S.setBool("logAllFailures")),
    }


def _connectionKeywords() -> dict[str, S.Keyword]:
    return {
        "connect_ip": S.simple(_setAddress("connectIp")),
        "connect_port": S.simple(_setPort("connectPort")),
        "bindto": S.simple(_setAddress("bindTo")),
        "bind_if": S.simple(S.setStr("bindIf", 15)),
        "bind_port": S.simple(_setPort("bindPort")),
        "fwmark": _int("fwmark", 0, UINT32_MAX),
        "connect_timeout": _timer("connectTimeout"),
    }


def _checkerOpen(kind: str):
    def open(ctx: Context, line: LogicalLine, rs: Builder) -> Builder:
        if len(line.tokens) > 1:
            ctx.error(line, f"{kind}: unexpected '{' '.join(line.tokens[1:])}' - ignoring")
        return {"kind": kind, "location": line.location}

    return open


def _checkerClose(ctx: Context, b: Builder, rs: Builder) -> None:
    _append(rs, "checkers", b)


def _checker(kind: str, keywords: dict[str, S.Keyword]) -> S.Keyword:
    return S.block(S.BlockSpec(kind, keywords, open=_checkerOpen(kind), close=_checkerClose))


def _statusCode(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    good, bad = parseStatusCodes(args)
    for word in bad:
        ctx.error(line, f"Invalid HTTP_GET status code '{word}' (N or A-B within 100-599 expected) - ignoring it")
    if good:
        _append(b, "statusCodes", good)


def _digest(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    try:
        b["digest"] = parseDigest(args[0])
    except BadValue as e:
        ctx.error(line, f"{e} - ignoring")


def _regexStack(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line, 2)
    if args is None:
        return
    try:
        start = parseUnsigned(args[0], 1, UINT32_MAX, "regex_stack start")
        maximum = parseUnsigned(args[1], start, UINT32_MAX, "regex_stack max")
    except BadValue as e:
        ctx.error(line, f"{e} - ignoring")
        return
    b["regexStack"] = (start, maximum)


_REGEX_ESCAPE = re.compile(r"\\(.)")
_REGEX_LETTERS = frozenset("dDwWsShHRkKgGpPQEAzZ.^$*+?()[]{}|/-")


def _regex(ctx: Context, line: LogicalLine, b: Builder) -> None:
    # keepalived re-reads the raw line with quotes and backslash escapes
    # processed (alloc_strvec_quoted_escaped): "\\d" is \d, "\d" is d
    words, problem = _shellWords(line.text, "escape")
    if problem is not None:
        ctx.error(line, f"regex: {problem} - ignoring")
        return
    if len(words) != 2:
        ctx.error(line, "regex missing or too many fields - ignoring")
        return
    lost = sorted({m.group(1) for m in _REGEX_ESCAPE.finditer(line.text) if m.group(1) in _REGEX_LETTERS})
    if lost:
        ctx.warning(
            line,
            "regex: backslash escapes are configuration escapes (as in keepalived): "
            + ", ".join(f"'\\{c}' is '{c}'" for c in lost)
            + "; write a double backslash for the regex escape",
        )
    b["regex"] = words[1]
    b["regexLine"] = line


def _regexOptions(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if _args(ctx, line) is None:
        return
    # Imported here: only HTTP_GET/SSL_GET urls with regexes need it.
    from keepalive_tx.config.pcre import optionProblem as regexOptionProblem

    good = []
    for word in line.tokens[1:]:
        problem = regexOptionProblem(word)
        if problem is None:
            good.append(word)
        else:
            ctx.warning(line, problem)
    b["regexOptions"] = tuple(b.get("regexOptions", ())) + tuple(good)


_REGEX_PARAMS = ("regexNoMatch", "regexOptions", "regexMinOffset", "regexMaxOffset", "regexStack")


def _checkRegex(ctx: Context, b: Builder) -> None:
    """
    keepalived's url_check for the regex keywords, plus compiling the
    pattern (an invalid regex is reported and ignored, with its options).
    """
    if "regex" not in b:
        if any(k in b for k in _REGEX_PARAMS):
            ctx.warning(b["location"], "regex parameters specified without regex - ignoring them")
            for k in _REGEX_PARAMS:
                b.pop(k, None)
        return
    low, high = b.get("regexMinOffset"), b.get("regexMaxOffset")
    if low is not None and high is not None and low > high:
        ctx.warning(b["location"], f"regex min offset {low} > regex_max_offset {high} - ignoring")
        del b["regexMinOffset"], b["regexMaxOffset"]
    from keepalive_tx.config.pcre import RegexError
    from keepalive_tx.config.pcre import compilePattern as compileRegexPattern

    try:
        compileRegexPattern(b["regex"], tuple(b.get("regexOptions", ())))
    except RegexError as e:
        at = f" at offset {e.offset}" if e.offset is not None else ""
        ctx.error(b.get("regexLine", b["location"]), f"Invalid regex: '{b['regex']}'{at}: {e.message} - ignoring regex")
        for k in ("regex", *_REGEX_PARAMS):
            b.pop(k, None)


def _closeUrl(ctx: Context, b: Builder, checker: Builder) -> None:
    if "path" not in b:
        ctx.error(b["location"], "HTTP/SSL_GET checker url has no path - ignoring")
        return
    _checkRegex(ctx, b)
    _append(checker, "urls", b)


URL_BLOCK = S.BlockSpec(
    "url",
    {
        "path": S.simple(S.setStr("path")),
        "digest": S.simple(_digest),
        "status_code": S.simple(_statusCode),
        "virtualhost": S.simple(S.setStr("virtualhost")),
        "regex": S.simple(_regex),
        "regex_no_match": S.simple(S.setFlag("regexNoMatch")),
        "regex_options": S.simple(_regexOptions),
        "regex_min_offset": _int("regexMinOffset", 0, UINT32_MAX),
        "regex_max_offset": _int("regexMaxOffset", 0, UINT32_MAX),
        "regex_stack": S.simple(_regexStack),
        "tls_compliant": S.simple(S.setBool("tlsCompliant")),
    },
    close=_closeUrl,
)


def _httpKeywords() -> dict[str, S.Keyword]:
    kw = _scheduledKeywords() | _connectionKeywords()
    kw.update(
        {
            "url": S.block(URL_BLOCK),
            "nb_get_retry": S.Keyword(S.SIMPLE, handler=kw["retry"].handler, deprecated="retry",
                                      note="nb_get_retry is deprecated - please use 'retry'"),
            "virtualhost": S.simple(S.setStr("virtualhost")),
            "http_protocol": S.simple(
                S.setChoice("httpProtocol", {"1.0": "1.0", "1.0C": "1.0C", "1.1": "1.1", "1.0c": "1.0C"})
            ),
            "fast_recovery": S.simple(S.setBool("fastRecovery")),
            "enable_sni": S.simple(S.setBool("enableSni")),
            "sni_name": S.simple(S.setStr("sniName")),
            "tls_compliant": S.simple(S.setBool("tlsCompliant")),
        }
    )
    return kw


def _closeHost(ctx: Context, b: Builder, checker: Builder) -> None:
    _append(checker, "hosts", b)


def _smtpKeywords() -> dict[str, S.Keyword]:
    kw = _scheduledKeywords() | _connectionKeywords()
    kw["helo_name"] = S.simple(S.setStr("heloName"))
    kw["host"] = S.block(S.BlockSpec("host", _connectionKeywords(), close=_closeHost))
    return kw


def _dnsType(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    value = args[0].upper()
    if value not in DNS_TYPES:
        ctx.error(line, f"Unknown DNS check type {args[0]} (allowed: {' '.join(DNS_TYPES)}) - ignoring")
        return
    b["type"] = value


def _miscUser(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is not None:
        b["user"] = ":".join(args[:2])


def _fileWeight(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    text = args[0]
    try:
        if text.startswith("-"):
            value = -parseUnsigned(text[1:], 0, 254, "weight")
        else:
            value = parseUnsigned(text, 0, 254, "weight")
    except BadValue:
        ctx.error(line, f"FILE_CHECK weight '{text}' is invalid (integer -254..254 expected) - ignoring")
        return
    reverse = False
    if len(args) > 1:
        if args[1] != "reverse":
            ctx.error(line, f"FILE_CHECK weight: unexpected '{args[1]}' (only 'reverse' allowed) - ignoring")
            return
        reverse = True
    b["weight"] = value
    b["reverse"] = reverse


def _checkerKeywords() -> dict[str, S.Keyword]:
    connecting = _scheduledKeywords() | _connectionKeywords()
    http = _httpKeywords()
    misc = _scheduledKeywords()
    misc.update(
        {
            "misc_path": S.simple(S.setScript("script", userWords=False)),
            "misc_timeout": _timer("timeout"),
            "misc_dynamic": S.simple(S.setFlag("dynamic")),
            "user": S.simple(_miscUser),
        }
    )
    dns = dict(connecting)
    dns["type"] = S.simple(_dnsType)
    dns["name"] = S.simple(S.setStr("name"))
    udp = dict(connecting)
    udp.update(
        {
            "payload": S.simple(_hex("payload", False)),
            "require_reply": S.simple(_hex("requireReply", True)),
            "min_reply_length": _int("minReplyLength", 0, 65535),
            "max_reply_length": _int("maxReplyLength", 0, 65535),
        }
    )
    return {
        "TCP_CHECK": _checker("TCP_CHECK", connecting),
        "PING_CHECK": _checker("PING_CHECK", dict(connecting)),
        "HTTP_GET": _checker("HTTP_GET", http),
        "SSL_GET": _checker("SSL_GET", dict(http)),
        "SMTP_CHECK": _checker("SMTP_CHECK", _smtpKeywords()),
        "DNS_CHECK": _checker("DNS_CHECK", dns),
        "UDP_CHECK": _checker("UDP_CHECK", udp),
        "MISC_CHECK": _checker("MISC_CHECK", misc),
        "FILE_CHECK": _checker(
            "FILE_CHECK",
            {
                "track_file": S.simple(S.setStr("trackFile")),
                "file": S.simple(S.setStr("trackFile")),
                "dynamic": S.simple(S.setFlag("dynamic")),
                "weight": S.simple(_fileWeight),
            },
        ),
        "BFD_CHECK": _checker(
            "BFD_CHECK", {"name": S.simple(_bfdName), "alpha": S.simple(S.setBool("alpha"))}
        ),
    }


def _bfdName(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{BFD_CHECK name}: as keepalived's checker side, the C{bfd_instance}
    must be written earlier in the file (else the checker is skipped).
    """
    if len(line.tokens) != 2:
        ctx.error(line, "BFD_CHECK - No or too many names specified - skipping checker")
        b["bfdUndefined"] = True
        return
    name = line.tokens[1]
    if name not in {i["name"] for i in ctx.root.get("bfdInstances") or ()}:
        ctx.error(line, f"BFD_CHECK - BFD {name} not configured - skipping checker")
        b["bfdUndefined"] = True
        return
    b["name"] = name


# --- real_server -------------------------------------------------------------------


def _openRs(ctx: Context, line: LogicalLine, vs: Builder) -> Builder | None:
    tokens = line.tokens
    try:
        if len(tokens) == 3:  # the common "real_server IP PORT": memoised port
            address = parseAddress(tokens[1], "real server IP address")
            key = (tokens[2], "rsport", None)
            port = _CACHE.get(key)
            if port is None:
                port = _CACHE[key] = parsePort(tokens[2], "real server port")
        else:
            address, port = parseServerAddress(tokens[1:], "real server")
    except BadValue as e:
        ctx.error(line, f"{e} - skipping real server")
        return None
    return {"address": address, "port": port, "location": line.location}


def _closeRs(ctx: Context, b: Builder, vs: Builder) -> None:
    vs["realServers"].append(b)


def _commonServerKeywords() -> dict[str, S.Keyword]:
    """
    Keywords a real server shares with its virtual server (inheritable).
    """
    return {
        "delay_loop": _timer("delayLoop"),
        "connect_timeout": _timer("connectTimeout"),
        "retry": _int("retry", 1, UINT32_MAX),
        "delay_before_retry": _timer("delayBeforeRetry", 0.0),
        "warmup": _timer("warmup", 0.0),
        "inhibit_on_failure": S.simple(S.setBool("inhibitOnFailure")),
        "smtp_alert": S.simple(S.setBool("smtpAlert")),
        "virtualhost": S.simple(S.setStr("virtualhost")),
        "snmp_name": S.simple(S.setStr("snmpName")),
    }


CHECKER_KEYWORDS = _checkerKeywords()

RS_BLOCK = S.BlockSpec(
    "real_server",
    _commonServerKeywords()
    | {
        "weight": _int("weight", 0, INT32_MAX),
        "lvs_method": S.simple(_method("method")),
        "uthreshold": _int("uThreshold", 0, UINT32_MAX),
        "lthreshold": _int("lThreshold", 0, UINT32_MAX),
        "notify_up": S.simple(S.setScript("notifyUp")),
        "notify_down": S.simple(S.setScript("notifyDown")),
        "alpha": S.simple(S.setBool("alpha")),
    }
    | CHECKER_KEYWORDS,
    open=_openRs,
    close=_closeRs,
)


# --- virtual_server ----------------------------------------------------------------


def _openVs(ctx: Context, line: LogicalLine, root: Builder) -> Builder | None:
    try:
        header = parseVsHeader(line.tokens[1:])
    except BadValue as e:
        ctx.error(line, f"{e} - skipping virtual server")
        return None
    return {"header": header, "location": line.location, "realServers": []}


def _closeVs(ctx: Context, b: Builder, root: Builder) -> None:
    vs = buildVirtualServer(ctx, b, root.get("virtualServerGroups", ()))
    if vs is not None:
        _append(root, "virtualServers", vs)


def _scheduler(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    if args[0] not in SCHEDULERS:
        ctx.error(line, f"Invalid lvs_scheduler '{args[0]}' (allowed: {' '.join(sorted(SCHEDULERS))}) - ignoring")
        return
    b["scheduler"] = args[0]


def _schedFlag(ctx: Context, line: LogicalLine, b: Builder) -> None:
    flag = line.keyword
    prefix = flag[:2]
    if prefix in ("sh", "mh") and flag[2:3] == "-" and b.get("scheduler") != prefix:
        ctx.error(line, f"{flag} only applies to {prefix} scheduler (set lvs_sched {prefix} first) - ignoring")
        return
    b["schedulerFlags"] = b.get("schedulerFlags", frozenset()) | {flag}


def _persistenceTimeout(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if len(line.tokens) < 2:
        b["persistenceTimeout"] = 360
        return
    try:
        b["persistenceTimeout"] = parseUnsigned(line.tokens[1], 1, 2678400, "persistence_timeout")
    except BadValue as e:
        ctx.error(line, f"{e} - ignoring")


def _granularity(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    try:
        prefix, family = parseGranularity(args[0], b.get("family") or b["header"].family)
    except BadValue as e:
        ctx.error(line, f"{e} - ignoring")
        return
    b["persistenceGranularity"] = prefix
    b.setdefault("_granularityFamily", family)
    b.setdefault("persistenceTimeout", 360)


def _protocol(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    value = args[0].upper()
    if value not in ("TCP", "UDP", "SCTP"):
        ctx.error(line, f"Unknown protocol {args[0]} (TCP, UDP or SCTP) - ignoring")
        return
    b["protocol"] = value


def _ipFamily(ctx: Context, line: LogicalLine, b: Builder) -> None:
    args = _args(ctx, line)
    if args is None:
        return
    if args[0] not in ("inet", "inet6"):
        ctx.error(line, f"unknown address family {args[0]} (inet or inet6) - ignoring")
        return
    family = 4 if args[0] == "inet" else 6
    known = b["header"].family
    if known is not None and known != family:
        ctx.error(line, f"Virtual server specified family {args[0]} conflicts with server family - ignoring")
        return
    b["family"] = family


def _sorryServer(ctx: Context, line: LogicalLine, b: Builder) -> None:
    try:
        address, port = parseServerAddress(line.tokens[1:], "sorry server")
    except BadValue as e:
        ctx.error(line, f"{e} - ignoring")
        return
    if "sorryServer" in b:
        ctx.warning(line, "sorry_server already specified - replacing")
    b["sorryServer"] = {"address": address, "port": port, "location": line.location}


def _sorryInhibit(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if "sorryServer" not in b:
        ctx.error(line, "Ignoring sorry_server_inhibit used before or without sorry_server")
        return
    b["sorryServer"]["inhibit"] = True


def _sorryMethod(ctx: Context, line: LogicalLine, b: Builder) -> None:
    if "sorryServer" not in b:
        ctx.error(line, "sorry_server_lvs_method used before or without sorry_server - ignoring")
        return
    _method("method")(ctx, line, b["sorryServer"])


VS_BLOCK = S.BlockSpec(
    "virtual_server",
    _commonServerKeywords()
    | {
        "ip_family": S.simple(_ipFamily),
        "lvs_sched": S.simple(_scheduler),
        "lb_algo": S.simple(_scheduler),
        "lvs_method": S.simple(_method("method")),
        "lb_kind": S.simple(_method("method")),
        "persistence_timeout": S.simple(_persistenceTimeout),
        "persistence_granularity": S.simple(_granularity),
        "persistence_engine": S.simple(S.setStr("persistenceEngine")),
        "protocol": S.simple(_protocol),
        "ha_suspend": S.simple(S.setFlag("haSuspend")),
        "alpha": S.simple(S.setFlag("alpha")),
        "omega": S.simple(S.setFlag("omega")),
        "quorum": _int("quorum", 1, UINT32_MAX),
        "hysteresis": _int("hysteresis", 0, UINT32_MAX),
        "quorum_up": S.simple(S.setScript("quorumUp")),
        "quorum_down": S.simple(S.setScript("quorumDown")),
        "weight": _int("weight", 1, INT32_MAX),
        "sorry_server": S.simple(_sorryServer),
        "sorry_server_inhibit": S.simple(_sorryInhibit),
        "sorry_server_lvs_method": S.simple(_sorryMethod),
        "real_server": S.block(RS_BLOCK),
    }
    | {flag: S.simple(_schedFlag) for flag in
       ("hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback")},
    open=_openVs,
    close=_closeVs,
)


TOP_LEVEL_KEYWORDS: dict[str, S.Keyword] = {
    "SSL": S.block(SSL_BLOCK),
    "virtual_server_group": S.values(_vsgItem, open=_openVsg, close=_closeVsg),
    "virtual_server": S.block(VS_BLOCK),
}


def finish(ctx: Context, root: Builder) -> None:
    """
    Cross-checks needing the whole file: C{virtual_server group NAME} must
    name a defined C{virtual_server_group} (else the VS is dropped).
    """
    servers = root.get("virtualServers")
    if servers:
        root["virtualServers"] = checkGroupReferences(ctx, servers, root.get("virtualServerGroups", ()))


def validate(config, diagnostics) -> None:
    """
    Cross-checks against other parts of the model: FILE_CHECK track files and
    BFD_CHECK instances must exist.
    """
    trackFiles = {t.name for t in getattr(config, "trackFiles", ())}
    bfds = {b.name for b in getattr(config, "bfdInstances", ()) if b.forChecker}
    for vs in getattr(config, "virtualServers", ()):
        for rs in vs.realServers:
            for checker in rs.checkers:
                kind = checker.kind
                if kind == "FILE_CHECK" and checker.trackFile not in trackFiles:
                    diagnostics.error(
                        f"FILE_CHECK of real server [{rs.address}]:{rs.port}: track_file {checker.trackFile} not found",
                        checker.location,
                    )
                elif kind == "BFD_CHECK" and checker.name not in bfds:
                    diagnostics.error(
                        f"BFD_CHECK of real server [{rs.address}]:{rs.port}: BFD {checker.name} not configured",
                        checker.location,
                    )
