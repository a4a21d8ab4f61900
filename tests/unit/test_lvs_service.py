"""
Tests for L{keepalive_tx.lvs.service.LvsService} and
L{keepalive_tx.check.factory}: checker events drive the pools, the pools
drive an in-memory IPVS table, events become logs, scripts and mails.

Everything runs on a L{task.Clock} with fake checkers (their results set by
the test), the real configuration parser, real pools, the real
L{IPVSTable} on a L{MemoryIPVSBackend}, and the real L{AlertDispatcher}
with a recording mailer.
"""

from __future__ import annotations

import json
import os

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.alert.messages import AlertDispatcher
from keepalive_tx.check import factory
from keepalive_tx.check.base import CheckerState, CheckResult, ConnectOptions, HttpCheckerState
from keepalive_tx.check.factory import BuiltChecker, UnsupportedChecker, buildChecker, checkTiming
from keepalive_tx.check.http import HttpChecker
from keepalive_tx.check.tcp import TcpChecker
from keepalive_tx.lvs.service import LvsService, recordFileName
from keepalive_tx.service import KeepalivedService
from tests.fakes.check import FakeChecker
from tests.fakes.lvs import (
    LVS_CONFIG,
    RS11,
    RS12,
    SORRY,
    VS,
    A,
    FakeMonitor,
    LvsServiceHarness,
    parse,
)
from tests.fakes.scripts import FakeScriptRunner


