"""
C{bfd_instance}, C{track_bfd} and C{BFD_CHECK} configurations checked side
by side with Debian's keepalived 2.2.7 (C{keepalived -t}): the same exit
code and problems reported on the same lines.
"""

from __future__ import annotations

import os
import re
import subprocess

from twisted.trial.unittest import TestCase

from keepalive_tx.config import loadConfig
from tests.integration.netns import makeLab, requireCommand

VS = """virtual_server 192.0.2.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.5 80 {
        BFD_CHECK {
            name %s
        }
    }
}
"""

#: name -> configuration text (the corpus)
CORPUS = {
    "clean": """bfd_instance b1 {
    neighbor_ip 192.0.2.1
    source_ip 192.0.2.2
    min_rx 50
    min_tx 12.5
    idle_tx 2000
    multiplier 3
    ttl 250
    max_hops 5
    weight -20 reverse
}
bfd_instance b6 {
    neighbour_ip 2001:db8::1
    hoplimit 255
    passive
}
""" + VS % "b1",
    "ranges": """bfd_instance b1 {
    neighbor_ip 192.0.2.1
    min_rx 0.5
    min_tx 4294968
    idle_tx 999
    multiplier 256
    ttl 0
    max_hops -2
    weight 254
}
""",
    "end_checks": """bfd_instance nonbr {
    source_ip 192.0.2.2
}
bfd_instance fam {
    neighbor_ip 2001:db8::1
    source_ip 192.0.2.2
}
bfd_instance one {
    neighbor_ip 192.0.2.1
}
bfd_instance dup {
    neighbor_ip 192.0.2.1
}
bfd_instance bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb {
    neighbor_ip 192.0.2.3
}
""",
    "multihop": """bfd_instance b1 {
    neighbor_ip 192.0.2.1
    multihop
}
""",
    "track_bfd": """bfd_instance b1 {
    neighbor_ip 192.0.2.1
}
bfd_instance bc {
    neighbor_ip 192.0.2.2
    checker
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_bfd {
        b1 weight 10
        b1
        nosuch
        bc
        later
        b1 weight 300
    }
}
bfd_instance later {
    neighbor_ip 192.0.2.3
}
""",
    "late_check": VS % "later" + """bfd_instance later {
    neighbor_ip 192.0.2.5
}
""",
}

_KEEPALIVED_LINE = re.compile(r"\(\S+: Line (\d+)\)")

#: checks keepalived makes when a bfd_instance block ends: it reports them
#: on the closing line, we on the block's first line
_END_OF_BLOCK = ("address set, disabling instance", "not of the same family",
                 "has duplicate", "max_hops exceeds")


def _closingLines(text: str) -> dict[int, int]:
    """
    First line -> closing line of every block of C{text} (1-based).
    """
    stack: list[int] = []
    out: dict[int, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.rstrip().endswith("{"):
            stack.append(n)
        elif line.strip() == "}" and stack:
            out[stack.pop()] = n
    return out


class SideBySideTests(TestCase):
    def check(self, name: str, inLab: bool = False) -> None:
        """
        @param inLab: run keepalived in a lab namespace (which has the
            C{eth0} a vrrp_instance names).
        """
        keepalived = requireCommand("keepalived")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, f"{name}.conf")
        with open(path, "w") as f:
            f.write(CORPUS[name])
        argv = [keepalived, "-t", "-f", path]
        if inLab:
            argv = makeLab(self, 1).hosts[0].argv(*argv)
        theirs = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        theirLines = {int(n) for n in _KEEPALIVED_LINE.findall(theirs.stdout + theirs.stderr)}
        result = loadConfig(path)
        closing = _closingLines(CORPUS[name])
        ourLines = {
            closing[d.location.line] if any(p in d.message for p in _END_OF_BLOCK)
            else d.location.line
            for d in result.diagnostics
            if d.location is not None and "Virtual server" not in d.message}
        detail = (f"\nkeepalived ({theirs.returncode}):\n{theirs.stdout}{theirs.stderr}\n"
                  f"ours ({result.diagnostics.exitCode()}):\n"
                  + "\n".join(str(d) for d in result.diagnostics))
        self.assertEqual(result.diagnostics.exitCode(), theirs.returncode, detail)
        self.assertEqual(ourLines, theirLines, detail)

    def test_clean(self) -> None:
        self.check("clean")

    def test_ranges(self) -> None:
        self.check("ranges")

    def test_endOfBlockChecks(self) -> None:
        self.check("end_checks")

    def test_multihopUnknown(self) -> None:
        self.check("multihop")

    def test_trackBfd(self) -> None:
        """
        Unknown, checker-only, later-defined and duplicate track_bfd
        entries, a weight out of range.
        """
        self.check("track_bfd", inLab=True)

    def test_checkBeforeInstance(self) -> None:
        self.check("late_check")
