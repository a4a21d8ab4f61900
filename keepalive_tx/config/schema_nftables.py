"""
The firewall keywords of C{global_defs}: C{nftables [TABLE]},
C{nftables_priority}, C{nftables_counters}, C{nftables_ifindex}, and the
iptables ones keepalived built with nftables only (as Debian's 2.2.7)
answers.
"""

from __future__ import annotations

from keepalive_tx.config import schema as S
from keepalive_tx.config.lines import LogicalLine
from keepalive_tx.config.schema import Builder, Context

#: the kernel's NFT_TABLE_MAXNAMELEN (with its terminating NUL)
TABLE_MAXNAMELEN = 256
DEFAULT_TABLE = "keepalived"

IPTABLES_MESSAGE = ("iptables not supported, using nftables instead. Please replace 'vrrp_iptables"
                    " and 'vrrp_ipsets' with 'nftables' config option")


def nftables(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{nftables [TABLE]}: the table of the drop rules (default
    C{keepalived}); as in keepalived, it resets C{nftables_priority} given
    before it.
    """
    if "nftables" in b:
        ctx.error(line, "nftables already specified - ignoring")
        return
    name = line.tokens[1] if len(line.tokens) > 1 else DEFAULT_TABLE
    if len(name.encode()) >= TABLE_MAXNAMELEN:
        ctx.error(line, "nftables table name too long - ignoring")
        return
    b["nftables"] = name
    b["nftablesPriority"] = -1


def nftablesPriority(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{nftables_priority N}: the priority of the base chains (a signed
    32-bit number).
    """
    text = S.argument(ctx, line)
    if text is None:
        return
    try:
        value = int(text, 10)
    except ValueError:
        value = None
    if value is None or not -2**31 <= value < 2**31:
        ctx.error(line, f"invalid nftables chain priority '{text}'")
        return
    b["nftablesPriority"] = value


def vrrpIptables(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{vrrp_iptables}: keepalived built without iptables support reports an
    error and uses nftables (table C{keepalived}) instead; so do we.
    """
    ctx.error(line, IPTABLES_MESSAGE)
    b["vrrpIptables"] = tuple(line.tokens[1:])
    b["nftables"] = DEFAULT_TABLE
    b["nftablesPriority"] = -1


def vrrpIpsets(ctx: Context, line: LogicalLine, b: Builder) -> None:
    """
    C{vrrp_ipsets}: ignored (keepalived built with nftables only does not
    know the keyword at all); reported as not implemented
    (L{keepalive_tx.config.unimplemented}).
    """
    b["vrrpIpsets"] = tuple(line.tokens[1:])


KEYWORDS = {
    "vrrp_iptables": S.simple(vrrpIptables),
    "vrrp_ipsets": S.simple(vrrpIpsets),
    "nftables": S.simple(nftables),
    "nftables_priority": S.simple(nftablesPriority),
    "nftables_counters": S.simple(S.setFlag("nftablesCounters")),
    "nftables_ifindex": S.simple(S.setFlag("nftablesIfindex")),
}
