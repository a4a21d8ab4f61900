"""
Fuzz: mutated sample configurations only ever produce diagnostics.
"""

from __future__ import annotations

import glob
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseLogicalLines, parseText
from keepalive_tx.config.dump import dumpConfig
from keepalive_tx.config.errors import Diagnostics, Location
from keepalive_tx.config.lines import LogicalLine

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "keepalived-samples")


def _texts() -> list[str]:
    paths = sorted(glob.glob(os.path.join(SAMPLES, "keepalived.conf.*")))
    paths.append(os.path.join(SAMPLES, "extra/keepalived/etc/keepalived/keepalived.conf"))
    out = []
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="surrogateescape") as f:
                out.append(f.read())
        except OSError:
            pass
    return out or ["vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n}\n"]


TEXTS = _texts()
JUNK = st.sampled_from([
    "{", "}", "}}", "{ }", "99999999999999999999999", "-1", "0", "0x10", "1.0000001", "255", "256",
    "\x00", "\xff\xfe", "\"", "'", "virtual_ipaddress", "vrrp_instance", "global_defs", "weight",
    "reverse", "::", "1.2.3.4/99", "fe80::1%eth0", "@high", "$X", "garbage", "nan", "inf",
    "1e9", "state MASTER", "priority", "track_script", "auth_type AH", "group", "\t", "\\",
])


@st.composite
def mutated(draw) -> str:
    lines = draw(st.sampled_from(TEXTS)).split("\n")
    for _ in range(draw(st.integers(1, 8))):
        if not lines:
            lines.append("")
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 4))
        if op == 0:  # drop a brace
            lines[i] = lines[i].replace(draw(st.sampled_from("{}")), "", 1)
        elif op == 1:  # add junk tokens
            lines[i] = lines[i] + " " + draw(JUNK)
        elif op == 2:  # replace a word
            words = lines[i].split() or [""]
            words[draw(st.integers(0, len(words) - 1))] = draw(JUNK)
            lines[i] = " ".join(words)
        elif op == 3:  # delete a line
            del lines[i]
        else:  # binary bytes
            lines.insert(i, draw(st.binary(max_size=12)).decode("latin-1"))
    return "\n".join(lines)


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(text.split())


class FuzzTests(SynchronousTestCase):
    """
    No input makes the configuration reader raise.
    """

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutated())
    def test_parseTextNeverRaises(self, text: str) -> None:
        """
        Mutated samples give a model and diagnostics, never an exception
        (and never the internal-error safety net).
        """
        result = parseText(text, "fuzz.conf", "high")
        for d in result.diagnostics:
            self.assertNotIn("internal error", d.message)
        dumpConfig(result.model)

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.lists(JUNK | st.text(max_size=6), max_size=4), max_size=40), st.sampled_from(TEXTS))
    def test_logicalLinesNeverRaise(self, junk: list[list[str]], base: str) -> None:
        """
        Arbitrary token lines spliced into a sample's lines never raise.
        """
        lines = []
        for n, raw in enumerate(base.split("\n"), 1):
            toks = _tokens(raw.split("#")[0].split("!")[0])
            if toks:
                lines.append(LogicalLine(Location("f", n), " ".join(toks), toks))
            if junk and n % 3 == 0:
                j = tuple(t for t in junk.pop() if t and not t.isspace())
                if j:
                    lines.append(LogicalLine(Location("f", n), " ".join(j), j))
        d = Diagnostics()
        parseLogicalLines(lines, d)
        for item in d:
            self.assertNotIn("internal error", item.message)
