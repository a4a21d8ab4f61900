"""
L{VrrpRawPort} on real raw sockets in lab namespaces: our sender to our
receiver, and Debian keepalived 2.2.7 as the sender.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

from twisted.trial.unittest import TestCase

from keepalive_tx.vrrp.packet import decodeIPv4Packet, decodeVrrp
from tests.integration.netns import Host, makeLab, requireCommand

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
H1_LL = "fe80::c0ff:fe00:20b"


def _tool(host: Host, *args: str) -> subprocess.Popen:
    return host.spawn(
        sys.executable, "-m", "tests.integration.vrrp_port_tool", *args,
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _readLine(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError("tool printed nothing in time")
    return proc.stdout.readline().strip()


def _startReceiver(host: Host, *args: str) -> subprocess.Popen:
    proc = _tool(host, "recv", *args)
    line = _readLine(proc, 10)
    if line != "READY":
        raise AssertionError(f"receiver did not start: {line!r} {proc.stderr.read()}")
    return proc


def _collect(proc: subprocess.Popen, timeout: float = 15) -> list[dict]:
    out, err = proc.communicate(timeout=timeout)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if not lines:
        raise AssertionError(f"nothing received; stderr: {err}")
    return lines


def _keepalivedConf(version: int, family: int, auth: str | None) -> str:
    vip = "192.0.2.100/24" if family == 4 else "2001:db8::100/64"
    lines = [
        "global_defs {", "    router_id h1", f"    vrrp_version {version}", "}",
        "vrrp_instance VI_51 {", "    state MASTER", "    interface eth0",
        "    virtual_router_id 51", "    priority 150", "    advert_int 1",
    ]
    if family == 6:
        lines.append("    native_ipv6")
    if auth:
        lines += ["    authentication {", f"        auth_type {auth}",
                  "        auth_pass s3cr3t", "    }"]
    lines += ["    virtual_ipaddress {", f"        {vip} dev eth0", "    }", "}"]
    return "\n".join(lines) + "\n"


class OurSenderTests(TestCase):
    """
    Our port sends in h1, our port receives in h2.
    """

    timeout = 60

    def test_ipv4V2Pass(self) -> None:
        """
        IPv4 adverts arrive whole with TTL 255, destination 224.0.0.18, the
        sender's address and the receiving interface; they validate.
        """
        lab = makeLab(self, 2)
        h1, h2 = lab.hosts
        common = ["--family", "4", "--version", "2", "--auth", "PASS", "--password", "s3cr3t",
                  "--vip", "192.0.2.100"]
        rx = _startReceiver(h2, *common, "--count", "3")
        tx = _tool(h1, "send", *common, "--source", h1.ipv4, "--count", "3")
        tx.communicate(timeout=15)
        got = _collect(rx)
        self.assertEqual(len(got), 3)
        ifindex = int(h2.run("cat", "/sys/class/net/eth0/ifindex").stdout)
        for i, line in enumerate(got, 1):
            self.assertEqual((line["source"], line["destination"], line["ttl"]),
                             (h1.ipv4, "224.0.0.18", 255))
            self.assertEqual(line["ifindex"], ifindex)
            self.assertEqual(line["verdict"], "ok", line)
            packet = decodeIPv4Packet(bytes.fromhex(line["data"]))
            self.assertEqual(packet.ip.identification, i)
            self.assertEqual(packet.ip.tos, 0xC0)
            self.assertEqual(packet.vrrp.authData, b"s3cr3t\0\0")

    def test_ipv4Unicast(self) -> None:
        """
        A unicast advert reaches the peer's port too (no group needed).
        """
        lab = makeLab(self, 2)
        h1, h2 = lab.hosts
        rx = _startReceiver(h2, "--family", "4", "--version", "3", "--count", "1",
                            "--vip", "192.0.2.100")
        tx = _tool(h1, "send", "--family", "4", "--version", "3", "--source", h1.ipv4,
                   "--dest", h2.ipv4, "--count", "1", "--vip", "192.0.2.100")
        tx.communicate(timeout=15)
        [line] = _collect(rx)
        self.assertEqual((line["source"], line["destination"], line["ttl"]),
                         (h1.ipv4, h2.ipv4, 255))
        # Our receive policy is multicast: the validator says so.
        self.assertEqual(line["reason"], "cast_mismatch")

    def test_ipv6V3(self) -> None:
        """
        IPv6 adverts: payload only, hop limit 255 and ff02::12 from the
        control messages, the link-local source picked by the kernel, and
        a kernel-computed checksum that validates.
        """
        lab = makeLab(self, 2)
        h1, h2 = lab.hosts
        common = ["--family", "6", "--version", "3", "--vip", "2001:db8::100"]
        rx = _startReceiver(h2, *common, "--count", "2")
        tx = _tool(h1, "send", *common, "--count", "2")
        tx.communicate(timeout=15)
        got = _collect(rx)
        self.assertEqual(len(got), 2)
        for line in got:
            self.assertEqual((line["source"], line["destination"], line["ttl"]),
                             (H1_LL, "ff02::12", 255))
            self.assertEqual(line["verdict"], "ok", line)
            advert = decodeVrrp(bytes.fromhex(line["data"]), 6)
            self.assertNotEqual(advert.checksum, 0)
            self.assertEqual(advert.maxAdvertIntCs, 100)


class KeepalivedSenderTests(TestCase):
    """
    Debian keepalived 2.2.7 sends in h1 (state MASTER); our port receives,
    decodes and validates in h2.
    """

    timeout = 60

    def _withKeepalived(self, version: int, family: int, auth: str | None, recvArgs: list[str]):
        keepalived = requireCommand("keepalived")
        lab = makeLab(self, 2)
        h1, h2 = lab.hosts
        tmp = self.mktemp()
        os.makedirs(tmp)
        conf = os.path.join(tmp, "keepalived.conf")
        with open(conf, "w") as f:
            f.write(_keepalivedConf(version, family, auth))
        rx = _startReceiver(h2, "--family", str(family), "--version", str(version),
                            "--count", "2", "--timeout", "12", *recvArgs)
        log = open(os.path.join(tmp, "keepalived.log"), "w")
        self.addCleanup(log.close)
        started = time.monotonic()
        h1.spawn(keepalived, "-n", "-l", "-D", "-P", "-f", conf,
                 "-p", os.path.join(tmp, "keepalived.pid"),
                 "-r", os.path.join(tmp, "vrrp.pid"),
                 stdout=log, stderr=subprocess.STDOUT)
        got = _collect(rx, timeout=20)
        self.assertTrue(got, "no advert from keepalived")
        self.assertLess(time.monotonic() - started, 20)
        return h1, got

    def test_v2Pass(self) -> None:
        """
        keepalived's VRRPv2 PASS adverts pass every check.
        """
        h1, got = self._withKeepalived(2, 4, "PASS", ["--auth", "PASS", "--password", "s3cr3t",
                                           "--vip", "192.0.2.100"])
        self.assertEqual(len(got), 2)
        for line in got:
            self.assertEqual((line["verdict"], line["reason"]), ("ok", "ok"), line)
            self.assertEqual((line["source"], line["destination"], line["ttl"]),
                             (h1.ipv4, "224.0.0.18", 255))
            self.assertEqual((line["version"], line["vrid"], line["priority"]), (2, 51, 150))
            self.assertEqual(line["addresses"], ["192.0.2.100"])

    def test_v2PassWrongPassword(self) -> None:
        """
        With another password our receiver rejects keepalived's adverts as
        C{auth_failure}.
        """
        _, got = self._withKeepalived(2, 4, "PASS", ["--auth", "PASS", "--password", "other",
                                          "--vip", "192.0.2.100"])
        for line in got:
            self.assertEqual(line["reason"], "password")
            self.assertEqual(line["counters"], ["auth_failure"])

    def test_v2Ah(self) -> None:
        """
        keepalived's AH adverts (IP protocol 51) verify: ICV, SPI and
        increasing sequence numbers.
        """
        h1, got = self._withKeepalived(2, 4, "AH", ["--auth", "AH", "--password", "s3cr3t",
                                         "--vip", "192.0.2.100"])
        seqs = []
        for line in got:
            self.assertEqual(line["verdict"], "ok", line)
            packet = decodeIPv4Packet(bytes.fromhex(line["data"]))
            self.assertEqual(packet.ip.protocol, 51)
            seqs.append(packet.ah.sequence)
        self.assertEqual(seqs, sorted(set(seqs)))

    def test_v3Ipv6(self) -> None:
        """
        keepalived's VRRPv3 IPv6 adverts: from h1's link-local to ff02::12
        with hop limit 255, and valid.
        """
        _, got = self._withKeepalived(3, 6, None, ["--vip", "2001:db8::100"])
        for line in got:
            self.assertEqual((line["verdict"], line["reason"]), ("ok", "ok"), line)
            self.assertEqual((line["source"], line["destination"], line["ttl"]),
                             (H1_LL, "ff02::12", 255))
            self.assertEqual((line["version"], line["priority"]), (3, 150))
            self.assertEqual(line["addresses"], ["2001:db8::100"])
