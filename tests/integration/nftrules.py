"""
Reading C{nft list ruleset} (and its C{--debug=netlink} form) so that two
hosts' rulesets compare: what the kernel numbers or orders on its own
(rule handles, the order of set elements in a netlink dump) left out.
"""

from __future__ import annotations

import re


def comparable(text: str) -> str:
    """
    C{text} with set elements sorted (netlink dumps list them in hash
    order) and the rule handles of C{--debug=netlink} lines dropped.
    """
    lines: list[str] = []
    elements: list[str] = []
    for line in text.splitlines():
        if line.startswith("\telement"):
            elements.append(line)
            continue
        lines += sorted(elements)
        elements = []
        lines.append(re.sub(r"^(ip6? keepalived [a-z_]+)( [0-9]+)+$", r"\1", line))
    return "\n".join(lines + sorted(elements))