class LvsServiceTests(LvsServiceHarness):
    def test_startProgramsTable(self) -> None:
        """
        At start the configured service and its real servers are in IPVS
        (reconciled through L{IPVSTable}), the ownership record names it,
        and the initial quorum state is logged, scripted and mailed.
        """
        svc = self.service()
        lines = self.start(svc)
        self.assertEqual(self.dests(), {RS11: 1, RS12: 2})
        self.assertEqual(self.backend.table[VS].spec.scheduler, "wrr")
        with open(os.path.join(self.recordDir, recordFileName())) as f:
            self.assertEqual(json.load(f)[0]["address"], "192.0.2.100")
        self.assertIn("Starting with quorum up for VS [192.0.2.100]:tcp:80", lines)
        self.assertIn("Activating healthchecker for service [192.0.2.11]:tcp:80 for VS [192.0.2.100]:tcp:80",
                      lines)
        self.assertEqual(self.scripts, ["/bin/quorum up"])
        self.assertEqual(
            self.mailer.sent,
            [("[lb1] Virtualserver [192.0.2.100]:tcp:80 - UP", "=> Starting with quorum up 2+0=2 <= 3 <=")],
        )

    def test_dryRunRecordsNothing(self) -> None:
        """
        With the dry-run backend (no IPVS in the kernel) the table is kept
        in memory and nothing is recorded as ours: a later real run must
        not delete kernel services of the same name.
        """
        from keepalive_tx.lvs.backend import DryRunBackend

        dry = DryRunBackend()
        svc = self.service(backendFactory=lambda: dry)
        self.start(svc)
        self.assertEqual(set(dry.table), {VS})
        self.assertFalse(os.path.exists(os.path.join(self.recordDir, recordFileName())))
        svc.stopService()
        self.assertEqual(dry.table, {})

    def test_checkerDownRemovesServer(self) -> None:
        """
        A failing TCP_CHECK takes its real server out of IPVS with
        keepalived's log lines, runs notify_down and mails the checker's
        wording; when it succeeds again the server is back and notify_up
        runs.
        """
        svc = self.service()
        self.start(svc)
        self.checkers[("192.0.2.11", "TCP_CHECK")].ok = False
        lines = self.advance(1.05)
        self.assertIn("TCP_CHECK on service [192.0.2.11]:tcp:80 failed.", lines)
        self.assertIn("Removing service [192.0.2.11]:tcp:80 from VS [192.0.2.100]:tcp:80", lines)
        self.assertEqual(self.dests(), {RS12: 2})
        self.assertEqual(self.scripts[-1], "/bin/notify down11")
        self.assertIn(
            ("[lb1] Realserver [192.0.2.11]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - DOWN",
             "=> TCP CHECK failed on service <="),
            self.mailer.sent,
        )
        self.checkers[("192.0.2.11", "TCP_CHECK")].ok = True
        lines = self.advance(1.0)
        self.assertIn("TCP connection to [192.0.2.11]:tcp:80 success.", lines)
        self.assertIn("Adding service [192.0.2.11]:tcp:80 to VS [192.0.2.100]:tcp:80", lines)
        self.assertEqual(self.dests(), {RS11: 1, RS12: 2})
        self.assertEqual(self.scripts[-1], "/bin/notify up11")
        self.assertEqual(
            self.mailer.sent[-1],
            ("[lb1] Realserver [192.0.2.11]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - UP",
             "=> TCP CHECK succeed on service <="),
        )

    def test_allCheckersMustBeUp(self) -> None:
        """
        A real server with two checkers is inhibited (weight 0, it has
        inhibit_on_failure) when either fails, and re-enabled only when the
        last failing one recovers.
        """
        svc = self.service()
        self.start(svc)
        http = self.checkers[("192.0.2.12", "HTTP_GET")]
        tcp = self.checkers[("192.0.2.12", "TCP_CHECK")]
        http.ok = tcp.ok = False
        lines = self.advance(1.05)
        self.assertIn("Disabling service [192.0.2.12]:tcp:80 of VS [192.0.2.100]:tcp:80", lines)
        self.assertIn("HTTP_CHECK on service [192.0.2.12]:tcp:80 failed.", lines)
        # quorum 2 > live 1: sorry server in, the alive RS leaves
        self.assertEqual(self.dests(), {RS12: 0, SORRY: 1})
        http.ok = True
        lines = self.advance(5.0)
        self.assertIn("Remote Web server [192.0.2.12]:tcp:80 succeed on service.", lines)
        self.assertEqual(self.dests(), {RS12: 0, SORRY: 1})
        tcp.ok = True
        lines = self.advance(1.0)
        self.assertEqual(self.dests(), {RS11: 1, RS12: 2})
        self.assertIn("Removing sorry server [192.0.2.99]:tcp:80 from VS [192.0.2.100]:tcp:80", lines)
        subjects = [s for s, _ in self.mailer.sent]
        self.assertIn("[lb1] Realserver [192.0.2.12]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - UP",
                      subjects)
        # the HTTP checker's recovery mail says the RS is still DOWN
        self.assertIn(
            ("[lb1] Realserver [192.0.2.12]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - DOWN",
             "=> CHECK succeed on service <="),
            self.mailer.sent,
        )

    def test_quorumLostAddsSorryServer(self) -> None:
        """
        Losing quorum adds the sorry server (logged), runs quorum_down and
        mails the virtual server; regaining it reverses all three.
        """
        svc = self.service()
        self.start(svc)
        self.checkers[("192.0.2.12", "TCP_CHECK")].ok = False
        lines = self.advance(1.05)
        self.assertIn("Lost quorum 2-0=2 > 1 for VS [192.0.2.100]:tcp:80", lines)
        self.assertIn("Adding sorry server [192.0.2.99]:tcp:80 to VS [192.0.2.100]:tcp:80", lines)
        self.assertEqual(self.dests(), {RS12: 0, SORRY: 1})
        self.assertIn("/bin/quorum down", self.scripts)
        self.assertIn(
            ("[lb1] Virtualserver [192.0.2.100]:tcp:80 - DOWN", "=> Lost quorum 2+0=2 <= 1 <="), self.mailer.sent
        )
        self.checkers[("192.0.2.12", "TCP_CHECK")].ok = True
        lines = self.advance(1.0)
        self.assertIn("Gained quorum 2+0=2 <= 3 for VS [192.0.2.100]:tcp:80", lines)
        self.assertEqual(self.scripts[-1], "/bin/quorum up")
        self.assertEqual(self.dests(), {RS11: 1, RS12: 2})

    def test_stopRemovesEverything(self) -> None:
        """
        Stopping stops the checkers and removes the service; without omega
        no script runs and no mail is sent at stop; the record is emptied.
        """
        svc = self.service()
        self.start(svc)
        self.advance(1.05)
        scripts, mails = list(self.scripts), list(self.mailer.sent)
        d = svc.stopService()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.backend.table, {})
        self.assertEqual(self.scripts, scripts)
        self.assertEqual(self.mailer.sent, mails)
        attempts = self.checkers[("192.0.2.11", "TCP_CHECK")].attempts
        self.clock.advance(10)
        self.assertEqual(self.checkers[("192.0.2.11", "TCP_CHECK")].attempts, attempts)
        with open(os.path.join(self.recordDir, recordFileName())) as f:
            self.assertEqual(json.load(f), [])

    def test_omegaAtStop(self) -> None:
        """
        With omega, stopping runs quorum_down and each alive server's
        notify_down, mails C{Shutting down}, and waits (a bounded time) for
        the scripts.
        """
        svc = self.service(vsExtra="omega", stopGrace=3.0)
        self.start(svc)
        self.pendingScripts = True
        self.scripts.clear()
        self.mailer.sent.clear()
        d = svc.stopService()
        self.assertNoResult(d)
        self.assertEqual(self.scripts, ["/bin/quorum down", "/bin/notify down11"])
        self.assertEqual(
            self.mailer.sent,
            [
                ("[lb1] Virtualserver [192.0.2.100]:tcp:80 - DOWN", "=> Shutting down <="),
                ("[lb1] Realserver [192.0.2.11]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - DOWN",
                 "=> Shutting down <="),
                ("[lb1] Realserver [192.0.2.12]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - DOWN",
                 "=> Shutting down <="),
            ],
        )
        self.assertEqual(self.backend.table, {})
        self.clock.advance(3.0)
        self.assertIsNone(self.successResultOf(d))

    def test_stopCancelsAttemptInProgress(self) -> None:
        """
        A check in progress at stop is cancelled and its result ignored.
        """
        svc = self.service()
        self.start(svc)
        fake = self.checkers[("192.0.2.11", "TCP_CHECK")]
        fake.hold = True
        self.clock.advance(1.0)
        self.assertEqual(len(fake.pending), 1)
        mails = list(self.mailer.sent)
        svc.stopService()
        self.assertTrue(fake.pending[0].called)
        self.assertEqual(self.mailer.sent, mails)

    def test_alpha(self) -> None:
        """
        With alpha a real server starts out of the pool (so quorum starts
        down and the sorry server is in); its first success adds it.
        """
        svc = self.service(vsExtra="alpha")
        lines = self.start(svc)
        self.assertEqual(self.dests(), {RS12: 0, SORRY: 1})
        self.assertIn("Starting with quorum down for VS [192.0.2.100]:tcp:80", lines)
        self.assertEqual(self.scripts, ["/bin/quorum down"])
        lines = self.advance(1.05)
        self.assertEqual(self.dests(), {RS11: 1, RS12: 2})
        self.assertIn("/bin/notify up11", self.scripts)
        self.assertIn("TCP connection to [192.0.2.11]:tcp:80 success.", lines)
        self.assertIn("Gained quorum 2+0=2 <= 3 for VS [192.0.2.100]:tcp:80", lines)

    def test_unsupportedCheckerIgnored(self) -> None:
        """
        A checker kind without a factory is reported and ignored: the real
        server is judged by its other checkers.
        """
        text = LVS_CONFIG.replace("TCP_CHECK { connect_timeout 1 }", 'MISC_CHECK { misc_path "/bin/true" }')
        svc = self.service(text=text % {"vsExtra": "", "rs11Extra": ""})
        lines = self.start(svc)
        self.assertIn(
            "[192.0.2.11]:tcp:80 of VS [192.0.2.100]:tcp:80: MISC_CHECK is not supported yet; "
            "this checker is ignored",
            lines,
        )
        self.advance(3)
        self.assertEqual(self.dests(), {RS11: 1, RS12: 2})

    def test_dynamicWeight(self) -> None:
        """
        A result carrying a weight contribution (misc_dynamic) changes the
        destination's weight.
        """
        from keepalive_tx.check.misc import DynamicResult

        svc = self.service()
        self.start(svc)
        self.checkers[("192.0.2.11", "TCP_CHECK")].result = DynamicResult(True, "succeeded", "", 4)
        lines = self.advance(1.05)
        self.assertEqual(self.dests(), {RS11: 5, RS12: 2})
        self.assertIn(
            "Changing weight from 1 to 5 for active service [192.0.2.11]:tcp:80 of VS [192.0.2.100]:tcp:80",
            lines,
        )

    def test_haSuspend(self) -> None:
        """
        With ha_suspend, while the virtual address is absent the checkers
        are suspended and nothing is programmed; when it appears the
        service is added and checking resumes; when it goes, checking
        stops again.
        """
        monitor = FakeMonitor(set())
        svc = self.service(vsExtra="ha_suspend", addressMonitorFactory=lambda reactor: monitor)
        self.start(svc)
        self.assertTrue(monitor.started)
        self.assertEqual(self.backend.table, {})
        self.clock.advance(3)
        self.assertEqual(self.checkers[("192.0.2.11", "TCP_CHECK")].attempts, 0)
        monitor.set(A("192.0.2.100"), True)
        self.assertEqual(self.dests(), {RS11: 1, RS12: 2})
        self.clock.advance(1.0)
        self.assertEqual(self.checkers[("192.0.2.11", "TCP_CHECK")].attempts, 1)
        monitor.set(A("192.0.2.100"), False)
        self.clock.advance(3.0)
        self.assertEqual(self.checkers[("192.0.2.11", "TCP_CHECK")].attempts, 1)
        svc.stopService()
        self.assertFalse(monitor.started)


