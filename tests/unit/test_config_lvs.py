"""
Tests for the LVS half of the configuration schema (L{schema_lvs},
L{build_lvs}, L{model_lvs}) through the public L{parseText} pipeline.
"""

from __future__ import annotations

import os
import random
from ipaddress import ip_address

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import parseText
from keepalive_tx.config.errors import Severity
from keepalive_tx.config.model_lvs import (
    DnsCheck,
    FileCheck,
    ForwardingMethod,
    HexPattern,
    HttpCheck,
    MiscCheck,
    PingCheck,
    SmtpCheck,
    TcpCheck,
    UdpCheck,
)

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "keepalived-samples")


def _parse(text: str):
    result = parseText(text, "t.conf")
    return result.model, [str(d) for d in result.diagnostics]


def _sample(name: str):
    path = os.path.join(SAMPLES, name)
    with open(path) as f:
        result = parseText(f.read(), name)
    return result.model, result.diagnostics


VS_HEAD = "virtual_server 192.0.2.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n"


def _vs(body: str, head: str = VS_HEAD):
    model, diags = _parse(head + body + "\n}\n")
    return (model.virtualServers[0] if model.virtualServers else None), diags


class SampleTests(SynchronousTestCase):
    """
    The LVS parts of keepalived's own sample configurations.
    """

    def assertClean(self, diagnostics, allowed=()) -> None:
        lvsWords = ("irtual server", "real server", "Unknown keyword", "_CHECK", "_GET", "url", "quorum", "internal")
        bad = [
            str(d) for d in diagnostics
            if any(w in d.message for w in lvsWords) and not any(a in d.message for a in allowed)
        ]
        self.assertEqual(bad, [])

    def test_allSamplesParseWithoutLvsErrors(self) -> None:
        names = sorted(n for n in os.listdir(SAMPLES) if n.startswith("keepalived.conf."))
        names += [
            "extra/keepalived/etc/keepalived/keepalived.conf",
            "extra/keepalived/etc/keepalived/keepalived.conf.sample.in",
        ]
        for name in names:
            model, diags = _sample(name)
            # keepalived 2.2.7 -t itself warns about 'protocol' in the fwmark sample.
            self.assertClean(diags, allowed=("protocol specified for fwmark", "VI_2", "VI_3"))
            self.assertNotIn(Severity.FATAL, [d.severity for d in diags if "internal" in d.message])

    def test_sample(self) -> None:
        model, _ = _sample("keepalived.conf.sample")
        (vs,) = model.virtualServers
        self.assertEqual((vs.address, vs.port, vs.protocol), (ip_address("10.10.10.2"), 1358, "TCP"))
        self.assertEqual((vs.scheduler, vs.method.kind, vs.persistenceTimeout, vs.delayLoop), ("rr", "NAT", 50, 6.0))
        self.assertEqual((str(vs.sorryServer.address), vs.sorryServer.port), ("192.168.200.200", 1358))
        (rs,) = vs.realServers
        self.assertEqual((str(rs.address), rs.port, rs.weight), ("192.168.200.2", 1358, 1))
        (check,) = rs.checkers
        self.assertIsInstance(check, HttpCheck)
        self.assertFalse(check.ssl)
        self.assertEqual(check.urls[0].path, "/testurl3/test.jsp")
        self.assertEqual(check.urls[0].digest, "640205b7b0fc66c1ea91c463fac6334d")
        self.assertEqual(check.urls[0].statusCodes, ((200, 299),))
        self.assertEqual((check.connectTimeout, check.retry, check.delayBeforeRetry), (3.0, 3, 3.0))
        self.assertEqual((check.delayLoop, check.warmup), (6.0, 6.0))  # inherited from the VS
        self.assertEqual((check.connectIp, check.connectPort), (rs.address, 1358))

    def test_httpGetPort(self) -> None:
        model, _ = _sample("keepalived.conf.HTTP_GET.port")
        check = model.virtualServers[0].realServers[0].checkers[0]
        self.assertTrue(check.ssl)
        self.assertEqual(check.checkerName, "SSL_GET")
        self.assertEqual((check.connectPort, model.virtualServers[0].realServers[0].port), (444, 443))
        self.assertEqual(check.urls[0].digest, "ff20ad2481f97b1754ef3e12ecd3a9cc")

    def test_sslGet(self) -> None:
        model, _ = _sample("keepalived.conf.SSL_GET")
        ssl, http = model.virtualServers
        self.assertEqual([u.path for u in ssl.realServers[0].checkers[0].urls], ["/", "/mrtg/"])
        self.assertEqual(http.realServers[0].checkers[0].urls[1].digest, "9b3a0c85a887a256d6939da88aabd8cd")
        self.assertFalse(http.realServers[0].checkers[0].ssl)

    def test_statusCode(self) -> None:
        model, _ = _sample("keepalived.conf.status_code")
        first, second = model.virtualServers[0].realServers[0].checkers[0].urls
        self.assertEqual(first.statusCodes, ((200, 299), (400, 499), (503, 503), (505, 505)))
        self.assertIsNone(first.digest)
        self.assertTrue(first.statusAllowed(404))
        self.assertFalse(first.statusAllowed(504))
        self.assertEqual((second.statusCodes, second.digest), (((200, 200),), "9b3a0c85a887a256d6939da88aabd8cd"))

    def test_virtualhost(self) -> None:
        model, _ = _sample("keepalived.conf.virtualhost")
        vs = model.virtualServers[0]
        check = vs.realServers[0].checkers[0]
        self.assertEqual(vs.virtualhost, "www.firewall.loc")
        self.assertEqual(check.virtualhost, "www.firewall.loc")
        self.assertEqual([u.virtualhost for u in check.urls], ["www.firewall.loc"] * 2)

    def test_smtpCheck(self) -> None:
        model, _ = _sample("keepalived.conf.SMTP_CHECK")
        rs1, rs2, rs3 = model.virtualServers[0].realServers
        (c,) = rs1.checkers
        self.assertIsInstance(c, SmtpCheck)
        self.assertEqual((c.heloName, c.connectTimeout, c.retry, c.delayBeforeRetry), ("foo.bar.com", 30.0, 2, 5.0))
        self.assertEqual((str(c.connectIp), c.connectPort), ("172.16.1.10", 25))
        # Legacy host{} blocks: one checker per host; the first replaces the RS endpoint.
        self.assertEqual([str(c.connectIp) for c in rs2.checkers], ["172.16.1.11", "192.168.155.10", "64.233.167.99"])
        self.assertEqual({c.connectTimeout for c in rs2.checkers}, {10.0})
        self.assertEqual(
            [(str(c.connectIp), c.connectPort, c.bindTo and str(c.bindTo)) for c in rs3.checkers],
            [("172.16.1.12", 25, "172.16.1.2"), ("192.168.155.11", 25, "192.168.155.2"), ("64.233.167.100", 587, None)],
        )

    def test_ipv6(self) -> None:
        model, _ = _sample("keepalived.conf.IPv6")
        (group,) = model.virtualServerGroups
        self.assertEqual(group.name, "IPv6_group")
        self.assertEqual([(str(r.first), str(r.last), r.port) for r in group.addressRanges],
                         [("ae00::2", "ae00::9", 80), ("ae00::1", "ae00::1", 80)])
        vs = model.virtualServers[0]
        self.assertEqual((vs.family, vs.address), (6, ip_address("ae00::1")))
        rs = vs.realServers[0]
        self.assertEqual((str(rs.address), rs.port), ("ae00::10", 25))
        self.assertEqual(rs.checkers[0].heloName, "foo.bar.com")

    def test_pingAndUdp(self) -> None:
        model, _ = _sample("keepalived.conf.PING_CHECK")
        vs = model.virtualServers[0]
        self.assertEqual(vs.protocol, "UDP")
        check = vs.realServers[0].checkers[0]
        self.assertIsInstance(check, PingCheck)
        self.assertEqual((check.retry, check.connectTimeout), (4, 5.0))
        model, _ = _sample("keepalived.conf.UDP_CHECK")
        check = model.virtualServers[0].realServers[0].checkers[0]
        self.assertIsInstance(check, UdpCheck)
        self.assertEqual((check.requireReply, check.payload, check.maxReplyLength), (False, None, 255))

    def test_miscCheck(self) -> None:
        model, _ = _sample("keepalived.conf.misc_check")
        check = model.virtualServers[0].realServers[0].checkers[0]
        self.assertIsInstance(check, MiscCheck)
        self.assertEqual(check.script.argv, ("/usr/local/bin/script.sh",))
        self.assertEqual((check.retry, check.timeout, check.dynamic), (0, 6.0, False))
        model, _ = _sample("keepalived.conf.misc_check_arg")
        check = model.virtualServers[0].realServers[0].checkers[0]
        self.assertEqual(check.script.argv, ("/usr/local/bin/script.sh", "arg1", "arg2"))

    def test_fwmark(self) -> None:
        model, diags = _sample("keepalived.conf.fwmark")
        vs = model.virtualServers[0]
        self.assertEqual((vs.fwmark, vs.address, vs.protocol, vs.family, vs.name), (1, None, None, 4, "FWM 1"))
        self.assertEqual(vs.persistenceTimeout, 900)
        self.assertEqual([(str(rs.address), rs.port) for rs in vs.realServers],
                         [("192.168.201.100", 0), ("192.168.201.101", 0)])
        self.assertEqual([rs.checkers[0].connectPort for rs in vs.realServers], [80, 80])
        self.assertEqual([d.severity for d in diags if "fwmark" in d.message], [Severity.WARNING])

    def test_inhibit(self) -> None:
        model, _ = _sample("keepalived.conf.inhibit")
        rs = model.virtualServers[0].realServers[0]
        self.assertTrue(rs.inhibitOnFailure)
        self.assertIn("inhibitOnFailure", rs.explicit)
        self.assertFalse(model.virtualServers[0].inhibitOnFailure)

    def test_quorum(self) -> None:
        model, _ = _sample("keepalived.conf.quorum")
        vs = model.virtualServers[0]
        self.assertEqual((vs.scheduler, vs.quorum, vs.hysteresis, vs.alpha, vs.omega), ("wrr", 7, 2, True, True))
        self.assertEqual(vs.quorumUp.argv, ("/usr/local/sbin/quorum-up.sh",))
        self.assertEqual(vs.quorumDown.argv, ("/usr/local/sbin/quorum-down.sh",))
        self.assertEqual(len(vs.realServers), 10)
        self.assertEqual(vs.totalWeight, 10)
        self.assertTrue(all(rs.alpha and rs.checkers[0].alpha for rs in vs.realServers))
        self.assertEqual({(rs.port, rs.checkers[0].connectPort) for rs in vs.realServers}, {(8080, 80)})

    def test_virtualServerGroup(self) -> None:
        model, _ = _sample("keepalived.conf.virtual_server_group")
        (g,) = model.virtualServerGroups
        self.assertEqual([(str(r.first), str(r.last), r.port) for r in g.addressRanges], [
            ("10.0.0.1", "10.0.0.1", 8080), ("10.0.0.2", "10.0.0.2", 80),
            ("192.168.200.1", "192.168.200.1", 1358), ("192.168.200.3", "192.168.200.10", 80)])
        self.assertEqual([f.mark for f in g.fwmarks], [1, 2])
        vs = model.virtualServers[0]
        self.assertEqual((vs.group, vs.address, vs.family, vs.name), ("VSG_1", None, 4, "[VSG_1]:0"))
        self.assertEqual([rs.port for rs in vs.realServers], [1358, 1358])

    def test_lvsSyncd(self) -> None:
        model, _ = _sample("keepalived.conf.vrrp.lvs_syncd")
        vs = model.virtualServers[0]
        self.assertEqual((vs.delayLoop, vs.realServers[0].checkers[0].connectTimeout), (20.0, 3.0))

    def test_installedDefault(self) -> None:
        model, _ = _sample("extra/keepalived/etc/keepalived/keepalived.conf")
        self.assertEqual(len(model.virtualServers), 3)
        third = model.virtualServers[2]
        self.assertEqual(third.delayLoop, 3.0)
        self.assertEqual([len(rs.checkers[0].urls) for rs in third.realServers], [3, 3])
        second = model.virtualServers[1]
        self.assertEqual(second.realServers[1].checkers[0].urls[0].digest, "640205b7b0fc66c1ea91c463fac6334c")


