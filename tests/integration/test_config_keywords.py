"""
Which keywords keepalived 2.2.7 cannot read without a value: every keyword
of our tables, alone on its line in its block, checked with
C{keepalived -t}; keepalived stops ("Configuration line starting `X` is
missing a parameter ...", exit 2) exactly where ours says so
(L{keepalive_tx.config.required}).
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from twisted.trial.unittest import TestCase

from keepalive_tx.config import parseText
from keepalive_tx.config import schema as S
from keepalive_tx.config.errors import Stop
from keepalive_tx.config.toplevel import topLevel
from tests.integration.netns import Lab, requireCommand, requireLab

# headers of the blocks, and what keepalived needs inside some of them not
# to crash (2.2.7 segfaults on an HTTP_GET without url or a bfd_instance
# without neighbour)
_HEADER = {"vrrp_instance": "VI_1", "vrrp_sync_group": "G", "vrrp_script": "chk",
           "virtual_server": "192.0.2.1 80", "real_server": "192.0.2.2 80", "track_file": "tf",
           "vrrp_track_file": "tf", "vrrp_track_process": "tp", "bfd_instance": "b",
           "track_group": "tg"}
_INSIDE = {"HTTP_GET": ["url {", "path /", "}"], "SSL_GET": ["url {", "path /", "}"],
           "bfd_instance": ["neighbor_ip 192.0.2.9"]}
_CRASHES = {"neighbor_ip", "neighbour_ip"}  # a second neighbour line crashes 2.2.7


def cases() -> list[tuple[str, str]]:
    """
    C{(label, text)}: every keyword alone in its block.
    """
    out = []
    seen: set[int] = set()

    def walk(spec: S.BlockSpec, path: list[str]) -> None:
        for name, kw in sorted(spec.keywords.items()):
            if name in _CRASHES and path == ["bfd_instance"]:
                continue
            lines = []
            for p in path:
                lines.append(f"{p} {_HEADER.get(p, '')}".rstrip() + " {")
                lines += _INSIDE.get(p, [])
            lines.append(name)
            if kw.kind in (S.BLOCK, S.VALUES):
                lines += ["{", "}"]
            lines += ["}"] * len(path)
            out.append(("/".join([*path, name]), "\n".join(lines) + "\n"))
            if kw.kind == S.BLOCK and id(kw.spec) not in seen:
                seen.add(id(kw.spec))
                walk(kw.spec, [*path, name])

    walk(topLevel(), [])
    return out


def oursStops(text: str) -> bool:
    diagnostics = parseText(text, "k.conf", "host").diagnostics
    return any(d.stop in (Stop.PARAMETER, Stop.GLOBAL_PARAMETER) for d in diagnostics)


class MissingParameterTests(TestCase):
    timeout = 300

    def test_sameKeywordsStop(self) -> None:
        requireLab("keepalived -t in a namespace")
        keepalived = requireCommand("keepalived")
        lab = Lab(0)
        self.addCleanup(lab.destroy)
        lab.sweepStale()
        ns = f"{lab.tag}-kw"
        lab.addNamespace(ns)
        directory = tempfile.mkdtemp()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", directory], check=False))
        todo = cases()
        self.assertGreater(len(todo), 400)
        results: dict[str, tuple[int, str]] = {}
        waiting = list(enumerate(todo))
        running: dict[str, subprocess.Popen] = {}
        while waiting or running:
            while waiting and len(running) < 6:
                i, (label, text) = waiting.pop(0)
                path = os.path.join(directory, f"{i}.conf")
                with open(path, "w") as f:
                    f.write(text)
                argv = ["ip", "netns", "exec", ns, keepalived, "-t", "-f", path]
                for flag, suffix in (("-p", "k"), ("-r", "v"), ("-c", "c"), ("-b", "b")):
                    argv += [flag, os.path.join(directory, f"{i}-{suffix}.pid")]
                running[label] = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.PIPE, text=True)
            # (test code may block) the oldest run is usually the first done
            label = next(iter(running))
            proc = running.pop(label)
            _, err = proc.communicate(timeout=60)
            results[label] = (proc.returncode, err)
        texts = dict(todo)
        mismatches = []
        for label, (code, err) in results.items():
            if code < 0:
                continue  # keepalived crashed: no verdict to compare
            theirs = code == 2 and "is missing a parameter" in err
            if theirs != oursStops(texts[label]):
                mismatches.append(f"{label}: keepalived {'stops' if theirs else 'goes on'} ({code})")
        self.assertEqual(mismatches, [])
        self.assertGreater(sum(1 for c, e in results.values() if c == 2), 150)
