"""
The pure parts of L{keepalive_tx.demo}: the directors' configuration (it
must load cleanly as both directors), the client's outage from C{ping -D}
output, the status API shown as an IPVS table, the timeline, the
requirements check, and the mail server's protocol (C{twisted.mail} on a
fake transport).  The whole demo runs in
L{tests.integration.test_demo}.
"""

from __future__ import annotations

import io
import json
import os

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import loadConfig
from keepalive_tx.demo.cast import FAST, NORMAL, configText
from keepalive_tx.demo.cli import missingRequirements
from keepalive_tx.demo.probe import ReplyGap, longestGap, parsePing
from keepalive_tx.demo.scenario import Timeline
from keepalive_tx.demo.smtpsink import SinkFactory, messageRecord
from keepalive_tx.demo.status import formatTable, instanceState, parseIpvsadm, poolState
from keepalive_tx.lvs.backend import DryRunBackend, MemoryIPVSBackend
from tests.fakes.status import StatusFixture

PING = """\
PING 192.0.2.100 (192.0.2.100) 56(84) bytes of data.
[1700000000.000000] 64 bytes from 192.0.2.100: icmp_seq=1 ttl=64 time=0.050 ms
[1700000000.010000] 64 bytes from 192.0.2.100: icmp_seq=2 ttl=64 time=0.048 ms
[1700000000.020000] 64 bytes from 192.0.2.100: icmp_seq=3 ttl=64 time=0.047 ms
[1700000000.180000] 64 bytes from 192.0.2.100: icmp_seq=19 ttl=64 time=0.061 ms
[1700000000.180500] 64 bytes from 192.0.2.100: icmp_seq=19 ttl=64 time=0.070 ms (DUP!)
[1700000000.190000] 64 bytes from 192.0.2.100: icmp_seq=20 ttl=64 time=0.052 ms

--- 192.0.2.100 ping statistics ---
20 packets transmitted, 5 received, +1 duplicates, 75% packet loss, time 190ms
"""


class ConfigTests(SynchronousTestCase):
    def load(self, name: str, pace=NORMAL):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, f"{name}.conf")
        with open(path, "w") as f:
            f.write(configText(name, directory, pace, "192.0.2.25"))
        result = loadConfig(path, configId=name)
        self.assertEqual([str(d) for d in result.diagnostics], [])
        return result.model, directory

    def test_directors(self) -> None:
        """
        The template loads without a single diagnostic for both directors,
        at both paces; only the priority, router id and status socket
        differ.
        """
        for pace in (NORMAL, FAST):
            lb1, run1 = self.load("lb1", pace)
            lb2, run2 = self.load("lb2", pace)
            [vi1], [vi2] = lb1.vrrpInstances, lb2.vrrpInstances
            self.assertEqual((vi1.priority, vi2.priority), (150, 100))
            self.assertEqual((vi1.version, vi1.advertInt), (3, pace.advertInt))
            self.assertEqual(lb1.globalDefs.routerId, "lb1")
            self.assertEqual(lb2.globalDefs.statusListen, f"unix:{run2}/lb2.status:lockfile=1")
            self.assertEqual(lb1.globalDefs.smtpServer, "192.0.2.25")
            [vs] = lb1.virtualServers
            self.assertEqual(vs.delayLoop, pace.delayLoop)
            self.assertEqual([str(rs.address) for rs in vs.realServers],
                             ["192.0.2.11", "192.0.2.12"])


class ProbeTests(SynchronousTestCase):
    def test_parse(self) -> None:
        """
        Every reply line counts (duplicates too); other lines are skipped.
        """
        replies = parsePing(PING.splitlines())
        self.assertEqual([seq for _, seq in replies], [1, 2, 3, 19, 19, 20])
        self.assertEqual(replies[0], (1700000000.0, 1))

    def test_longestGap(self) -> None:
        """
        The longest silence, from the last reply before it to the first
        after, and the requests lost in it.
        """
        gap = longestGap(parsePing(PING.splitlines()), after=1700000000.015)
        self.assertAlmostEqual(gap.seconds, 0.16, places=6)
        self.assertEqual((gap.lost, gap.replies), (15, 6))
        self.assertAlmostEqual(gap.interval, 0.01, places=6)

    def test_noGap(self) -> None:
        """
        Without loss the longest gap is one interval and nothing is lost.
        """
        replies = [(100.0 + i * 0.018, i) for i in range(1, 50)]
        gap = longestGap(replies, after=100.2)
        self.assertEqual(gap.lost, 0)
        self.assertAlmostEqual(gap.seconds, 0.018, places=6)
        self.assertAlmostEqual(gap.interval, 0.018, places=6)

    def test_unmeasurable(self) -> None:
        """
        No verdict without replies on both sides of the event.
        """
        replies = [(100.0 + i * 0.01, i) for i in range(1, 5)]
        self.assertIsNone(longestGap([], after=0.0))
        self.assertIsNone(longestGap(replies, after=99.0))
        self.assertIsNone(longestGap(replies, after=101.0))
        self.assertIsInstance(longestGap(replies, after=100.025), ReplyGap)


