"""
Usage: C{python3 .ci/summary.py LABEL FILE STATUS [FILE STATUS ...]}

Adds up trial's closing lines (C{PASSED (successes=N, skips=M)} or
C{FAILED (failures=a, errors=b, successes=N, ...)}) of the output FILEs and
prints C{LABEL: N passed, N failed, N skipped}.  Expected failures (todo)
verify nothing and count as skipped.  A run whose exit STATUS is non-zero
while its closing line counts no failure (or that printed none) counts one
failure.
"""

import re
import sys


def counts(path: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with open(path, errors="replace") as f:
        for line in f:
            closing = re.match(r"(PASSED|FAILED) \((.*)\)\s*$", line)
            if closing:
                found = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", closing.group(2))}
    return found


def main(label: str, runs: list[str]) -> None:
    passed = failed = skipped = 0
    for path, status in zip(runs[::2], runs[1::2], strict=True):
        run = counts(path)
        bad = sum(run.get(k, 0) for k in ("failures", "errors", "unexpectedSuccesses"))
        if int(status) != 0 and bad == 0:
            bad = 1
        passed += run.get("successes", 0)
        failed += bad
        skipped += run.get("skips", 0) + run.get("expectedFailures", 0)
    print(f"{label}: {passed} passed, {failed} failed, {skipped} skipped")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
