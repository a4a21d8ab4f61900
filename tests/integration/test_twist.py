"""
C{twist keepalived}: Twisted's newer runner calls only C{startService}
(never C{privilegedStartService}); the daemon must still open its raw and
netlink sockets, take over as MASTER and hold the VIP, release it on
SIGTERM, and C{--log-format json} must give records that
L{twisted.logger.eventsFromJSONLogFile} reads back.
"""

from __future__ import annotations

import io
import json
import signal

from twisted.logger import eventsFromJSONLogFile, formatEvent
from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import (
    OURS,
    V2_PASS,
    VIP4,
    VrrpLabMixin,
    configText,
    holders,
    twistArgv,
    waitFor,
)

#: a configuration with every kind of part: static address, VRRP, checkers
MIXED = """\
global_defs {
    router_id h1
}
static_ipaddress {
    198.51.100.1/32 dev lo
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
    }
}
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.11 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


class TwistTests(VrrpLabMixin, TestCase):
    timeout = 90

    def test_vrrpWithJsonLog(self) -> None:
        """
        C{twist --log-format json keepalived -c FILE} with one VRRP
        instance: MASTER with the VIP, every line of its output a JSON log
        record, the transition among them; SIGTERM releases the VIP.
        """
        [node] = self.makeNodes([OURS])
        node.start(configText(V2_PASS, node.host, 150), argv=twistArgv("--log-format", "json"))
        self.waitHolders(VIP4, [1], timeout=20)
        status = node.stop()
        self.assertIn(status, (0, -signal.SIGTERM), node.logTail())
        self.assertEqual(holders([node.host], VIP4), [])
        text = node.logSinceStart()
        records = [r for r in text.split("\x1e") if r.strip()]
        for record in records:
            self.assertIsInstance(json.loads(record), dict, record)
        events = list(eventsFromJSONLogFile(io.StringIO(text)))
        self.assertEqual(len(events), len(records))
        lines = [formatEvent(e) for e in events]
        self.assertIn("(VI_51) Entering MASTER STATE", lines)
        self.assertIn("Starting keepalive_tx", lines)
        self.assertIn("Stopping keepalive_tx", lines)
        self.assertEqual([e for e in events if "log_failure" in e], [])
        levels = {e["log_level"].name for e in events}
        self.assertIn("info", levels)

    def test_everyPart(self) -> None:
        """
        A configuration with a static address, a VRRP instance and a virtual
        server runs under plain C{twist} too, reloads on SIGHUP, and SIGTERM
        removes what it added.
        """
        [node] = self.makeNodes([OURS])
        node.start(MIXED, argv=twistArgv())
        self.waitHolders(VIP4, [1], timeout=20)
        self.assertIn("198.51.100.1", node.host.run("ip", "-o", "addr", "show", "dev", "lo").stdout)
        node.sendSignal(signal.SIGHUP)
        waitFor(lambda: "Reloaded: configuration unchanged" in node.logSinceStart(), 10,
                "the SIGHUP reload", [node])
        log = node.logSinceStart()
        self.assertNotIn("Traceback", log)
        self.assertIn("Entering MASTER STATE", log)
        status = node.stop()
        self.assertIn(status, (0, -signal.SIGTERM), node.logTail())
        self.assertEqual(holders([node.host], VIP4), [])
        self.assertNotIn("198.51.100.1",
                         node.host.run("ip", "-o", "addr", "show", "dev", "lo").stdout)
