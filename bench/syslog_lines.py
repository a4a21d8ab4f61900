"""
Benchmark: the cost of keepalived's syslog lines on the reactor thread.

Logs N VRRP lines through a Twisted Logger to the keepalived syslog
observer, whose socket is read by this process between batches (as a
syslog daemon would), and prints CPU microseconds per line (process time, so that other load on the machine counts less): with the observer
off (-G: the event still goes through the publisher), on, and on with
detail lines filtered out (a -D line without -D).
Run: python bench/syslog_lines.py
"""

from __future__ import annotations

import os
import socket
import tempfile
import time

from twisted.logger import Logger, LogPublisher

from keepalive_tx.logs.syslog import SyslogObserver

N = 20000
BATCH = 8  # below net.unix.max_dgram_qlen (10): nothing waits, nothing is dropped


def run(observer: SyslogObserver | None, receiver: socket.socket, detail: bool) -> float:
    publisher = LogPublisher()
    if observer is not None:
        publisher.addObserver(observer)
    log = Logger(namespace="keepalive_tx.vrrp.machine.VRRPMachine", observer=publisher)
    elapsed = 0.0
    for _ in range(0, N, BATCH):
        t0 = time.process_time()
        for _line in range(BATCH):
            if detail:
                log.debug("({name}) setting VIPs.", name="VI_1", keepalivedDetail=True)
            else:
                log.info("({name}) Entering MASTER STATE", name="VI_1")
        elapsed += time.process_time() - t0
        while True:
            try:
                receiver.recv(65536)
            except BlockingIOError:
                break
    return elapsed / N * 1e6


def main() -> None:
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "log")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.setblocking(False)
    observer = SyslogObserver(path)
    try:
        print(f"{N} lines, best of 3, CPU microseconds per line (load average {os.getloadavg()[0]:.1f}):")
        print(f"  no syslog observer (-G):        {min(run(None, receiver, False) for _ in range(3)):6.1f}")
        print(f"  syslog observer:                {min(run(observer, receiver, False) for _ in range(3)):6.1f}")
        print(f"  detail line, dropped (no -D):   {min(run(observer, receiver, True) for _ in range(3)):6.1f}")
        print(f"  sent {observer.sent}, dropped {observer.dropped}")
    finally:
        observer.close()
        receiver.close()
        os.unlink(path)
        os.rmdir(directory)


if __name__ == "__main__":
    main()
