"""
A tiny program around L{VrrpRawPort} for the integration tests, run inside
a lab namespace:

    python -m tests.integration.vrrp_port_tool recv --family 4 --count 2 ...
    python -m tests.integration.vrrp_port_tool send --family 4 --source 192.0.2.11 ...
    python -m tests.integration.vrrp_port_tool flood --rate 5000 --secs 5 --watch 192.0.2.11 ...

C{recv} prints C{READY} once listening, then one JSON line per datagram
(bytes, meta, validation verdict against the given policy) and exits after
C{--count} datagrams or C{--timeout} seconds.  C{send} sends C{--count}
adverts built by L{keepalive_tx.vrrp.packet} (C{SENDING} once the first has
left; SIGTERM stops it early), then prints a JSON line of its counters.  C{flood} sends C{--rate}
adverts a second for C{--secs} seconds (both bounded) in bursts every 10 ms
and prints one JSON line: how many it sent and when each VRRP packet from
C{--watch} (the daemon under test) arrived, relative to the first burst.
"""

from __future__ import annotations

import argparse
import json
import sys
from ipaddress import ip_address

from keepalive_tx.vrrp.packet import (
    IPPROTO_AH,
    IPPROTO_VRRP,
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    AuthType,
    IPv4AdvertTemplate,
    ReceivedMeta,
    VrrpAdvert,
    buildIPv4Advert,
    encodeVrrp,
    nextIpId,
)
from keepalive_tx.vrrp.transport import VrrpRawPort
from keepalive_tx.vrrp.validate import ReceivePolicy, checkAdvert


def _options(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["send", "recv", "flood"])
    p.add_argument("--family", type=int, default=4)
    p.add_argument("--iface", default="eth0")
    p.add_argument("--version", type=int, default=2)
    p.add_argument("--vrid", type=int, default=51)
    p.add_argument("--priority", type=int, default=150)
    p.add_argument("--auth", default="NONE", choices=["NONE", "PASS", "AH"])
    p.add_argument("--password", default="")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--vip", action="append", default=[])
    p.add_argument("--source", default=None)
    p.add_argument("--dest", default=None)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--period", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--rate", type=int, default=5000, help="flood: adverts a second (<= 20000)")
    p.add_argument("--secs", type=float, default=5.0, help="flood: duration (<= 60 s)")
    p.add_argument("--watch", default=None, help="flood: the address whose adverts to time")
    p.add_argument("--garp", default=None, help="flood: also count gratuitous ARPs for this VIP")
    opts = p.parse_args(argv)
    if not (0 < opts.rate <= 20000 and 0 < opts.secs <= 60):
        p.error("a flood is bounded: 0 < --rate <= 20000 and 0 < --secs <= 60")
    return opts


class FloodWatcher:
    """
    Records when VRRP packets from one address arrive (flood mode).
    """

    def __init__(self, watch: str | None, clock) -> None:
        self.watch = ip_address(watch) if watch else None
        self.clock = clock
        self.start = 0.0
        self.arrivals: list[tuple[float, int]] = []

    def vrrpReceived(self, data: bytes, meta: ReceivedMeta) -> None:
        if self.watch is None or meta.source != self.watch:
            return
        offset = 0
        if meta.family == 4 and len(data) >= 20:
            offset = (data[0] & 0xF) * 4 + (24 if data[9] == IPPROTO_AH else 0)
        priority = data[offset + 2] if len(data) > offset + 2 else -1
        self.arrivals.append((round(self.clock.seconds() - self.start, 6), priority))


def flood(opts: argparse.Namespace, advert: VrrpAdvert, dest) -> int:
    """
    Send C{opts.rate} copies of C{advert} a second for C{opts.secs}
    seconds, in bursts every 10 ms, timing what C{opts.watch} sends.
    """
    from twisted.internet import reactor, task

    proto = IPPROTO_AH if opts.auth == "AH" else IPPROTO_VRRP
    watcher = FloodWatcher(opts.watch, reactor)
    port = VrrpRawPort(watcher, opts.iface, opts.family, ipProtocol=proto, reactor=reactor)
    port.startListening()
    if opts.family == 4:
        template = IPv4AdvertTemplate(advert, opts.source, dest, password=opts.password)
    else:
        message = encodeVrrp(advert, 6, computeChecksum=False)
    total = round(opts.rate * opts.secs)
    state = {"id": 0, "due": 0}

    def burst() -> None:
        elapsed = reactor.seconds() - watcher.start
        want = min(total, round(elapsed * opts.rate) + opts.rate // 100)
        while state["due"] < want:
            state["due"] += 1
            if opts.family == 4:
                state["id"] = nextIpId(state["id"])
                port.send(template.packet(state["id"], state["id"]), dest)
            else:
                port.send(message, dest)
        if state["due"] >= total or elapsed >= opts.secs:
            loop.stop()
            reactor.callLater(0.2, reactor.stop)

    garps = _GarpCounter(opts.iface, opts.garp) if opts.garp else None
    watcher.start = reactor.seconds()
    if garps is not None:
        task.LoopingCall(garps.drain).start(0.01)
    loop = task.LoopingCall(burst)
    loop.start(0.01)
    reactor.callLater(opts.secs + 5, lambda: reactor.running and reactor.stop())
    reactor.run()
    print(json.dumps({"sent": port.stats.sent, "errors": port.stats.sendErrors,
                      "wouldBlock": port.stats.sendWouldBlock, "secs": opts.secs,
                      "arrivals": watcher.arrivals,
                      "garps": garps.count if garps is not None else None}), flush=True)
    return 0


class _GarpCounter:
    """
    Counts ARP frames announcing one address (sender IP = target IP), read
    from an C{AF_PACKET} socket drained every 10 ms.
    """

    ETH_P_ARP = 0x0806

    def __init__(self, iface: str, address: str) -> None:
        import socket

        self.address = ip_address(address).packed
        self.count = 0
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(self.ETH_P_ARP))
        self.sock.bind((iface, self.ETH_P_ARP))
        self.sock.setblocking(False)

    def drain(self) -> None:
        while True:
            try:
                frame = self.sock.recv(128)
            except BlockingIOError:
                return
            # ARP for IPv4 over Ethernet: sender IP at 14, target IP at 24.
            if len(frame) >= 28 and frame[14:18] == self.address == frame[24:28]:
                self.count += 1


