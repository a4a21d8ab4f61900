"""
Turn a finished C{virtual_server} builder (a dict filled by
L{keepalive_tx.config.schema_lvs}) into a frozen L{VirtualServer}: apply
keepalived's defaults, resolve parameter inheritance VS → RS → checker
(C{docs/keepalived-compat.md}, "Checker parameters: inheritance and
defaults"), fix up ports and families, drop duplicate or unusable
servers and checkers, with keepalived-like diagnostics.

This runs once per real server and checker, so it is kept lean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields, replace
from typing import Any

from keepalive_tx.config.model_lvs import (
    NAT,
    BfdCheck,
    DnsCheck,
    FileCheck,
    HttpCheck,
    HttpUrlConfig,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    SorryServer,
    TcpCheck,
    UdpCheck,
    VirtualServer,
    VirtualServerGroup,
)

Builder = dict[str, Any]

#: Builder keys that are bookkeeping, not keywords written by the operator.
_INTERNAL = frozenset(
    ("location", "header", "realServers", "kind", "checkers", "hosts", "address", "_granularityFamily")
)
_RS_INHERITED = (
    "delayLoop", "connectTimeout", "retry", "delayBeforeRetry", "warmup", "inhibitOnFailure", "weight", "virtualhost",
)
_CONNECTION = ("connectIp", "connectPort", "bindTo", "bindIf", "bindPort", "fwmark")


def _explicit(b: Builder) -> frozenset[str]:
    return frozenset(b).difference(_INTERNAL)


def _fmt(address: Any, proto: str, port: int) -> str:
    return f"[{address}]:{proto}:{port}"


def buildVirtualServer(ctx: Any, b: Builder, groups: Any = ()) -> VirtualServer | None:
    """
    Build the L{VirtualServer} for a closed C{virtual_server} block.

    @param ctx: the schema L{Context} (diagnostics).
    @param groups: the L{VirtualServerGroup}s defined so far.
    """
    header = b["header"]
    loc = b["location"]
    group = header.group
    family = b.get("family") or header.family or b.get("_granularityFamily")
    groupObj = next((g for g in groups if g.name == group), None) if group is not None else None
    if groupObj is not None and family is None:
        family = _groupFamily(groupObj)
    isFwmark = header.fwmark is not None

    protocol = b.get("protocol")
    port = header.port or 0
    if groupObj is not None and not groupObj.addressRanges:
        # a group of fwmarks only: its services have no protocol (keepalived
        # checks the protocol only of groups with addresses)
        name = f"[{group}]:{port}"
    elif isFwmark:
        name = f"FWM {header.fwmark}"
        if protocol is not None:
            ctx.warning(loc, f"Virtual server {name}: protocol specified for fwmark - protocol will be ignored")
            protocol = None
    else:
        proto = (protocol or "none").lower()
        name = f"[{group}]:{port}" if group is not None else _fmt(header.address, proto, port)
        if protocol is None:
            ctx.error(loc, f"Virtual server {name}: no protocol set - defaulting to UDP")
            protocol = "UDP"
            if group is None:
                name = _fmt(header.address, "udp", port)

    scheduler = b.get("scheduler")
    if scheduler is None:
        ctx.error(loc, f"Virtual server {name}: no scheduler set, setting default 'wlc'")
        scheduler = "wlc"
    method = b.get("method")
    if method is None:
        ctx.error(loc, f"Virtual server {name}: no forwarding method set, setting default NAT")
        method = NAT

    persistence = b.get("persistenceTimeout", 0)
    if header.address is not None and port == 0 and not persistence:
        ctx.error(loc, f"Virtual server {name}: zero port only valid for persistent services - setting persistence 360")
        persistence = 360

    flags = b.get("schedulerFlags", frozenset())
    if "ops" in flags and protocol != "UDP":
        ctx.warning(loc, f"Virtual server {name}: one packet scheduling requires UDP - resetting")
        flags = flags - {"ops"}

    vsWeight = b.get("weight", 1)
    alpha = b.get("alpha", False)
    # What real servers inherit from this VS.
    base = _RS_DEFAULTS.copy()
    for field in _RS_INHERITED:
        if field in b:
            base[field] = b[field]
    base["alpha"] = alpha
    proto = (protocol or "none").lower()

    # Real servers: family, port rules, duplicates, inheritance.
    realServers: list[RealServer] = []
    seen: set[tuple[Any, int]] = set()
    for rb in b["realServers"]:
        rsMethod = rb.get("method", method)
        address = rb["address"]
        if rsMethod.kind != "TUN":
            if family is None:
                family = address.version
            elif address.version != family:
                ctx.error(
                    rb["location"],
                    f"Address family of virtual server and real server {address} don't match - skipping real server.",
                )
                continue
        rsPort, warning = _serverPort(rb, rsMethod, isFwmark, group is not None, port, name, proto)
        n = len(seen)
        seen.add((address, rsPort))
        if len(seen) == n:
            ctx.error(
                rb["location"],
                f"VS {name}: real server {_fmt(address, proto, rb['port'] or rsPort)} is duplicated"
                " - removing second rs",
            )
            continue
        if warning is not None:
            ctx.warning(rb["location"], warning)
        realServers.append(_buildRealServer(ctx, rb, rsPort, rsMethod, base, b))

    sorry = None
    sb = b.get("sorryServer")
    if sb is not None:
        sMethod = sb.get("method", method)
        if sMethod.kind != "TUN" and family is not None and sb["address"].version != family:
            ctx.error(
                sb["location"],
                f"Address family of virtual server and sorry server {sb['address']} don't match - skipping sorry server.",
            )
        else:
            if family is None and sMethod.kind != "TUN":
                family = sb["address"].version
            sPort, warning = _serverPort(sb, sMethod, isFwmark, group is not None, port, name, proto)
            if warning is not None:
                ctx.warning(sb["location"], warning)
            sorry = SorryServer(
                address=sb["address"], port=sPort, method=sMethod, inhibit=sb.get("inhibit", False),
                location=sb["location"],
            )

    if family is None:
        # fwmark VS whose servers are all tunnelled: keepalived falls back to
        # the servers' common family, else IPv4.
        fams = {rs.address.version for rs in realServers}
        if sorry is not None:
            fams.add(sorry.address.version)
        family = fams.pop() if len(fams) == 1 else 4

    quorum = b.get("quorum", 1)
    total = 0
    for rs in realServers:
        total += rs.weight
    if total > 0 and quorum > total:
        ctx.warning(
            loc, f"Warning - quorum {quorum} for {name} exceeds total weight of real servers {total}, reducing quorum to {total}"
        )
        quorum = total
    hysteresis = b.get("hysteresis", 0)
    if hysteresis >= quorum:
        ctx.error(loc, f"Virtual server {name}: hysteresis {hysteresis} >= quorum {quorum}; setting hysteresis to {quorum - 1}")
        hysteresis = quorum - 1

    return VirtualServer(
        address=header.address,
        port=port,
        fwmark=header.fwmark,
        group=group,
        family=family,
        protocol=protocol,
        scheduler=scheduler,
        schedulerFlags=flags,
        method=method,
        persistenceTimeout=persistence,
        persistenceGranularity=b.get("persistenceGranularity"),
        persistenceEngine=b.get("persistenceEngine"),
        haSuspend=b.get("haSuspend", False),
        virtualhost=b.get("virtualhost"),
        smtpAlert=b.get("smtpAlert"),
        snmpName=b.get("snmpName"),
        alpha=alpha,
        omega=b.get("omega", False),
        quorum=quorum,
        hysteresis=hysteresis,
        quorumUp=b.get("quorumUp"),
        quorumDown=b.get("quorumDown"),
        weight=vsWeight,
        sorryServer=sorry,
        delayLoop=base["delayLoop"],
        connectTimeout=base["connectTimeout"],
        retry=base["retry"],
        delayBeforeRetry=base["delayBeforeRetry"],
        warmup=base["warmup"],
        inhibitOnFailure=base["inhibitOnFailure"],
        realServers=tuple(realServers),
        location=loc,
        explicit=_explicit(b),
    )


def _groupFamily(g: VirtualServerGroup) -> int | None:
    if g.addressRanges:
        return g.addressRanges[0].family
    for f in g.fwmarks:
        if f.family is not None:
            return f.family
    return None


def _serverPort(
    sb: Builder, method: Any, isFwmark: bool, isGroup: bool, vsPort: int, name: str, proto: str
) -> tuple[int, str | None]:
    """
    keepalived's real/sorry server port rules: NAT inherits the VS port when
    omitted; DR/TUN must use the VS port (fwmark: no port).

    @return: the effective port and a warning to report, if any.
    """
    port = sb["port"]
    if method.kind == "NAT":
        if port is None:
            return (0 if (isFwmark or isGroup) else vsPort), None
        return port, None
    if isFwmark:
        if port:
            return 0, (
                f"WARNING - fwmark virtual server {name}, real server {_fmt(sb['address'], proto, port)} "
                "has port specified - clearing"
            )
        return 0, None
    if isGroup:
        return port or 0, None
    if port is not None and port != vsPort:
        return vsPort, (
            f"WARNING - virtual server {name} and real server {_fmt(sb['address'], proto, port)} "
            "ports don't match - resetting"
        )
    return vsPort, None


def _fastMaker(cls: type) -> Callable[[dict[str, Any]], Any]:
    """
    A constructor for the frozen, slotted dataclass C{cls} taking one dict
    holding (at least) every field; extra keys are ignored. This matters with
    tens of thousands of real servers: the generated frozen C{__init__} goes
    through C{object.__setattr__} for every field.

    The object is made as an instance of a mutable twin of C{cls} (same bases,
    same slots, so the same memory layout), whose fields are plain attribute
    stores, and then becomes a C{cls} by C{__class__} assignment: about
    five times faster than C{__init__}. Should Python refuse the twin, the
    fields are stored through the slots' own setters instead (half as fast).
    """
    names = [f.name for f in fields(cls)]
    ns: dict[str, Any] = {"new": object.__new__, "cls": cls}
    try:
        twin = type(
            f"_Mutable{cls.__name__}",
            cls.__bases__,
            # Both halves of tp_setattro, so that the stores are plain slot stores.
            {"__slots__": cls.__dict__["__slots__"], "__setattr__": object.__setattr__,
             "__delattr__": object.__delattr__, "__module__": __name__},
        )
        probe = object.__new__(twin)
        probe.__class__ = cls
    except (TypeError, KeyError):  # pragma: no cover - layouts CPython accepts today
        twin = None
    if twin is not None:
        ns["twin"] = twin
        body = "".join(f"    o.{name} = kw[{name!r}]\n" for name in names)
        src = f"def make(kw, new=new, twin=twin, cls=cls):\n    o = new(twin)\n{body}    o.__class__ = cls\n    return o\n"
    else:  # pragma: no cover
        setters = []
        for i, name in enumerate(names):
            for klass in cls.__mro__:
                slot = klass.__dict__.get(name)
                if slot is not None and hasattr(slot, "__set__"):
                    ns[f"s{i}"] = slot.__set__
                    break
            else:
                raise TypeError(f"{cls.__name__}.{name} is not a slot")
            setters.append(f"    s{i}(o, kw[{name!r}])\n")
        args = ", ".join(f"s{i}=s{i}" for i in range(len(names)))
        src = f"def make(kw, new=new, cls=cls, {args}):\n    o = new(cls)\n{''.join(setters)}    return o\n"
    exec(src, ns)
    return ns["make"]


class _Makers(dict):
    """
    L{_fastMaker}s by checker kind (and C{"real_server"}), made on first use.
    """

    def __init__(self, classes: dict[str, type]) -> None:
        super().__init__()
        self.classes = classes

    def __missing__(self, kind: str) -> Callable[[dict[str, Any]], Any]:
        make = self[kind] = _fastMaker(self.classes[kind])
        return make


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


_CHECKER_CLASSES: dict[str, type] = {
    "TCP_CHECK": TcpCheck,
    "PING_CHECK": PingCheck,
    "DNS_CHECK": DnsCheck,
    "UDP_CHECK": UdpCheck,
    "HTTP_GET": HttpCheck,
    "SSL_GET": HttpCheck,
    "SMTP_CHECK": SmtpCheck,
    "MISC_CHECK": MiscCheck,
    "FILE_CHECK": FileCheck,
    "BFD_CHECK": BfdCheck,
}
_MAKE = _Makers({**_CHECKER_CLASSES, "real_server": RealServer})
_KIND_DEFAULTS = {kind: _defaults(cls) for kind, cls in _CHECKER_CLASSES.items()}
_KIND_DEFAULTS["DNS_CHECK"]["retry"] = 3
_KIND_DEFAULTS["MISC_CHECK"]["retry"] = 0
_KIND_DEFAULTS["HTTP_GET"]["delayBeforeRetry"] = 3.0
_KIND_DEFAULTS["SSL_GET"] = dict(_KIND_DEFAULTS["HTTP_GET"], ssl=True)
_KIND_DEFAULTS["SMTP_CHECK"]["heloName"] = "smtpchecker.keepalived.org"
_RS_DEFAULTS = _defaults(RealServer)


def _buildRealServer(ctx: Any, rb: Builder, port: int, method: Any, base: Builder, vsb: Builder) -> RealServer:
    kw = base.copy()
    kw.update(rb)
    kw["port"] = port
    kw["method"] = method
    kw["explicit"] = frozenset(rb).difference(_INTERNAL)
    cbs = rb.get("checkers")
    if cbs:
        # What checkers inherit from this RS (which already inherited from the VS).
        inh = {
            "delayLoop": kw["delayLoop"],
            "connectTimeout": kw["connectTimeout"],
            "alpha": kw["alpha"],
            "connectIp": kw["address"],
            "connectPort": port,
        }
        for field in ("retry", "delayBeforeRetry", "warmup"):
            if kw[field] is not None:
                inh[field] = kw[field]
        out: list[Any] = []
        for cb in cbs:
            _buildChecker(ctx, cb, inh, kw, vsb, out)
        kw["checkers"] = tuple(out)
    else:
        kw["checkers"] = ()
    return _MAKE["real_server"](kw)


def _buildChecker(ctx: Any, cb: Builder, inh: Builder, rs: Builder, vsb: Builder, out: list) -> None:
    kind = cb["kind"]
    loc = cb["location"]
    kw = _KIND_DEFAULTS[kind].copy()
    if cb.pop("bfdUndefined", False):
        return  # reported where the name was read
    if kind in ("FILE_CHECK", "BFD_CHECK"):
        kw["alpha"] = inh["alpha"]
        kw.update(cb)
        kw["explicit"] = frozenset(cb).difference(_INTERNAL)
        field = "trackFile" if kind == "FILE_CHECK" else "name"
        if field not in cb:
            ctx.error(loc, f"{kind} has no {'track_file' if kind == 'FILE_CHECK' else 'name'} specified - ignoring")
            return
        out.append(_MAKE[kind](kw))
        return
    kw.update(inh)
    kw.update(cb)
    kw["explicit"] = frozenset(cb).difference(_INTERNAL)
    if "warmup" not in cb and "warmup" not in inh:
        kw["warmup"] = kw["delayLoop"]
    if kind == "DNS_CHECK" and "delayBeforeRetry" not in cb and "delayBeforeRetry" not in inh:
        kw["delayBeforeRetry"] = kw["delayLoop"]

    if kind == "MISC_CHECK":
        script = cb.get("script")
        if script is None:
            ctx.error(loc, "No script path has been specified for MISC_CHECK (misc_path) - skipping")
            return
        if "user" in cb:
            kw["script"] = replace(script, user=cb["user"])
        if "timeout" not in cb:
            kw["timeout"] = vsb.get("delayLoop", 60.0)
        out.append(_MAKE[kind](kw))
        return

    if kind == "HTTP_GET" or kind == "SSL_GET":
        urls = cb.get("urls")
        if not urls:
            ctx.error(loc, "HTTP/SSL_GET checker has no urls specified - ignoring")
            return
        vhost = cb.get("virtualhost", rs["virtualhost"])
        kw["virtualhost"] = vhost
        kw["urls"] = tuple(_buildUrl(u, vhost) for u in urls)
    elif kind == "SMTP_CHECK":
        hosts = cb.get("hosts")
        if hosts:
            own = any(f in cb for f in _CONNECTION)
            # Each host is an extra checker; without connection options of
            # its own the checker's endpoint is replaced by the first host.
            if own:
                _appendConnecting(ctx, _MAKE[kind](kw), out)
            for host in hosts:
                hkw = kw.copy()
                for field in _CONNECTION:
                    hkw.pop(field, None)
                hkw["connectIp"] = inh["connectIp"]
                hkw["connectPort"] = inh["connectPort"]
                hkw.update(host)
                for field in _CONNECTION:
                    hkw.setdefault(field, None)
                _appendConnecting(ctx, _MAKE[kind](hkw), out)
            return
    elif kind == "UDP_CHECK":
        if kw["minReplyLength"] > kw["maxReplyLength"]:
            ctx.error(
                loc,
                f"UDP_CHECK min_reply_length {kw['minReplyLength']} > max_reply_length "
                f"{kw['maxReplyLength']} - using 0 and 255",
            )
            kw["minReplyLength"], kw["maxReplyLength"] = 0, 255
    _appendConnecting(ctx, _MAKE[kind](kw), out)


def _appendConnecting(ctx: Any, checker: Any, out: list) -> None:
    if checker.connectPort == 0 and checker.kind != "PING_CHECK":
        ctx.warning(
            checker.location,
            f"{getattr(checker, 'checkerName', checker.kind)} for {checker.connectIp} has no port to connect to "
            "(set connect_port, or give the real server a port)",
        )
    elif checker.bindTo is not None and checker.bindTo.version != checker.connectIp.version:
        ctx.error(
            checker.location,
            f"{checker.kind}: bindto {checker.bindTo} and connect address {checker.connectIp} "
            "are different address families - ignoring bindto",
        )
        checker = replace(checker, bindTo=None)
    out.append(checker)


def _buildUrl(u: Builder, vhost: str | None) -> HttpUrlConfig:
    codes = u.get("statusCodes")
    return HttpUrlConfig(
        path=u["path"],
        digest=u.get("digest"),
        statusCodes=tuple(r for group in codes for r in group) if codes else ((200, 299),),
        virtualhost=u.get("virtualhost", vhost),
        regex=u.get("regex"),
        regexNoMatch=u.get("regexNoMatch", False),
        regexOptions=u.get("regexOptions", ()),
        regexMinOffset=u.get("regexMinOffset"),
        regexMaxOffset=u.get("regexMaxOffset"),
        regexStack=u.get("regexStack"),
        tlsCompliant=u.get("tlsCompliant", False),
        location=u["location"],
    )


def checkGroupReferences(ctx: Any, servers: list[VirtualServer], groups: Any) -> list[VirtualServer]:
    """
    Drop (with an error) virtual servers naming an undefined group; give
    group VSs whose family could not be known at close time the group's.
    """
    byName = {g.name: g for g in groups}
    kept = []
    for vs in servers:
        if vs.group is not None:
            g = byName.get(vs.group)
            if g is None:
                ctx.error(
                    vs.location,
                    f"virtual_server group {vs.group}: virtual_server_group {vs.group} is not defined - "
                    "removing virtual server",
                )
                continue
            fam = _groupFamily(g)
            if fam is not None and fam != vs.family and "family" not in vs.explicit:
                vs = replace(vs, family=fam)
        kept.append(vs)
    return kept