class InheritanceTests(SynchronousTestCase):
    def test_vsToRsToChecker(self) -> None:
        vs, diags = _vs("""
 delay_loop 10
 connect_timeout 7
 retry 4
 delay_before_retry 2
 warmup 1.5
 weight 3
 virtualhost vs.example
 real_server 192.0.2.10 8080 {
   TCP_CHECK {
   }
   HTTP_GET {
     url {
       path /
     }
   }
 }
 real_server 192.0.2.11 {
   delay_loop 20
   retry 9
   weight 0
   virtualhost rs.example
   TCP_CHECK {
     connect_timeout 1
     retry 2
   }
   HTTP_GET {
     virtualhost ck.example
     url {
       path /a
       virtualhost url.example
     }
     url {
       path /b
     }
   }
   DNS_CHECK {
   }
 }
""")
        self.assertEqual(diags, [])
        rs1, rs2 = vs.realServers
        self.assertEqual((rs1.weight, rs1.delayLoop, rs1.connectTimeout), (3, 10.0, 7.0))
        tcp, http = rs1.checkers
        self.assertEqual((tcp.delayLoop, tcp.connectTimeout, tcp.retry, tcp.delayBeforeRetry, tcp.warmup),
                         (10.0, 7.0, 4, 2.0, 1.5))
        self.assertEqual(http.urls[0].virtualhost, "vs.example")
        self.assertEqual((rs2.weight, rs2.port, rs2.delayLoop, rs2.retry), (0, 80, 20.0, 9))
        tcp, http, dns = rs2.checkers
        self.assertEqual((tcp.delayLoop, tcp.connectTimeout, tcp.retry, tcp.warmup), (20.0, 1.0, 2, 1.5))
        self.assertEqual(tcp.explicit, frozenset({"connectTimeout", "retry"}))
        self.assertEqual([u.virtualhost for u in http.urls], ["url.example", "ck.example"])
        self.assertEqual(dns.retry, 9)

    def test_builtinCheckerDefaults(self) -> None:
        vs, diags = _vs("""
 real_server 192.0.2.10 53 {
   TCP_CHECK {
   }
   SSL_GET {
     url {
       path /
     }
   }
   DNS_CHECK {
     delay_loop 4
   }
   MISC_CHECK {
     misc_path "/bin/true x"
   }
 }
""")
        tcp, ssl, dns, misc = vs.realServers[0].checkers
        self.assertEqual((tcp.delayLoop, tcp.retry, tcp.delayBeforeRetry, tcp.warmup, tcp.connectTimeout),
                         (60.0, 1, 1.0, 60.0, 5.0))
        self.assertEqual((ssl.retry, ssl.delayBeforeRetry, ssl.httpProtocol), (1, 3.0, "1.0"))
        self.assertEqual((dns.retry, dns.delayBeforeRetry, dns.warmup, dns.type, dns.name), (3, 4.0, 4.0, "SOA", "."))
        self.assertIsInstance(dns, DnsCheck)
        self.assertEqual((misc.retry, misc.timeout), (0, 60.0))

    def test_alphaInheritance(self) -> None:
        vs, _ = _vs("""
 alpha
 real_server 192.0.2.10 80 {
   TCP_CHECK {
   }
 }
 real_server 192.0.2.11 80 {
   alpha off
   TCP_CHECK {
   }
   TCP_CHECK {
     alpha
   }
 }
""")
        rs1, rs2 = vs.realServers
        self.assertEqual((rs1.alpha, rs1.checkers[0].alpha), (True, True))
        self.assertEqual((rs2.alpha, rs2.checkers[0].alpha, rs2.checkers[1].alpha), (False, False, True))


