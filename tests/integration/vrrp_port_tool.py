"""
A tiny program around L{VrrpRawPort} for the integration tests, run inside
a lab namespace:

    python -m tests.integration.vrrp_port_tool recv --family 4 --count 2 ...
    python -m tests.integration.vrrp_port_tool send --family 4 --source 192.0.2.11 ...

C{recv} prints C{READY} once listening, then one JSON line per datagram
(bytes, meta, validation verdict against the given policy) and exits after
C{--count} datagrams or C{--timeout} seconds.  C{send} sends C{--count}
adverts built by L{keepalive_tx.vrrp.packet}.
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
    p.add_argument("mode", choices=["send", "recv"])
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
    return p.parse_args(argv)


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
    proto = IPPROTO_AH if opts.auth == "AH" else IPPROTO_VRRP
    printer = Printer(opts, reactor)
    port = VrrpRawPort(printer, opts.iface, opts.family, ipProtocol=proto, reactor=reactor)
    port.startListening()
    if opts.mode == "recv":
        print("READY", flush=True)
        reactor.callLater(opts.timeout, reactor.stop)
        reactor.run()
        return 0

    vips = tuple(ip_address(v) for v in opts.vip)
    if opts.version == 2:
        advert = VrrpAdvert(version=2, vrid=opts.vrid, priority=opts.priority, addresses=vips,
                            authType=AuthType[opts.auth], advertIntSeconds=int(opts.interval))
    else:
        advert = VrrpAdvert(version=3, vrid=opts.vrid, priority=opts.priority, addresses=vips,
                            maxAdvertIntCs=round(opts.interval * 100))
    dest = ip_address(opts.dest) if opts.dest else (
        VRRP_MCAST_V4 if opts.family == 4 else VRRP_MCAST_V6
    )
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
        if state["sent"] >= opts.count:
            loop.stop()
            reactor.callLater(0, reactor.stop)

    loop = task.LoopingCall(sendOne)
    loop.start(opts.period)
    reactor.callLater(opts.timeout, lambda: reactor.running and reactor.stop())
    reactor.run()
    print(json.dumps({"sent": port.stats.sent, "errors": port.stats.sendErrors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
