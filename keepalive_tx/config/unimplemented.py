"""
The keywords keepalive_tx reads but does not act on, in one table.

Every keyword of the schema is either implemented (some part of the daemon
acts on what it sets), listed in L{NOT_IMPLEMENTED}, or listed in L{INERT}
(keepalived itself stores it and never acts on it).  The parser reports each
not-implemented keyword once per configuration, at its first use, as a
WARNING with C{FILE:LINE} (so C{-t} exits 5 and the daemon logs it once at
start)::

    keepalived.conf:12: 'enable_snmp_vrrp' is not implemented by keepalive_tx (ignored)

A not-implemented block (C{bfd_instance}, C{garp_group}, ...) is reported
at its header and covers every keyword inside it.  L{OPTIONS} lists words
inside a keyword's line (C{dynamic_interfaces allow_if_changes}) or inside
a value block's lines; their handlers report them
through L{optionMessage}.

When a feature lands, delete its entries here (and its rows in README's
"Not implemented" table, which C{tests/unit/test_config_unimplemented.py}
checks against this table).  Entries with C{pending} are implemented on
another branch: they go when that branch is merged.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Gap", "NOT_IMPLEMENTED", "OPTIONS", "INERT", "gapFor", "message", "optionMessage"]

@dataclass(frozen=True, slots=True)
class Gap:
    """
    Why a keyword is not acted on.

    @ivar keepalived: what keepalived 2.2.7 does with it.
    @ivar why: why keepalive_tx does not, and what happens instead.
    @ivar pending: the branch implementing it (the entry goes at its merge).
    @ivar effect: what the warning says happens, in its parentheses.
    """

    keepalived: str
    why: str
    pending: str | None = None
    effect: str = "ignored"


# --- shared reasons -------------------------------------------------------------------

_PROCESS_NAMES = Gap(
    "names its processes (comm and argv) keepalived_vrrp, keepalived_lvs, ... or as given",
    "one process (twistd's) runs everything; name it with twistd's --prefix / systemd's "
    "SyslogIdentifier")
_TUNING = Gap(
    "sets nice, SCHED_RR, RLIMIT_RTTIME, mlockall or the CPU affinity of its VRRP, checker or "
    "BFD child",
    "one process runs VRRP, checkers and BFD on one reactor, so per-child settings have no "
    "single target; use systemd's Nice=, CPUSchedulingPolicy=, CPUAffinity=, LimitRTTIME=")
_AUTO_PRIORITY = Gap(
    "raises a child to real-time scheduling when its timers run late",
    "no real-time scheduling is set (see the *_priority keywords)")
_SNMP = Gap(
    "serves its MIBs (KEEPALIVED-MIB, VRRP RFC 2787 / RFC 6527) and traps as an AgentX "
    "sub-agent of snmpd",
    "no AgentX sub-agent: the status API and /metrics (Prometheus) give the same state")
_DBUS = Gap(
    "publishes VRRP instances on D-Bus (org.keepalived.Vrrp1) and accepts state changes",
    "no D-Bus service: the status API gives the state")
_NETLINK_BUFS = Gap(
    "sets SO_RCVBUF (SO_RCVBUFFORCE with _force) of its netlink sockets",
    "pyroute2's sockets keep the kernel's default buffer size")
_RX_BUFS = Gap(
    "sizes the receive buffer of the VRRP sockets (from the MTU or the advert size)",
    "the VRRP sockets keep the kernel's default buffer size")
_LINKBEAT = Gap(
    "polls link state with MII/ETHTOOL/SIOCGIFFLAGS ioctls instead of netlink messages",
    "link state comes from netlink messages only")
_RELOAD_TIME = Gap(
    "reloads at a time written in that file (daily with reload_repeat)",
    "reloads only on SIGHUP (or systemctl reload)")
_SNMP_NAME = Gap(
    "names the virtual or real server in its SNMP tables",
    "no SNMP (see enable_snmp_checker)")
_CHECK_SO_MARK = Gap(
    "sets SO_MARK (fwmark) or SO_BINDTODEVICE (bind_if) on the checker's TCP socket",
    "TCP connections go through Twisted's connectTCP, which sets neither (DNS, UDP and PING "
    "checks do)")
_V3_CHECKSUM = Gap(
    "computes VRRPv3 IPv4 checksums without the pseudo-header (as RFC 9568 allows)",
    "checksums always include the pseudo-header (RFC 5798)")
_FLUSH_ON_STOP = Gap(
    "empties the whole IPVS table (or the virtual servers it set up) at stop",
    "at stop the entries keepalive_tx added are removed one by one (keepalived's default)")
_TIMER_EXPIRED = Gap(
    "with nopreempt, goes BACKUP when its own timers ran late (the master may not have failed)",
    "a late timer is a master-down timer like any other")
_NFT_IPVS = Gap(
    "marks the addresses of a virtual_server_group with one fwmark through nftables rules (its "
    "chains' priority, its first mark), so that IPVS holds one service per group",
    "a group's addresses are IPVS services of their own")
#: block name (the keyword opening it; C{<top>} for the top level) ->
#: keyword -> L{Gap}
NOT_IMPLEMENTED: dict[str, dict[str, Gap]] = {
    "<top>": {
        "net_namespace": Gap(
            "runs the whole daemon inside that network namespace (creating it)",
            "not done: start the daemon inside the namespace (ip netns exec NAME twistd ...)"),
        "net_namespace_ipvs": Gap(
            "programs IPVS in another network namespace than its own",
            "IPVS is programmed in the daemon's own namespace"),
        "namespace_with_ipsets": Gap(
            "uses ipsets inside the net_namespace",
            "no net_namespace and no ipsets"),
        "use_pid_dir": Gap(
            "puts its pid files under /run/keepalived/",
            "the pid file is the one given with -p or twistd's --pidfile"),
        "child_wait_time": Gap(
            "how long the parent waits for its children to exit at stop",
            "one process: there are no children to wait for"),
        "linkbeat_use_polling": _LINKBEAT,
        "linkbeat_interfaces": _LINKBEAT,
        "interface_up_down_delays": Gap(
            "waits that long before acting on an interface going down or up (debounce)",
            "link changes are acted on at once"),
        "track_group": Gap(
            "puts the VRRP instances of the group in FAULT when a static address, route or rule "
            "naming it with track_group cannot be restored",
            "static entries are re-added when deleted, without tying instances to them"),
        "garp_group": Gap(
            "spaces gratuitous ARPs / NAs over a group of interfaces (one switch) instead of "
            "per interface",
            "every interface is spaced by vrrp_garp_interval / vrrp_gna_interval alone"),
        "SSL": Gap(
            "gives SSL_GET a client certificate and key (with its password) and a CA file",
            "SSL_GET presents no client certificate (server certificates are checked only with "
            "keepalive_tx's verification extension)"),
    },
    "global_defs": {
        "process_names": _PROCESS_NAMES,
        "process_name": _PROCESS_NAMES,
        "vrrp_process_name": _PROCESS_NAMES,
        "checker_process_name": _PROCESS_NAMES,
        "lvs_process_name": _PROCESS_NAMES,
        "bfd_process_name": _PROCESS_NAMES,
        "use_symlink_paths": Gap(
            "keeps symbolic links in script paths (for the security checks and in logs)",
            "script paths are always resolved, keepalived's default"),
        "tmp_config_directory": Gap(
            "writes the consolidated configuration its children read in that directory",
            "no copy is made: the one process reads the files itself"),
        "config_save_dir": Gap(
            "saves the configuration files around each reload in that directory",
            "nothing is saved"),
        "reload_check_config": Gap(
            "checks a configuration before reloading it (log in the file given) and keeps the "
            "running one if it has errors",
            "a reload refuses only what keepalived would refuse to start with, and writes no "
            "log file", effect="ignored: reloads refuse only what a start refuses"),
        "reload_time_file": _RELOAD_TIME,
        "reload_repeat": _RELOAD_TIME,
        "reload_file": Gap(
            "creates that file while it reads a configuration and deletes it afterwards",
            "no such file; under systemd RELOADING=1 / READY=1 say the same"),
        "max_auto_priority": _AUTO_PRIORITY,
        "min_auto_priority_delay": _AUTO_PRIORITY,
        "snmp_socket": _SNMP,
        "enable_snmp_vrrp": _SNMP,
        "enable_snmp_keepalived": _SNMP,
        "enable_snmp_checker": _SNMP,
        "enable_snmp_rfc": _SNMP,
        "enable_snmp_rfcv2": _SNMP,
        "enable_snmp_rfcv3": _SNMP,
        "enable_traps": _SNMP,
        "snmp_vs_stats_update_interval": _SNMP,
        "snmp_rs_stats_update_interval": _SNMP,
        "enable_dbus": _DBUS,
        "dbus_service_name": _DBUS,
        "dbus_no_interface_name": _DBUS,
        "fifo_write_vrrp_states_on_reload": Gap(
            "writes every instance's state to the notify FIFOs again after a reload",
            "after a reload the FIFOs get only the transitions that follow"),
        "v3_checksum_as_v2": _V3_CHECKSUM,
        "vrrp_ipsets": Gap(
            "names the ipsets of its iptables rules (Debian's 2.2.7, built for nftables only, "
            "does not know the keyword)",
            "the firewall is nftables, as Debian's keepalived: use nftables",
            effect="ignored: the firewall is nftables, use 'nftables'"),
        "nftables_ipvs": _NFT_IPVS,
        "nftables_ipvs_priority": _NFT_IPVS,
        "nftables_ipvs_start_fwmark": _NFT_IPVS,
        "vrrp_rx_bufs_policy": _RX_BUFS,
        "vrrp_rx_bufs_multiplier": _RX_BUFS,
        "vrrp_startup_delay": Gap(
            "waits that long after start before running the VRRP instances",
            "instances start at once"),
        "vrrp_delay_after_boot": Gap(
            "starts the VRRP instances no sooner than that long after boot",
            "instances start at once"),
        "lvs_timeouts": Gap(
            "sets IPVS's tcp, tcpfin and udp connection timeouts",
            "IPVS keeps its timeouts (set them with ipvsadm --set)"),
        "lvs_flush": Gap(
            "empties the whole IPVS table at start",
            "services of the configuration are set as configured, other services are left "
            "alone"),
        "lvs_flush_on_stop": _FLUSH_ON_STOP,
        "lvs_flush_onstop": _FLUSH_ON_STOP,
        **{f"{proc}_{what}": _TUNING
           for proc in ("vrrp", "checker", "bfd")
           for what in ("priority", "no_swap", "rt_priority", "cpu_affinity", "rlimit_rttime",
                        "rlimit_rtime")},
        **{f"{name}{force}": _NETLINK_BUFS
           for name in ("vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs",
                        "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_monitor_rcv_bufs",
                        "process_monitor_rcv_bufs")
           for force in ("", "_force")},
    },
    "vrrp_instance": {
        "unicast_fault_no_peer": Gap(
            "puts a unicast instance without peers in FAULT",
            "an instance without peers sends multicast adverts (keepalived's behaviour without "
            "the keyword)"),
        "old_unicast_checksum": Gap(
            "computes (or, with never, never accepts) VRRPv3 unicast checksums over the multicast "
            "address, as keepalived before 1.3.6 did",
            "checksums use the advert's real destination"),
        "v3_checksum_as_v2": _V3_CHECKSUM,
        "track_src_ip": Gap(
            "puts the instance in FAULT when its configured source address disappears",
            "the source address is not watched"),
        "vrf": Gap(
            "runs a unicast instance through a VRF device instead of an interface",
            "adverts go through the instance's interface"),
        "linkbeat_use_polling": _LINKBEAT,
        "kernel_rx_buf_size": _RX_BUFS,
        "promote_secondaries": Gap(
            "sets net.ipv4.conf.IF.promote_secondaries on the interface, so that removing a VIP "
            "does not remove the addresses of its subnet",
            "the sysctl is left as it is"),
        "timer_expired_backup": _TIMER_EXPIRED,
        "thread_timer_expired": _TIMER_EXPIRED,
        "auth_hmac": Gap(
            "keepalived 2.4.3 and later: an HMAC-SHA256 trailer on adverts (2.2.7 does not know "
            "it)",
            "adverts carry no HMAC and none is checked"),
    },
    "virtual_server": {
        "snmp_name": _SNMP_NAME,
    },
    "real_server": {
        "snmp_name": _SNMP_NAME,
    },
    "url": {
        "regex_stack": Gap(
            "sizes PCRE2's JIT stack for the url's regex",
            "the regex engine here needs no JIT stack"),
    },
    **{checker: {"fwmark": _CHECK_SO_MARK, "bind_if": _CHECK_SO_MARK}
       for checker in ("TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "host")},
}

#: (keyword, word) -> L{Gap}: words inside a keyword's line or value block
#: (for a value block, the keyword is the block's)
OPTIONS: dict[tuple[str, str], Gap] = {
    ("dynamic_interfaces", "allow_if_changes"): Gap(
        "lets an interface change type or index (deleted and created again) without faulting "
        "its instances",
        "interfaces are followed by name"),
}

#: block -> keyword -> what keepalived does: keywords keepalived parses and
#: never acts on either (no warning: nothing is lost)
INERT: dict[str, dict[str, str]] = {
    "global_defs": {
        "random_seed": "stores the seed, but resets it before every reading of the configuration "
                       "and seeds ${_RANDOM} from the time before it is read",
        "stats_dump_file": "keepalived after 2.2.7 stores it and writes the statistics to "
                           "$TMPDIR anyway (2.2.7: unknown keyword)",
        "json_dump_file": "keepalived after 2.2.7 stores it and writes the JSON dump to $TMPDIR "
                          "anyway (2.2.7: unknown keyword)",
    },
    "vrrp_instance": {
        "debug": "stores the level and only prints it in its data dump",
    },
}


def gapFor(block: str, keyword: str) -> Gap | None:
    """
    The L{Gap} of C{keyword} in C{block}, or C{None} if it is implemented
    (or inert).
    """
    return NOT_IMPLEMENTED.get(block, {}).get(keyword)


def message(keyword: str, gap: Gap) -> str:
    """
    The warning for a not-implemented keyword.
    """
    return f"'{keyword}' is not implemented by keepalive_tx ({gap.effect})"


def optionMessage(keyword: str, word: str) -> str | None:
    """
    The warning for option C{word} of C{keyword}, or C{None} if it is
    implemented.
    """
    gap = OPTIONS.get((keyword, word))
    if gap is None:
        return None
    return f"'{word}' of {keyword} is not implemented by keepalive_tx ({gap.effect})"