class VirtualServerSemanticsTests(SynchronousTestCase):
    def test_defaultsWithErrors(self) -> None:
        vs, diags = _vs(" real_server 192.0.2.10 80 {\n }", head="virtual_server 192.0.2.1 80 {\n")
        self.assertEqual((vs.protocol, vs.scheduler, vs.method), ("UDP", "wlc", ForwardingMethod("NAT")))
        self.assertEqual(len(diags), 3)
        self.assertIn("no protocol set - defaulting to UDP", diags[0])
        self.assertIn("no scheduler set, setting default 'wlc'", diags[1])
        self.assertIn("no forwarding method set, setting default NAT", diags[2])

    def test_protocolCaseInsensitive(self) -> None:
        for word, expected in (("tcp", "TCP"), ("Udp", "UDP"), ("sctp", "SCTP")):
            vs, diags = _vs(f" protocol {word}", head="virtual_server 192.0.2.1 80 {\n lb_algo rr\n lb_kind DR\n")
            self.assertEqual((vs.protocol, diags), (expected, []))
        vs, diags = _vs(" protocol ICMP")
        self.assertEqual(vs.protocol, "TCP")
        self.assertIn("Unknown protocol ICMP", diags[0])

    def test_everyScheduler(self) -> None:
        for sched in "rr wrr lc wlc lblc sh mh dh fo ovf lblcr sed nq twos".split():
            vs, diags = _vs(f" lvs_sched {sched}")
            self.assertEqual((vs.scheduler, diags), (sched, []))
        vs, diags = _vs(" lvs_sched foo")
        self.assertEqual(vs.scheduler, "rr")
        self.assertIn("Invalid lvs_scheduler 'foo'", diags[0])

    def test_schedulerFlags(self) -> None:
        vs, diags = _vs(" lvs_sched sh\n sh-port\n hashed\n mh-port\n ops")
        self.assertEqual(vs.schedulerFlags, frozenset({"sh-port", "hashed"}))
        self.assertEqual(len(diags), 2)
        self.assertIn("mh-port only applies to mh scheduler", diags[0])
        self.assertIn("one packet scheduling requires UDP - resetting", diags[1])

    def test_lvsMethodTunnel(self) -> None:
        vs, diags = _vs(" lvs_method TUN type gue port 6080 nocsum\n real_server 192.0.2.9 80 {\n  lvs_method DR\n }")
        self.assertEqual((vs.method, diags), (ForwardingMethod("TUN", "gue", 6080, "nocsum"), []))
        self.assertEqual(vs.realServers[0].method, ForwardingMethod("DR"))

    def test_persistence(self) -> None:
        vs, _ = _vs(" persistence_timeout")
        self.assertEqual(vs.persistenceTimeout, 360)
        vs, _ = _vs(" persistence_granularity 255.255.255.0")
        self.assertEqual((vs.persistenceTimeout, vs.persistenceGranularity), (360, 24))
        vs, _ = _vs(" persistence_timeout 30\n persistence_granularity 255.255.0.0")
        self.assertEqual((vs.persistenceTimeout, vs.persistenceGranularity), (30, 16))
        vs, diags = _vs(" persistence_granularity 64", head=VS_HEAD.replace("192.0.2.1", "2001:db8::1"))
        self.assertEqual((vs.persistenceGranularity, diags), (64, []))
        vs, diags = _vs(" persistence_timeout 0\n persistence_granularity 255.0.255.0")
        self.assertEqual((vs.persistenceTimeout, vs.persistenceGranularity), (0, None))
        self.assertEqual(len(diags), 2)

    def test_portOmittedForcesPersistence(self) -> None:
        vs, diags = _vs("", head="virtual_server 192.0.2.1 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n")
        self.assertEqual((vs.port, vs.persistenceTimeout), (0, 360))
        self.assertIn("zero port only valid for persistent services", diags[0])
        vs, diags = _vs(" persistence_timeout 60", head="virtual_server 192.0.2.1 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n")
        self.assertEqual((vs.persistenceTimeout, diags), (60, []))

    def test_quorumAndHysteresis(self) -> None:
        vs, diags = _vs(" quorum 5\n hysteresis 5\n real_server 192.0.2.9 80 {\n  weight 3\n }")
        self.assertEqual((vs.quorum, vs.hysteresis), (3, 2))
        self.assertIn("reducing quorum to 3", diags[0])
        self.assertIn("setting hysteresis to 2", diags[1])
        vs, diags = _vs(" quorum 0")
        self.assertEqual(vs.quorum, 1)
        self.assertEqual(len(diags), 1)

    def test_sorryServer(self) -> None:
        vs, diags = _vs(" sorry_server 192.0.2.99\n sorry_server_inhibit\n sorry_server_lvs_method DR")
        ss = vs.sorryServer
        self.assertEqual((str(ss.address), ss.port, ss.inhibit, ss.method.kind, diags), ("192.0.2.99", 80, True, "DR", []))
        vs, diags = _vs(" sorry_server_inhibit\n sorry_server 2001:db8::1 80")
        self.assertIsNone(vs.sorryServer)
        self.assertIn("sorry_server_inhibit used before or without sorry_server", diags[0])
        self.assertIn("Address family of virtual server and sorry server", diags[1])

    def test_realServerPortRules(self) -> None:
        vs, diags = _vs(" real_server 192.0.2.9 {\n }\n real_server 192.0.2.10 81 {\n  lvs_method DR\n }")
        self.assertEqual([rs.port for rs in vs.realServers], [80, 80])
        self.assertIn("ports don't match - resetting", diags[0])
        vs, diags = _vs(" real_server 192.0.2.9 90 {\n lvs_method TUN\n }\n real_server 192.0.2.10 90 {\n }",
                        head="virtual_server fwmark 3 {\n lb_algo rr\n lb_kind NAT\n")
        self.assertEqual([rs.port for rs in vs.realServers], [0, 90])
        self.assertIn("has port specified - clearing", diags[0])

    def test_duplicateRealServerRemoved(self) -> None:
        vs, diags = _vs(" real_server 192.0.2.9 80 {\n weight 2\n }\n real_server 192.0.2.9 {\n weight 5\n }")
        self.assertEqual([rs.weight for rs in vs.realServers], [2])
        self.assertEqual(diags, ["t.conf:8: VS [192.0.2.1]:tcp:80: real server [192.0.2.9]:tcp:80 is duplicated - removing second rs"])

    def test_realServerFamilyMismatch(self) -> None:
        vs, diags = _vs(" real_server 2001:db8::9 80 {\n }\n real_server 2001:db8::10 80 {\n lvs_method TUN\n }")
        self.assertEqual([str(rs.address) for rs in vs.realServers], ["2001:db8::10"])
        self.assertIn("Address family of virtual server and real server 2001:db8::9 don't match", diags[0])

    def test_badHeaderSkipsBlock(self) -> None:
        model, diags = _parse("virtual_server 192.0.2.300 80 {\n nat_mask 255.0.0.0\n real_server x {\n }\n}\n")
        self.assertEqual(model.virtualServers, ())
        self.assertEqual(len(diags), 1)
        self.assertIn("invalid virtual server IP address '192.0.2.300'", diags[0])

    def test_removedKeywordsAreUnknown(self) -> None:
        vs, diags = _vs(" nat_mask 255.255.255.0")
        self.assertEqual(diags, ["t.conf:5: Unknown keyword 'nat_mask'"])

    def test_deprecatedNbGetRetry(self) -> None:
        vs, diags = _vs(" real_server 192.0.2.9 80 {\n HTTP_GET {\n nb_get_retry 4\n url {\n path /\n }\n }\n }")
        self.assertEqual(vs.realServers[0].checkers[0].retry, 4)
        self.assertEqual(len(diags), 1)
        self.assertIn("nb_get_retry", diags[0])

    def test_notifyScripts(self) -> None:
        vs, _ = _vs(" real_server 192.0.2.9 80 {\n notify_up \"/bin/up.sh 'a b'\" nobody\n notify_down /bin/down\n }")
        rs = vs.realServers[0]
        self.assertEqual((rs.notifyUp.argv, rs.notifyUp.user), (("/bin/up.sh", "a b"), "nobody"))
        self.assertEqual(rs.notifyDown.argv, ("/bin/down",))


