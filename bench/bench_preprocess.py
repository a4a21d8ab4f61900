"""
Benchmark: preprocess a generated ~62,000-line keepalived configuration.

100 vrrp_instance blocks + 100 virtual_servers with 100 real_servers each,
each real server with a TCP_CHECK block. Prints the best of 5 runs.
Run: python bench/bench_preprocess.py
"""

from __future__ import annotations

import time

from keepalive_tx.config.errors import Diagnostics
from keepalive_tx.config.preprocess import preprocessText


def generate() -> str:
    out = ["! generated", "global_defs {", "    router_id LVS_BENCH", "}", ""]
    for i in range(100):
        out += [
            f"vrrp_instance VI_{i} {{",
            "    state BACKUP",
            "    interface eth0",
            f"    virtual_router_id {i + 1}",
            "    priority 100",
            "    advert_int 1",
            "    virtual_ipaddress {",
            f"        192.0.2.{i + 1}/24",
            "    }",
            "}",
        ]
    for v in range(100):
        out += [
            f"virtual_server 198.51.100.{v + 1} 80 {{",
            "    delay_loop 6",
            "    lb_algo rr",
            "    lb_kind NAT",
            "    protocol TCP",
        ]
        for r in range(100):
            out += [
                f"    real_server 203.0.113.{r + 1} {8000 + v} {{",
                "        weight 1",
                "        TCP_CHECK {",
                "            connect_timeout 3",
                "        }",
                "    }",
            ]
        out.append("}")
    return "\n".join(out) + "\n"


def main() -> None:
    text = generate()
    lines = text.count("\n")
    best = float("inf")
    for _ in range(5):
        diagnostics = Diagnostics()
        start = time.perf_counter()
        result = preprocessText(text, "bench.conf", diagnostics, "bench")
        best = min(best, time.perf_counter() - start)
    assert not list(diagnostics), list(diagnostics)
    print(f"{lines} physical lines -> {len(result)} logical lines: best {best:.3f} s")


if __name__ == "__main__":
    main()