IPVSADM = """\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.100:80 rr
  -> 192.0.2.11:80                Route   1      0          0
UDP  198.51.100.7:53 wlc persistent 50
  -> 198.51.100.8:53              Masq    3      0          2
TCP  [2001:db8::100]:443 sh
  -> [2001:db8::11]:443           Tunnel  0      0          0
FWM  7 rr
"""

DR_CONFIG = """\
global_defs {
    router_id lb1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 192.0.2.12 80 {
        TCP_CHECK { connect_timeout 1 }
    }
}
"""


class StatusTests(StatusFixture, SynchronousTestCase):
    """
    The status API's real snapshot (a running LvsService on an in-memory
    IPVS table), shown by the demo.
    """

    def snapshot(self, down: tuple[str, ...] = (), backend=DryRunBackend) -> dict:
        self.buildRoot(DR_CONFIG)
        self.root.lvsService.backendFactory = backend
        self.start()
        for address in down:
            self.checkers[address].ok = False
        self.clock.pump([0.5] * 6)
        return json.loads(json.dumps(self.root.snapshot()))

    def test_dryRunTable(self) -> None:
        """
        Where the kernel has no IPVS, the daemon's dry-run table, laid out
        like C{ipvsadm -Ln}: the service, then each destination with its
        forwarding method, weight and health.
        """
        lines = formatTable("lb1", self.snapshot(), {"192.0.2.11": "web1", "192.0.2.12": "web2"})
        self.assertEqual(lines, [
            "IPVS table on lb1 (dry run: this kernel has no IPVS, so the daemon keeps the "
            "table in memory):",
            "  [192.0.2.100]:tcp:80 rr",
            "    -> [192.0.2.11]:80    web1  Route  weight 1  TCP_CHECK ok",
            "    -> [192.0.2.12]:80    web2  Route  weight 1  TCP_CHECK ok",
        ])

    def test_failedServer(self) -> None:
        """
        A failed real server is out of the table, shown with its reason.
        """
        lines = formatTable("lb2", self.snapshot(down=("192.0.2.12",)), {"192.0.2.11": "web1"})
        self.assertEqual(lines[2:], [
            "    -> [192.0.2.11]:80    web1  Route  weight 1  TCP_CHECK ok",
            "    (not in the table: [192.0.2.12]:80   TCP_CHECK failed: TCP connection failed)",
        ])

    def test_kernelTable(self) -> None:
        """
        Where the kernel has IPVS, its table (from C{ipvsadm -Ln}) is shown:
        the services the daemon owns, not the others.
        """
        kernel = parseIpvsadm(IPVSADM)
        status = self.snapshot(down=("192.0.2.12",), backend=MemoryIPVSBackend)
        lines = formatTable("lb1", status, {"192.0.2.11": "web1"}, kernel)
        self.assertEqual(lines, [
            "IPVS table on lb1 (kernel, ipvsadm -Ln):",
            "  [192.0.2.100]:tcp:80 rr",
            "    -> [192.0.2.11]:80    web1  Route  weight 1  TCP_CHECK ok",
            "    (not in the table: [192.0.2.12]:80   TCP_CHECK failed: TCP connection failed)",
        ])

    def test_parseIpvsadm(self) -> None:
        """
        Services (TCP, UDP, IPv6, firewall marks) and their destinations,
        named as keepalived names them.
        """
        self.assertEqual(parseIpvsadm(IPVSADM), [
            {"service": "[192.0.2.100]:tcp:80", "scheduler": "rr", "destinations": [
                {"destination": "[192.0.2.11]:80", "method": "DR", "weight": 1}]},
            {"service": "[198.51.100.7]:udp:53", "scheduler": "wlc", "destinations": [
                {"destination": "[198.51.100.8]:53", "method": "NAT", "weight": 3}]},
            {"service": "[2001:db8::100]:tcp:443", "scheduler": "sh", "destinations": [
                {"destination": "[2001:db8::11]:443", "method": "TUN", "weight": 0}]},
            {"service": "FWM 7", "scheduler": "rr", "destinations": []},
        ])

    def test_states(self) -> None:
        """
        L{instanceState} and L{poolState} read the VRRP state and each real
        server's health (checked once every checker has a result).
        """
        self.buildRoot(DR_CONFIG)
        before = json.loads(json.dumps(self.root.snapshot()))
        self.assertIsNone(instanceState(None))
        self.assertEqual(poolState(None), {})
        self.start()
        self.assertEqual(instanceState(self.root.snapshot()), "BACKUP")
        self.assertEqual(poolState(self.root.snapshot()),
                         {"192.0.2.11:80": (True, False), "192.0.2.12:80": (True, False)})
        self.checkers["192.0.2.12"].ok = False
        self.clock.pump([0.5] * 6)
        self.assertEqual(poolState(self.root.snapshot()),
                         {"192.0.2.11:80": (True, True), "192.0.2.12:80": (False, True)})
        self.assertIsNone(instanceState(before, "VI_9"))