class GroupTests(SynchronousTestCase):
    def test_unknownGroupDropsVirtualServer(self) -> None:
        model, diags = _parse("virtual_server group NOPE {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n}\n")
        self.assertEqual(model.virtualServers, ())
        self.assertIn("virtual_server_group NOPE is not defined", diags[0])

    def test_groupDefinedAfterUse(self) -> None:
        model, diags = _parse(
            "virtual_server group G6 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n}\n"
            "virtual_server_group G6 {\n 2001:db8::1 80\n}\n"
        )
        self.assertEqual((diags, model.virtualServers[0].family), ([], 6))

    def test_emptyAndBadEntries(self) -> None:
        model, diags = _parse("virtual_server_group E {\n}\nvirtual_server_group B {\n bogus\n fwmark 4 inet\n}\n")
        self.assertEqual([g.name for g in model.virtualServerGroups], ["B"])
        self.assertEqual(model.virtualServerGroups[0].fwmarks[0].family, 4)
        self.assertIn("virtual server group E has no entries - removing", diags[0])
        self.assertIn("invalid IP address 'bogus'", diags[1])


class CheckerTests(SynchronousTestCase):
    def _checkers(self, body: str):
        vs, diags = _vs(f" real_server 192.0.2.9 80 {{\n{body}\n }}")
        return vs.realServers[0].checkers, diags

    def test_urlWithoutPathDropped(self) -> None:
        checkers, diags = self._checkers(" HTTP_GET {\n url {\n digest 640205b7b0fc66c1ea91c463fac6334d\n }\n }")
        self.assertEqual(checkers, ())
        self.assertIn("url has no path - ignoring", diags[0])
        self.assertIn("has no urls specified - ignoring", diags[1])

    def test_badDigestAndStatusCodes(self) -> None:
        checkers, diags = self._checkers(
            " HTTP_GET {\n url {\n path /\n digest 1234\n status_code 200-199 404\n }\n http_protocol 1.1\n }"
        )
        url = checkers[0].urls[0]
        self.assertEqual((url.digest, url.statusCodes, checkers[0].httpProtocol), (None, ((404, 404),), "1.1"))
        self.assertIn("character length should be 32 rather than 4", diags[0])
        self.assertIn("Invalid HTTP_GET status code '200-199'", diags[1])

    def test_udpPayloads(self) -> None:
        checkers, diags = self._checkers(
            " UDP_CHECK {\n payload 0a0b 0c\n require_reply 0aXX\n min_reply_length 2\n max_reply_length 10\n }\n"
            " UDP_CHECK {\n require_reply\n }"
        )
        a, b = checkers
        self.assertEqual((a.payload, a.requireReply, a.minReplyLength, a.maxReplyLength),
                         (b"\x0a\x0b\x0c", HexPattern(b"\x0a\x00", b"\x00\xff"), 2, 10))
        self.assertEqual((b.requireReply, diags), (True, []))

    def test_connectionOptions(self) -> None:
        checkers, diags = self._checkers(
            " TCP_CHECK {\n connect_ip 192.0.2.50\n connect_port 8080\n bindto 192.0.2.2\n bind_port 999\n"
            " bind_if eth0\n fwmark 7\n }\n TCP_CHECK {\n bindto 2001:db8::1\n }"
        )
        a, b = checkers
        self.assertIsInstance(a, TcpCheck)
        self.assertEqual((str(a.connectIp), a.connectPort, str(a.bindTo), a.bindPort, a.bindIf, a.fwmark),
                         ("192.0.2.50", 8080, "192.0.2.2", 999, "eth0", 7))
        self.assertIsNone(b.bindTo)
        # (parsed, but TCP checkers do not act on them: reported)
        self.assertEqual(diags[:2], [
            "t.conf:11: 'bind_if' is not implemented by keepalive_tx (ignored)",
            "t.conf:12: 'fwmark' is not implemented by keepalive_tx (ignored)"])
        self.assertIn("different address families", diags[2])

    def test_checkerWithoutPort(self) -> None:
        vs, diags = _vs(" real_server 192.0.2.9 {\n TCP_CHECK {\n }\n PING_CHECK {\n }\n }",
                        head="virtual_server fwmark 1 {\n lb_algo rr\n lb_kind NAT\n")
        self.assertEqual(len(vs.realServers[0].checkers), 2)
        self.assertEqual(len(diags), 1)
        self.assertIn("TCP_CHECK for 192.0.2.9 has no port to connect to", diags[0])

    def test_miscOptions(self) -> None:
        checkers, diags = self._checkers(
            " MISC_CHECK {\n misc_path \"/bin/check -x\"\n misc_timeout 5\n misc_dynamic\n user nobody nogroup\n }\n"
            " MISC_CHECK {\n misc_timeout 5\n }"
        )
        (misc,) = checkers
        self.assertEqual((misc.script.argv, misc.script.user, misc.timeout, misc.dynamic),
                         (("/bin/check", "-x"), "nobody:nogroup", 5.0, True))
        self.assertIn("No script path has been specified for MISC_CHECK", diags[0])

    def test_miscPathHasNoUserWords(self) -> None:
        """
        Words after the misc_path command are ignored, as keepalived does
        (only the C{user} keyword sets the identity).
        """
        (misc,), _ = self._checkers(' MISC_CHECK {\n misc_path "/bin/check -x" nobody\n }')
        self.assertEqual((misc.script.argv, misc.script.user), (("/bin/check", "-x"), None))

    def test_dnsOptions(self) -> None:
        checkers, diags = self._checkers(" DNS_CHECK {\n type aaaa\n name example.com\n }\n DNS_CHECK {\n type FOO\n }")
        self.assertEqual([(c.type, c.name) for c in checkers], [("AAAA", "example.com"), ("SOA", ".")])
        self.assertIn("Unknown DNS check type FOO", diags[0])

    def test_fileAndBfdChecks(self) -> None:
        model, diags = _parse(
            "track_file tf {\n file /tmp/x\n}\n" + VS_HEAD
            + " real_server 192.0.2.9 80 {\n FILE_CHECK {\n track_file tf\n weight -3 reverse\n dynamic\n }\n"
            " FILE_CHECK {\n track_file nosuch\n }\n FILE_CHECK {\n }\n BFD_CHECK {\n name nob\n }\n }\n}\n"
        )
        checkers = model.virtualServers[0].realServers[0].checkers
        self.assertIsInstance(checkers[0], FileCheck)
        self.assertEqual((checkers[0].trackFile, checkers[0].weight, checkers[0].reverse, checkers[0].dynamic),
                         ("tf", -3, True, True))
        # keepalived skips a BFD_CHECK naming no (earlier) bfd_instance
        self.assertEqual(len(checkers), 2)
        text = "\n".join(diags)
        self.assertIn("FILE_CHECK has no track_file specified", text)
        self.assertIn("track_file nosuch not found", text)
        self.assertIn("BFD nob not configured", text)

    def test_unknownCheckerKeyword(self) -> None:
        checkers, diags = self._checkers(" TCP_CHECK {\n misc_path /bin/x\n }")
        self.assertEqual(diags, ["t.conf:7: Unknown keyword 'misc_path'"])


