"""
Keywords keepalived cannot read without a value.

keepalived 2.2.7 reads most keywords' first value without checking that it
is there; alone on its line, such a keyword ends the process with
"Configuration line starting `X` is missing a parameter ..." and exit
status 2 (also under C{-t}). Others check and report a milder error, or
take an optional value. These tables list, per block, the keywords that
end the process; they were taken from keepalived 2.2.7 itself by running
C{keepalived -t} on each keyword alone in its block
(tests/integration/test_config_keywords.py keeps checking them).
"""

from __future__ import annotations

_CHECKER = frozenset({
    "bind_if", "bind_port", "bindto", "connect_ip", "connect_port", "connect_timeout",
    "delay_before_retry", "delay_loop", "fwmark", "retry", "warmup",
})
_GARP = frozenset({
    "garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_master_delay", "garp_master_refresh",
    "garp_master_refresh_repeat", "garp_master_repeat",
})
_NOTIFY = frozenset({"notify", "notify_backup", "notify_fault", "notify_master", "notify_stop"})

#: block name (its keyword; C{<top>} for the top level) -> keywords that
#: need a value
REQUIRED: dict[str, frozenset[str]] = {
    "<top>": frozenset({
        "child_wait_time", "track_file", "virtual_server", "virtual_server_group", "vrrp_script",
        "vrrp_track_file", "vrrp_track_process",
    }),
    "global_defs": frozenset({
        "bfd_process_name", "bfd_rlimit_rtime", "bfd_rlimit_rttime", "checker_process_name",
        "checker_rlimit_rtime", "checker_rlimit_rttime", "config_save_dir", "lvs_process_name",
        "nftables_ipvs_priority", "nftables_ipvs_start_fwmark", "nftables_priority", "process_name",
        "random_seed", "smtp_connect_timeout", "smtp_server", "umask", "vmac_addr_prefix",
        "vmac_prefix", "vrrp_down_timer_adverts", "vrrp_garp_interval", "vrrp_gna_interval",
        "vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_process_name", "vrrp_rlimit_rtime",
        "vrrp_rlimit_rttime", "vrrp_startup_delay", "vrrp_version",
    } | {"vrrp_" + k for k in _GARP}),
    "vrrp_instance": _GARP | _NOTIFY | frozenset({
        "advert_int", "debug", "down_timer_adverts", "interface", "lvs_sync_daemon_interface",
        "mcast_dst_ip", "mcast_src_ip", "notify_master_rx_lower_pri", "preempt_delay", "priority",
        "state", "unicast_src_ip", "unicast_ttl", "version", "virtual_router_id", "vrf",
    }),
    "authentication": frozenset({"auth_pass", "auth_type"}),
    "vrrp_sync_group": _NOTIFY,
    "vrrp_script": frozenset({"fall", "interval", "rise", "timeout", "user", "weight"}),
    "vrrp_track_process": frozenset({
        "delay", "fork_delay", "process", "quorum", "quorum_max", "terminate_delay",
    }),
    "garp_group": frozenset({"garp_interval", "gna_interval", "interface"}),
    "bfd_instance": frozenset({
        "hoplimit", "idle_tx", "max_hops", "min_rx", "min_tx", "multiplier", "source_ip", "ttl",
        "weight",
    }),
    "virtual_server": frozenset({
        "connect_timeout", "delay_before_retry", "delay_loop", "hysteresis", "ip_family", "lb_algo",
        "lb_kind", "lvs_method", "lvs_sched", "persistence_engine", "persistence_granularity",
        "protocol", "quorum", "quorum_down", "quorum_up", "real_server", "retry", "sorry_server",
        "warmup", "weight",
    }),
    "real_server": frozenset({
        "connect_timeout", "delay_before_retry", "delay_loop", "lthreshold", "lvs_method",
        "notify_down", "notify_up", "retry", "uthreshold", "warmup", "weight",
    }),
    "TCP_CHECK": _CHECKER,
    "PING_CHECK": _CHECKER,
    "SMTP_CHECK": _CHECKER,
    "HTTP_GET": _CHECKER | {"nb_get_retry"},
    "SSL_GET": _CHECKER | {"nb_get_retry"},
    "DNS_CHECK": _CHECKER | {"name", "type"},
    "UDP_CHECK": _CHECKER | {"max_reply_length", "min_reply_length"},
    "MISC_CHECK": frozenset({"delay_before_retry", "delay_loop", "misc_timeout", "retry", "warmup"}),
    "FILE_CHECK": frozenset({"track_file"}),
    "host": frozenset({
        "bind_if", "bind_port", "bindto", "connect_ip", "connect_port", "connect_timeout", "fwmark",
    }),
    "url": frozenset({"digest", "path"}),
}

#: keywords the parent process reads itself (its pass ends first)
GLOBAL_BLOCKS = frozenset({"global_defs"})
GLOBAL_TOP = frozenset({"child_wait_time"})


def missingParameter(keyword: str) -> str:
    """
    keepalived's report of C{keyword} alone on its line.
    """
    return (f"*** Configuration line starting `{keyword}` is missing a parameter after "
            f"keyword `{keyword}` at word position 2")