class TimelineTests(SynchronousTestCase):
    def test_lines(self) -> None:
        """
        Each line starts with the seconds since the start; details are
        indented under it.
        """
        now = [50.0]
        out = io.StringIO()
        timeline = Timeline(out, lambda: now[0])
        now[0] = 53.24
        timeline.say("director lb1 is MASTER for 192.0.2.100")
        timeline.detail(["IPVS table", "  x"])
        timeline.say("mail", at=61.0)
        self.assertEqual(out.getvalue(),
                         "[ 3.2s] director lb1 is MASTER for 192.0.2.100\n"
                         "         IPVS table\n"
                         "           x\n"
                         "[11.0s] mail\n")


class RequirementsTests(SynchronousTestCase):
    def test_notRoot(self) -> None:
        """
        The demo says why it cannot run: not root, missing commands (with
        the Debian package to install).
        """
        self.assertEqual(missingRequirements(0, lambda c: f"/usr/bin/{c}"), [])
        problems = missingRequirements(1000, lambda c: None if c == "ping" else c)
        self.assertEqual(problems, [
            "it must run as root (it creates network namespaces)",
            "'ping' is missing (apt-get install iputils-ping)",
        ])


class SinkTests(SynchronousTestCase):
    def test_delivery(self) -> None:
        """
        The mail server speaks ESMTP and prints each message as one JSON
        line (the body's whitespace folded).
        """
        out = io.StringIO()
        protocol = SinkFactory(out).buildProtocol(IPv4Address("TCP", "192.0.2.2", 40000))
        transport = StringTransport()
        protocol.makeConnection(transport)
        for line in (b"EHLO lb1", b"MAIL FROM:<lb1@example.org>", b"RCPT TO:<admin@example.org>",
                     b"DATA", b"From: lb1@example.org",
                     b"Subject: [lb1] Realserver [192.0.2.12]:tcp:80 of virtual server "
                     b"[192.0.2.100]:tcp:80 - DOWN",
                     b"", b"=> CHECK failed on service : HTTP/SSL request failed <=", b"", b".",
                     b"QUIT"):
            protocol.dataReceived(line + b"\r\n")
        replies = transport.value().decode()
        self.assertIn("250 Delivery in progress", replies)
        self.assertNotIn("STARTTLS", replies)
        self.assertEqual([json.loads(line) for line in out.getvalue().splitlines()], [{
            "from": "lb1@example.org", "to": "admin@example.org",
            "subject": "[lb1] Realserver [192.0.2.12]:tcp:80 of virtual server "
                       "[192.0.2.100]:tcp:80 - DOWN",
            "body": "=> CHECK failed on service : HTTP/SSL request failed <=",
        }])

    def test_encodedSubject(self) -> None:
        """
        RFC 2047 subjects are decoded.
        """
        record = messageRecord("a@example.org", "b@example.org",
                               b"Subject: =?utf-8?q?caf=C3=A9?=\n\nbody\n")
        self.assertEqual(record["subject"], "caf\u00e9")