class SslBlockTests(SynchronousTestCase):
    def test_ssl(self) -> None:
        model, diags = _parse("SSL {\n password secret\n ca /etc/ca.pem\n certificate /etc/c.pem\n key /etc/k.pem\n}\n")
        ssl = model.ssl
        self.assertEqual((ssl.password, ssl.ca, ssl.certificate, ssl.key, diags),
                         ("secret", "/etc/ca.pem", "/etc/c.pem", "/etc/k.pem",
                          ["t.conf:1: 'SSL' is not implemented by keepalive_tx (ignored)"]))


class RobustnessTests(SynchronousTestCase):
    def test_randomGarbageNeverRaises(self) -> None:
        """
        Random mutations of an LVS sample parse without exceptions.
        """
        with open(os.path.join(SAMPLES, "keepalived.conf.SMTP_CHECK")) as f:
            base = f.read().split("\n")
        with open(os.path.join(SAMPLES, "keepalived.conf.virtual_server_group")) as f:
            base += f.read().split("\n")
        words = ["{", "}", "-1", "0", "x", "1.2.3.4-9", "fwmark", "group", "TUN", "type", "gue", "port",
                 "999999999999", "ae00::1", "url", "path", "HTTP_GET", "real_server", "host", '"', "''", "1e5",
                 "0x10", "status_code", "100-", "-", "digest", "require_reply", "XX", "weight"]
        rnd = random.Random(1234)
        for _ in range(150):
            lines = list(base)
            for _ in range(rnd.randint(1, 8)):
                i = rnd.randrange(len(lines))
                op = rnd.random()
                toks = lines[i].split()
                if op < 0.4 and toks:
                    toks[rnd.randrange(len(toks))] = rnd.choice(words)
                    lines[i] = " ".join(toks)
                elif op < 0.7:
                    lines.insert(i, " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 4))))
                else:
                    del lines[i]
            result = parseText("\n".join(lines), "fuzz.conf")
            self.assertFalse([d for d in result.diagnostics if "internal error" in d.message])