START_CONFIG = """\
global_defs {
    router_id lb1
%(globalExtra)s
}
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
%(vsExtra)s
    real_server 192.0.2.11 80 {
        notify_up "/bin/notify up tcp-ok"
        notify_down "/bin/notify down tcp-ok"
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 192.0.2.12 80 {
        notify_up "/bin/notify up misc-ok"
        notify_down "/bin/notify down misc-ok"
        MISC_CHECK { misc_path "/bin/true" }
    }
    real_server 192.0.2.13 80 {
        notify_up "/bin/notify up tcp-down"
        notify_down "/bin/notify down tcp-down"
        TCP_CHECK { connect_timeout 1 }
    }
}
"""

RS_UP = "[lb1] Realserver [192.0.2.%d]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - UP"
RS_DOWN = "[lb1] Realserver [192.0.2.%d]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - DOWN"


class StartNotificationTests(LvsServiceHarness):
    """
    What is mailed and notified for the first checks after start, as
    keepalived 2.2.7 does (tests.integration.test_lvs_mail runs both side by
    side): a healthy TCP_CHECK server found healthy mails nothing (before:
    an UP mail at every start and reload); MISC_CHECK mails its first
    result; a failing server mails DOWN, except with alpha (it was never
    up); C{rs_init_notifies} runs C{notify_up} at start for every server
    put in the pool, before any check, and mails nothing.
    """

    def builder(self, reactor, config, rs, vs, model) -> BuiltChecker:
        fake = FakeChecker(config.kind, f"[{rs.address}]:tcp:80")
        fake.ok = str(rs.address) != "192.0.2.13"
        if config.kind == "MISC_CHECK":
            fake.result = CheckResult(True, "succeeded")
        self.checkers[(str(rs.address), config.kind)] = fake
        timing = checkTiming(config, model)
        return BuiltChecker(fake, CheckerState(timing), timing)

    def startWith(self, globalExtra: str = "", vsExtra: str = "") -> None:
        text = START_CONFIG % {"globalExtra": globalExtra, "vsExtra": vsExtra}
        svc = self.service(text=text)
        self.start(svc)
        self.atStart = list(self.scripts)
        self.advance(1.05)

    def test_default(self) -> None:
        self.startWith()
        self.assertEqual(sorted(self.mailer.sent), [
            (RS_UP % 12, "=> MISC CHECK succeeded on service <="),
            (RS_DOWN % 13, "=> TCP CHECK failed on service <=")])
        self.assertEqual(self.atStart, [])
        self.assertEqual(self.scripts, ["/bin/notify down tcp-down"])

    def test_rsInitNotifies(self) -> None:
        self.startWith(globalExtra="    rs_init_notifies")
        self.assertEqual(self.atStart, ["/bin/notify up tcp-ok", "/bin/notify up misc-ok",
                                        "/bin/notify up tcp-down"])
        self.assertEqual(self.scripts[3:], ["/bin/notify down tcp-down"])
        self.assertEqual(sorted(self.mailer.sent), [
            (RS_UP % 12, "=> MISC CHECK succeeded on service <="),
            (RS_DOWN % 13, "=> TCP CHECK failed on service <=")])

    def test_alpha(self) -> None:
        self.startWith(vsExtra="    alpha")
        self.assertEqual(sorted(self.mailer.sent), [
            (RS_UP % 11, "=> TCP CHECK succeed on service <="),
            (RS_UP % 12, "=> MISC CHECK succeeded on service <=")])
        self.assertEqual(sorted(self.scripts), ["/bin/notify down tcp-down",
                                                "/bin/notify up misc-ok",
                                                "/bin/notify up tcp-ok"])

    def test_laterChangesMailed(self) -> None:
        """
        After the first results, every change is mailed as before.
        """
        self.startWith()
        del self.mailer.sent[:]
        self.checkers[("192.0.2.11", "TCP_CHECK")].ok = False
        self.checkers[("192.0.2.13", "TCP_CHECK")].ok = True
        self.advance(3.0)  # a failure after a success is retried once first
        self.assertEqual(sorted(self.mailer.sent), [
            (RS_DOWN % 11, "=> TCP CHECK failed on service <="),
            (RS_UP % 13, "=> TCP CHECK succeed on service <=")])

    def test_noMailAfterReload(self) -> None:
        """
        The checks of a reloaded configuration go on where they were: no
        first-result mail again (keepalived carries C{has_run}), and no
        C{rs_init_notifies} script for servers the reload kept.
        """
        self.startWith(globalExtra="    rs_init_notifies")
        old = self.svc
        del self.mailer.sent[:]
        del self.scripts[:]
        old.handover()
        model = parse(START_CONFIG % {"globalExtra": "    rs_init_notifies", "vsExtra": ""})
        new = LvsService(model, self.clock, alerts=AlertDispatcher(self.mailer, "lb1"),
                         recordDir=self.recordDir, checkerBuilder=self.builder,
                         scriptRunner=lambda s: FakeScriptRunner(s, log=self.scripts, immediate=True),
                         random=lambda: 0.0, backendFactory=lambda: self.backend,
                         previous=old)
        self.successResultOf(old.stopService())
        self.start(new)
        self.advance(2.05)
        self.assertEqual((self.mailer.sent, self.scripts), ([], []))
        self.successResultOf(new.stopService())

    def test_checkerMails(self) -> None:
        from keepalive_tx.alert.messages import checkerMails

        self.assertEqual([checkerMails(k, True, True) for k in
                          ("TCP_CHECK", "HTTP_GET", "MISC_CHECK", "FILE_CHECK", "BFD_CHECK")],
                         [False, False, True, False, False])
        self.assertEqual([checkerMails(k, False, True) for k in
                          ("TCP_CHECK", "SSL_GET", "MISC_CHECK", "FILE_CHECK", "DNS_CHECK")],
                         [True, True, True, False, True])


