# -*- test-case-name: tests.unit.test_demo -*-
"""
The demo's command line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence

__all__ = ["main", "missingRequirements"]

#: commands the demo runs, and the Debian package of each
REQUIRED = {"ip": "iproute2", "ping": "iputils-ping", "sysctl": "procps", "stdbuf": "coreutils"}


def missingRequirements(euid: int | None = None,
                        which=shutil.which) -> list[str]:
    """
    What keeps the demo from running here (empty when it can run).
    """
    problems = []
    if (os.geteuid() if euid is None else euid) != 0:
        problems.append("it must run as root (it creates network namespaces)")
    for command, package in REQUIRED.items():
        if which(command) is None:
            problems.append(f"'{command}' is missing (apt-get install {package})")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m keepalive_tx.demo",
        description="Show keepalive_tx at work in network namespaces on this machine: VRRP "
                    "failover of a virtual IP between two directors, health checks of two web "
                    "servers, and alert mails. Run as root; everything is removed at the end.",
        allow_abbrev=False,
    )
    parser.add_argument("--fast", action="store_true",
                        help="shorter timers and no pauses (for tests)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the directory with the configurations and logs")
    parser.add_argument("--smtp-sink", metavar="ADDRESS:PORT",
                        help=argparse.SUPPRESS)  # the demo's own mail server
    args = parser.parse_args(argv)
    if args.smtp_sink:
        from keepalive_tx.demo.smtpsink import runSink

        return runSink(args.smtp_sink, sys.stdout)
    problems = missingRequirements()
    if problems:
        for problem in problems:
            sys.stderr.write(f"keepalive_tx demo: {problem}\n")
        return 2
    from keepalive_tx.demo.cast import FAST, NORMAL
    from keepalive_tx.demo.scenario import Demo

    print("keepalive_tx demo: VRRP failover, health checks and mail alerts "
          "in network namespaces on this machine")
    return Demo(sys.stdout, FAST if args.fast else NORMAL, keep=args.keep).run()
