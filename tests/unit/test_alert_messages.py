"""
Tests for L{keepalive_tx.alert.messages}: keepalived's alert wording, headers and policy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes
from email.header import decode_header, make_header

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.alert import messages
from keepalive_tx.alert.messages import (
    AlertDispatcher,
    checkerBody,
    envelopeAddress,
    formatDate,
    formatMessage,
)
from tests.fakes.alert import FakeMailer

CEST = timezone(timedelta(hours=2))


class WordingTests(SynchronousTestCase):
    """
    Subjects and bodies are keepalived's, character for character.
    """

    def test_instanceStates(self) -> None:
        """
        Every VRRP instance state has keepalived's subject and body.
        """
        expected = {
            "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
            "BACKUP": (
                "Entering BACKUP state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
            "STOP": ("Stopping", "=> VRRP Instance stopping <="),
            "DELETED": ("Deleted", "=> VRRP Deleted at reload <="),
        }
        for state, (tail, body) in expected.items():
            self.assertEqual(
                messages.vrrpInstanceAlert("lb1", "VI_1", state),
                (f"[lb1] VRRP Instance VI_1 - {tail}", body),
            )
        self.assertIsNone(messages.vrrpInstanceAlert("lb1", "VI_1", "INIT"))

    def test_groupStates(self) -> None:
        """
        Sync-group mails use the group wording; DELETED has none.
        """
        self.assertEqual(
            messages.vrrpGroupAlert("lb1", "G1", "MASTER"),
            (
                "[lb1] VRRP Group G1 - Entering MASTER state",
                "=> All VRRP group instances are now in MASTER state <=",
            ),
        )
        self.assertEqual(
            messages.vrrpGroupAlert("lb1", "G1", "BACKUP")[1],
            "=> All VRRP group instances are now in BACKUP state <=",
        )
        self.assertEqual(
            messages.vrrpGroupAlert("lb1", "G1", "FAULT"),
            (
                "[lb1] VRRP Group G1 - Entering FAULT state",
                "=> All VRRP group instances are now in FAULT state <=",
            ),
        )
        self.assertEqual(
            messages.vrrpGroupAlert("lb1", "G1", "STOP"),
            ("[lb1] VRRP Group G1 - Stopping", "=> All VRRP group instances are now stopping <="),
        )
        self.assertIsNone(messages.vrrpGroupAlert("lb1", "G1", "DELETED"))

    def test_checkerBodies(self) -> None:
        """
        Each checker's success/failure wording.
        """
        cases = [
            (("TCP_CHECK", True), "=> TCP CHECK succeed on service <="),
            (("TCP_CHECK", False), "=> TCP CHECK failed on service <="),
            (("UDP_CHECK", False), "=> UDP CHECK failed on service <="),
            (("PING_CHECK", True), "=> ICMP CHECK succeed on service <="),
            (("DNS_CHECK", False), "=> DNS_CHECK: failed on service <="),
            (("HTTP_GET", True), "=> CHECK succeed on service <="),
            (("SSL_GET", False), "=> CHECK failed on service : HTTP/SSL request failed <="),
            (("MISC_CHECK", True), "=> MISC CHECK succeeded on service <="),
            (("MISC_CHECK", False), "=> MISC CHECK failed on service <="),
        ]
        for (kind, ok), body in cases:
            self.assertEqual(checkerBody(kind, ok), body)
        self.assertEqual(
            checkerBody("SMTP_CHECK", False, "connection error"),
            "=> CHECK failed on service : connection error <=",
        )
        self.assertEqual(checkerBody("smtp", True), "=> CHECK succeed on service <=")
        self.assertEqual(
            checkerBody("MISC_CHECK", False, timedOut=True), "=> MISC CHECK timed out on service <="
        )
        self.assertEqual(
            checkerBody("BFD_CHECK", False, bfdName="bfd1"),
            "=> BFD CHECK bfd1 failed on service <=",
        )

    def test_realServer(self) -> None:
        """
        The subject carries the real server's alive state, the body the checker's words.
        """
        self.assertEqual(
            messages.realServerAlert(
                "lb1", "[192.0.2.10]:tcp:80", "[192.0.2.1]:tcp:80", False, "=> X <="
            ),
            (
                "[lb1] Realserver [192.0.2.10]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - DOWN",
                "=> X <=",
            ),
        )
        self.assertEqual(
            messages.realServerRemovedAlert("lb1", "[a]:tcp:1", "FWM 3", shuttingDown=False),
            ("[lb1] Realserver [a]:tcp:1 of virtual server FWM 3 - DOWN", "=> Removing <="),
        )
        self.assertEqual(
            messages.realServerRemovedAlert("lb1", "[a]:tcp:1", "FWM 3", shuttingDown=True)[1],
            "=> Shutting down <=",
        )

    def test_quorum(self) -> None:
        """
        Quorum mails keep keepalived's C{Q+H=T <= L} layout in both directions.
        """
        vs = "[192.0.2.1]:tcp:80"
        self.assertEqual(
            messages.virtualServerQuorumAlert("lb1", vs, True, 3, 1, 4, 5),
            (f"[lb1] Virtualserver {vs} - UP", "=> Gained quorum 3+1=4 <= 5 <="),
        )
        self.assertEqual(
            messages.virtualServerQuorumAlert("lb1", vs, False, 3, 1, 2, 1),
            (f"[lb1] Virtualserver {vs} - DOWN", "=> Lost quorum 3+1=2 <= 1 <="),
        )
        self.assertEqual(
            messages.virtualServerQuorumAlert("lb1", vs, True, 1, 0, 1, 2, init=True)[1],
            "=> Starting with quorum up 1+0=1 <= 2 <=",
        )
        self.assertEqual(
            messages.virtualServerQuorumAlert("lb1", vs, False, 1, 0, 1, 0, init=True)[1],
            "=> Starting with quorum down 1+0=1 <= 0 <=",
        )
        self.assertEqual(
            messages.virtualServerQuorumAlert("lb1", vs, False, 1, 0, 1, 0, stopping=True),
            (f"[lb1] Virtualserver {vs} - DOWN", "=> Shutting down <="),
        )


class HeaderTests(SynchronousTestCase):
    """
    The message bytes keepalived sends after DATA.
    """

    def test_exactBytes(self) -> None:
        """
        Header order, C{To:} folding, blank line, body, trailing blank line.
        """
        now = datetime(2024, 3, 1, 9, 44, 8, tzinfo=CEST)
        data = formatMessage(
            "root@lb1",
            ["a@x", "Ops Team <b@y>"],
            "[lb1] VRRP Instance VI_1 - Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
            now,
        )
        self.assertEqual(
            data,
            b"Date: Fri, 01 Mar 2024 09:44:08 +0200\r\n"
            b"From: root@lb1\r\n"
            b"Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state\r\n"
            b"X-Mailer: Keepalived\r\n"
            b"To: a@x,\r\n Ops Team <b@y>\r\n"
            b"\r\n"
            b"=> VRRP Instance is now owning VRRP VIPs <=\r\n"
            b"\r\n",
        )
        parsed = message_from_bytes(data)
        self.assertEqual(
            [a.strip() for a in parsed["To"].replace("\r\n", "").split(",")],
            ["a@x", "Ops Team <b@y>"],
        )

    def test_singleRecipient(self) -> None:
        """
        One recipient: no comma, no folding.
        """
        data = formatMessage("f@h", ["a@x"], "s", "b", datetime(2024, 1, 7, tzinfo=UTC))
        self.assertIn(b"\r\nTo: a@x\r\n\r\nb\r\n\r\n", data)
        self.assertTrue(data.startswith(b"Date: Sun, 07 Jan 2024 00:00:00 +0000\r\n"))

    def test_noRecipients(self) -> None:
        """
        A message without recipients is refused.
        """
        self.assertRaises(ValueError, formatMessage, "f@h", [], "s", "b", datetime.now(CEST))

    def test_dateIsEnglishAndNeedsZone(self) -> None:
        """
        C{Date} uses English names and the numeric zone; a naive datetime is refused.
        """
        self.assertEqual(
            formatDate(datetime(2021, 12, 25, 23, 5, 1, tzinfo=timezone(timedelta(hours=-5)))),
            "Sat, 25 Dec 2021 23:05:01 -0500",
        )
        self.assertRaises(ValueError, formatDate, datetime(2021, 1, 1))

    def test_headerInjection(self) -> None:
        """
        CR/LF in a subject cannot start a new header.
        """
        data = formatMessage(
            "f@h", ["a@x"], "evil\r\nBcc: victim@z", "b", datetime(2024, 1, 1, tzinfo=CEST)
        )
        self.assertNotIn(b"\r\nBcc:", data)
        self.assertIn(b"Subject: evil Bcc: victim@z\r\n", data)

    def test_nonAscii(self) -> None:
        """
        A non-ASCII subject is RFC 2047 encoded; a non-ASCII body is UTF-8 with MIME headers.
        """
        data = formatMessage(
            "f@h", ["a@x"], "Übergang", "Zustand: größer", datetime(2024, 1, 1, tzinfo=CEST)
        )
        self.assertTrue(data.isascii() is False)
        parsed = message_from_bytes(data)
        self.assertEqual(str(make_header(decode_header(parsed["Subject"]))), "Übergang")
        self.assertEqual(parsed.get_content_charset(), "utf-8")
        self.assertEqual(parsed.get_payload(decode=True).decode("utf-8").strip(), "Zustand: größer")

    def test_envelopeAddress(self) -> None:
        """
        Display-name addresses give the angle-bracket part; plain ones stay.
        """
        self.assertEqual(envelopeAddress("a@x"), "a@x")
        self.assertEqual(envelopeAddress('"Ops, Team" <ops@x>'), "ops@x")
        self.assertEqual(envelopeAddress("Ops <a> <ops@x>"), "ops@x")
        self.assertEqual(envelopeAddress(" <ops@x> "), "ops@x")
        self.assertEqual(messages.defaultFromAddress("root", "lb1"), "root@lb1")


class PrecedenceTests(SynchronousTestCase):
    """
    C{smtp_alert} precedence.
    """

    def test_vrrp(self) -> None:
        """
        Own keyword, then smtp_alert_vrrp, then smtp_alert, then off.
        """
        self.assertFalse(messages.vrrpSmtpAlert(None))
        self.assertTrue(messages.vrrpSmtpAlert(None, None, True))
        self.assertFalse(messages.vrrpSmtpAlert(None, False, True))
        self.assertTrue(messages.vrrpSmtpAlert(True, False, False))
        self.assertFalse(messages.vrrpSmtpAlert(False, True, True))

    def test_checker(self) -> None:
        """
        Virtual servers default off, real servers default on unless a global is set.
        """
        self.assertFalse(messages.virtualServerSmtpAlert(None))
        self.assertTrue(messages.virtualServerSmtpAlert(None, True, False))
        self.assertTrue(messages.virtualServerSmtpAlert(None, None, True))
        self.assertTrue(messages.realServerSmtpAlert(None))
        self.assertFalse(messages.realServerSmtpAlert(None, None, False))
        self.assertFalse(messages.realServerSmtpAlert(None, False, True))
        self.assertTrue(messages.realServerSmtpAlert(True, False, False))


class DispatcherTests(SynchronousTestCase):
    """
    L{AlertDispatcher} applies the policy and hands mails to the mailer.
    """

    def setUp(self) -> None:
        self.mailer = FakeMailer()

    def test_instanceOnlyOnChange(self) -> None:
        """
        A state is mailed once; a repeat is not; a new state is.
        """
        d = AlertDispatcher(self.mailer, "lb1", smtpAlert=True)
        self.assertTrue(d.vrrpTransition("VI_1", "BACKUP"))
        self.assertFalse(d.vrrpTransition("VI_1", "BACKUP"))
        self.assertTrue(d.vrrpTransition("VI_1", "MASTER"))
        self.assertEqual(
            [s for s, _ in self.mailer.sent],
            [
                "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
                "[lb1] VRRP Instance VI_1 - Entering MASTER state",
            ],
        )

    def test_instancePrecedence(self) -> None:
        """
        Off by default; the instance keyword beats the globals.
        """
        d = AlertDispatcher(self.mailer, "lb1")
        self.assertFalse(d.vrrpTransition("VI_1", "MASTER"))
        self.assertTrue(d.vrrpTransition("VI_1", "MASTER", smtpAlert=True))
        d = AlertDispatcher(self.mailer, "lb1", smtpAlert=True, smtpAlertVrrp=False)
        self.assertFalse(d.vrrpTransition("VI_2", "MASTER"))
        self.assertTrue(d.vrrpTransition("VI_2", "MASTER", smtpAlert=True))
        self.assertEqual(len(self.mailer.sent), 2)

    def test_noEmailFaults(self) -> None:
        """
        With no_email_faults FAULT is not mailed, and does not count as mailed.
        """
        d = AlertDispatcher(self.mailer, "lb1", smtpAlert=True, noEmailFaults=True)
        self.assertTrue(d.vrrpTransition("VI_1", "MASTER"))
        self.assertFalse(d.vrrpTransition("VI_1", "FAULT"))
        self.assertFalse(d.groupTransition("G", "FAULT"))
        # MASTER -> FAULT (suppressed) -> MASTER: last mailed is still MASTER.
        self.assertFalse(d.vrrpTransition("VI_1", "MASTER"))
        self.assertTrue(d.vrrpTransition("VI_1", "BACKUP"))
        self.assertEqual(len(self.mailer.sent), 2)

    def test_groups(self) -> None:
        """
        Group transitions use group wording and their own last-mailed state.
        """
        d = AlertDispatcher(self.mailer, "lb1", smtpAlertVrrp=True)
        self.assertTrue(d.groupTransition("G1", "MASTER"))
        self.assertFalse(d.groupTransition("G1", "MASTER"))
        self.assertTrue(d.vrrpTransition("G1", "MASTER"))
        self.assertFalse(d.groupTransition("G1", "DELETED"))
        self.assertFalse(d.groupTransition("G2", "MASTER", smtpAlert=False))
        self.assertEqual(self.mailer.sent[0][0], "[lb1] VRRP Group G1 - Entering MASTER state")

    def test_deletedAndForget(self) -> None:
        """
        After DELETED (or forget) the same state is mailed again.
        """
        d = AlertDispatcher(self.mailer, "lb1", smtpAlert=True)
        d.vrrpTransition("VI_1", "MASTER")
        self.assertTrue(d.vrrpTransition("VI_1", "DELETED"))
        self.assertTrue(d.vrrpTransition("VI_1", "MASTER"))
        d.forget("VI_1")
        self.assertTrue(d.vrrpTransition("VI_1", "MASTER"))
        self.assertEqual(
            self.mailer.sent[1],
            ("[lb1] VRRP Instance VI_1 - Deleted", "=> VRRP Deleted at reload <="),
        )

    def test_realServer(self) -> None:
        """
        Real servers mail by default; no_checker_emails limits mails to alive changes.
        """
        d = AlertDispatcher(self.mailer, "lb1")
        body = checkerBody("TCP_CHECK", False)
        self.assertTrue(
            d.realServerChanged("[r]:tcp:80", "[v]:tcp:80", False, body, aliveChanged=False)
        )
        self.assertFalse(
            d.realServerChanged("[r]:tcp:80", "[v]:tcp:80", False, body, smtpAlert=False)
        )
        d.noCheckerEmails = True
        self.assertFalse(
            d.realServerChanged("[r]:tcp:80", "[v]:tcp:80", False, body, aliveChanged=False)
        )
        self.assertTrue(
            d.realServerChanged("[r]:tcp:80", "[v]:tcp:80", True, body, aliveChanged=True)
        )
        self.assertTrue(d.realServerRemoved("[r]:tcp:80", "[v]:tcp:80", shuttingDown=True))
        d2 = AlertDispatcher(self.mailer, "lb1", smtpAlertChecker=False)
        self.assertFalse(d2.realServerChanged("[r]:tcp:80", "[v]:tcp:80", True, body))
        self.assertFalse(d2.realServerRemoved("[r]:tcp:80", "[v]:tcp:80", shuttingDown=False))
        self.assertEqual(
            self.mailer.sent[0],
            (
                "[lb1] Realserver [r]:tcp:80 of virtual server [v]:tcp:80 - DOWN",
                "=> TCP CHECK failed on service <=",
            ),
        )
        self.assertEqual(len(self.mailer.sent), 3)

    def test_quorum(self) -> None:
        """
        Quorum mails are off unless enabled for checkers or on the virtual server.
        """
        d = AlertDispatcher(self.mailer, "lb1")
        self.assertFalse(d.quorumChanged("[v]:tcp:80", False, 2, 0, 2, 1))
        self.assertTrue(d.quorumChanged("[v]:tcp:80", False, 2, 0, 2, 1, smtpAlert=True))
        d.smtpAlertChecker = True
        self.assertTrue(d.quorumChanged("[v]:tcp:80", True, 2, 0, 2, 2, init=True))
        self.assertEqual(
            self.mailer.sent,
            [
                ("[lb1] Virtualserver [v]:tcp:80 - DOWN", "=> Lost quorum 2+0=2 <= 1 <="),
                ("[lb1] Virtualserver [v]:tcp:80 - UP", "=> Starting with quorum up 2+0=2 <= 2 <="),
            ],
        )

    def test_noMailer(self) -> None:
        """
        Without a mailer (no smtp_server / notification_email) nothing is sent.
        """
        d = AlertDispatcher(None, "lb1", smtpAlert=True)
        self.assertFalse(d.vrrpTransition("VI_1", "MASTER"))
        self.assertFalse(d.realServerChanged("r", "v", True, "b"))