class FactoryTests(SynchronousTestCase):
    def model(self, checker: str):
        return parse(
            "virtual_server 192.0.2.100 80 {\n protocol TCP\n lvs_method NAT\n lvs_sched wlc\n delay_loop 2\n"
            " real_server 192.0.2.11 8080 {\n" + checker + "\n }\n}\n"
        )

    def build(self, checker: str) -> BuiltChecker:
        model = self.model(checker)
        vs = model.virtualServers[0]
        rs = vs.realServers[0]
        return buildChecker(task.Clock(), rs.checkers[0], rs, vs, model)

    def test_tcp(self) -> None:
        """
        TCP_CHECK becomes a L{TcpChecker} with the effective connect
        options and timing, and the generic state.
        """
        built = self.build(
            "TCP_CHECK {\n connect_port 81\n connect_timeout 2\n bindto 192.0.2.1\n retry 3\n }"
        )
        self.assertIsInstance(built.checker, TcpChecker)
        self.assertEqual(built.checker.options, ConnectOptions("192.0.2.11", 81, "192.0.2.1", 0, 2.0))
        self.assertEqual((built.timing.delayLoop, built.timing.retry), (2.0, 3))
        self.assertIsInstance(built.state, CheckerState)

    def test_http(self) -> None:
        """
        HTTP_GET becomes an L{HttpChecker} with every URL (status codes,
        digest, virtualhost) and the HTTP state machine.
        """
        built = self.build(
            "HTTP_GET {\n url {\n path /a\n status_code 200-204 301\n }\n"
            " url {\n path /b\n digest 0123456789ABCDEF0123456789abcdef\n virtualhost www.example.com\n }\n"
            " http_protocol 1.1\n fast_recovery\n }"
        )
        c = built.checker
        self.assertIsInstance(c, HttpChecker)
        self.assertEqual(c.kind, "HTTP_GET")
        self.assertEqual([u.path for u in c.urls], ["/a", "/b"])
        self.assertIn(301, c.urls[0].statusCodes)
        self.assertNotIn(205, c.urls[0].statusCodes)
        self.assertEqual(c.urls[1].digest, "0123456789abcdef0123456789abcdef")
        self.assertEqual(c.urls[1].virtualhost, "www.example.com")
        self.assertEqual(c.protocol, "1.1")
        self.assertIsInstance(built.state, HttpCheckerState)
        self.assertEqual(built.state.urlCount, 2)
        self.assertTrue(built.state.fastRecovery)
        self.assertEqual(built.timing.delayBeforeRetry, 3.0)

    def test_ssl(self) -> None:
        """
        SSL_GET gets TLS options (SNI as configured).
        """
        built = self.build('SSL_GET {\n url { path / }\n enable_sni\n sni_name "lb.example.com"\n }')
        self.assertEqual(built.checker.kind, "SSL_GET")
        self.assertTrue(built.checker.tls.enableSni)
        self.assertEqual(built.checker.tls.sniName, "lb.example.com")

    def test_missingModule(self) -> None:
        """
        A registered checker whose module cannot be imported is
        unsupported, with the reason.
        """
        self.patch(factory, "_LAZY", {"TCP_CHECK": factory._fromConfig("keepalive_tx.check.nosuch", "X")})
        self.patch(factory, "_REGISTRY", {})
        with self.assertRaises(UnsupportedChecker) as e:
            self.build("TCP_CHECK { }")
        self.assertIn("TCP_CHECK is not available", str(e.exception))
        self.assertNotIn("TCP_CHECK", factory.registeredKinds())

    def test_lazyModules(self) -> None:
        """
        The separately written checkers are built through their
        C{fromConfig} when their modules are present.
        """
        kinds = factory.registeredKinds()
        self.assertTrue({"TCP_CHECK", "HTTP_GET", "SSL_GET"} <= kinds)
        for kind, text, cls in (
            ("SMTP_CHECK", "SMTP_CHECK {\n helo_name lb1.example.com\n }", "SmtpChecker"),
            ("DNS_CHECK", "DNS_CHECK {\n type A\n name example.com\n }", "DnsChecker"),
            ("UDP_CHECK", "UDP_CHECK { }", "UdpChecker"),
            ("MISC_CHECK", 'MISC_CHECK { misc_path "/bin/true" }', "MiscChecker"),
        ):
            if kind not in kinds:
                continue
            built = self.build(text)
            self.assertEqual(type(built.checker).__name__, cls)
            self.assertEqual(built.checker.kind, kind)