class Printer:
    """
    Prints what the port delivers, with the verdict of C{checkAdvert}.
    """

    def __init__(self, opts: argparse.Namespace, reactor) -> None:
        self.opts = opts
        self.reactor = reactor
        self.seen = 0
        self.policy = ReceivePolicy(
            family=opts.family,
            vrid=opts.vrid,
            version=opts.version,
            authType=AuthType[opts.auth],
            password=opts.password,
            advertInterval=opts.interval,
            vips=tuple(ip_address(v) for v in opts.vip),
        )

    def vrrpReceived(self, data: bytes, meta: ReceivedMeta) -> None:
        result = checkAdvert(data, meta, self.policy)
        advert = result.advert
        line = {
            "data": data.hex(),
            "family": meta.family,
            "source": str(meta.source),
            "destination": str(meta.destination),
            "ttl": meta.ttl,
            "ifindex": meta.ifindex,
            "verdict": result.verdict.value,
            "reason": result.reason.value,
            "detail": result.detail,
            "counters": list(result.counters),
            "vrid": advert.vrid if advert else None,
            "priority": advert.priority if advert else None,
            "version": advert.version if advert else None,
            "addresses": [str(a) for a in advert.addresses] if advert else None,
        }
        print(json.dumps(line), flush=True)
        self.seen += 1
        if self.seen >= self.opts.count and self.reactor.running:
            self.reactor.stop()


def main(argv: list[str]) -> int:
    from twisted.internet import reactor, task

    opts = _options(argv)
    if opts.mode == "flood":
        return flood(opts, _advert(opts), _destination(opts))
    proto = IPPROTO_AH if opts.auth == "AH" else IPPROTO_VRRP
    printer = Printer(opts, reactor)
    port = VrrpRawPort(printer, opts.iface, opts.family, ipProtocol=proto, reactor=reactor)
    port.startListening()
    if opts.mode == "recv":
        print("READY", flush=True)
        reactor.callLater(opts.timeout, reactor.stop)
        reactor.run()
        return 0

    advert = _advert(opts)
    dest = _destination(opts)
    state = {"id": 0, "sent": 0}

    def sendOne() -> None:
        state["id"] = nextIpId(state["id"])
        if opts.family == 4:
            packet = buildIPv4Advert(advert, opts.source, dest, identification=state["id"],
                                     password=opts.password, ahSequence=state["id"])
        else:
            packet = encodeVrrp(advert, 6, computeChecksum=False)
        port.send(packet, dest)
        state["sent"] += 1
        if state["sent"] == 1:
            print("SENDING", flush=True)
        if state["sent"] >= opts.count:
            loop.stop()
            reactor.callLater(0, reactor.stop)

    loop = task.LoopingCall(sendOne)
    loop.start(opts.period)
    reactor.callLater(opts.timeout, lambda: reactor.running and reactor.stop())
    reactor.run()
    print(json.dumps({"sent": port.stats.sent, "errors": port.stats.sendErrors}), flush=True)
    return 0


def _advert(opts: argparse.Namespace) -> VrrpAdvert:
    vips = tuple(ip_address(v) for v in opts.vip)
    if opts.version == 2:
        return VrrpAdvert(version=2, vrid=opts.vrid, priority=opts.priority, addresses=vips,
                          authType=AuthType[opts.auth], advertIntSeconds=int(opts.interval))
    return VrrpAdvert(version=3, vrid=opts.vrid, priority=opts.priority, addresses=vips,
                      maxAdvertIntCs=round(opts.interval * 100))


def _destination(opts: argparse.Namespace):
    if opts.dest:
        return ip_address(opts.dest)
    return VRRP_MCAST_V4 if opts.family == 4 else VRRP_MCAST_V6


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