class KeepalivedServiceTests(SynchronousTestCase):
    def test_lvsChild(self) -> None:
        """
        A configuration with virtual servers gets an L{LvsService} child
        named C{checkers}, unless only VRRP is run.
        """
        model = parse(LVS_CONFIG % {"vsExtra": "", "rs11Extra": ""})
        root = KeepalivedService(model, task.Clock())
        self.assertIsInstance(root.getServiceNamed("checkers"), LvsService)
        self.assertIs(root.lvsService.alerts, root.alerts)
        vrrpOnly = KeepalivedService(model, task.Clock(), checkers=False)
        self.assertIsNone(vrrpOnly.lvsService)
        self.assertIsNone(KeepalivedService(parse("global_defs { router_id x }\n"), task.Clock()).lvsService)


class ReloadHandoverTests(LvsServiceHarness):
    """
    A reload replaces the checker service: the IPVS table is reconciled in
    place and real servers whose checks did not change keep their state.
    """

    def test_handover(self) -> None:
        old = self.service()
        self.start(old)
        self.checkers[("192.0.2.11", "TCP_CHECK")].ok = False
        self.advance(1.05)
        self.assertEqual(self.dests(), {RS12: 2})
        changed = (LVS_CONFIG % {"vsExtra": "", "rs11Extra": ""}).replace(
            "        weight 2\n", "        weight 3\n")
        model = parse(changed)
        old.handover()
        new = LvsService(model, self.clock, alerts=AlertDispatcher(self.mailer, "lb1"),
                         recordDir=self.recordDir, checkerBuilder=self.builder,
                         scriptRunner=lambda s: FakeScriptRunner(s, log=self.scripts, immediate=True),
                         random=lambda: 0.0, backendFactory=lambda: self.backend,
                         previous=old)
        del self.backend.calls[:]
        self.successResultOf(old.stopService())
        self.assertEqual(self.backend.calls[:1], [])  # the old one left the table alone
        self.start(new)
        # RS11 is still down (carried), RS12 changed weight in place
        self.assertEqual(self.dests(), {RS12: 3})
        self.assertNotIn("deleteService", [c[0] for c in self.backend.calls])
        self.assertEqual([c[0] for c in self.backend.calls if c[0] != "services"
                          and c[0] != "destinations"], ["editDest"])
        # the checks go on: RS11 recovers under the new service
        lines = self.advance(1.0)
        self.assertIn("Adding service [192.0.2.11]:tcp:80 to VS [192.0.2.100]:tcp:80", lines)
        self.successResultOf(new.stopService())
        self.assertEqual(self.backend.table, {})
