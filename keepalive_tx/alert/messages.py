# -*- test-case-name: tests.unit.test_alert_messages -*-
"""
Wording, headers and policy of keepalived's SMTP alerts (pure: no reactor, no I/O).

Everything here reproduces what keepalived 2.x puts in its alert mails
(keepalived's C{smtp.c} and the alerts its VRRP and checker processes send):

  - subjects such as C{[lb1] VRRP Instance VI_1 - Entering MASTER state},
  - one-line bodies such as C{=> VRRP Instance is now owning VRRP VIPs <=},
  - the header block C{Date}, C{From}, C{Subject}, C{X-Mailer: Keepalived},
    C{To} (recipients separated by C{","} CRLF C{" "}), a blank line, the body
    and one more blank line,
  - the precedence of the C{smtp_alert} switches (global C{smtp_alert},
    C{smtp_alert_vrrp}, C{smtp_alert_checker} and the per-object keyword) and
    C{no_email_faults} / C{no_checker_emails}.

L{AlertDispatcher} is the hook the VRRP and checker services call; it applies
those rules and hands C{(subject, body)} to a mailer (normally
L{keepalive_tx.alert.mail.Mailer}).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.header import Header
from typing import Protocol

__all__ = [
    "VRRP_STATES",
    "AlertDispatcher",
    "IAlertMailer",
    "checkerBody",
    "defaultFromAddress",
    "envelopeAddress",
    "formatDate",
    "formatMessage",
    "realServerAlert",
    "realServerRemovedAlert",
    "realServerSmtpAlert",
    "resolveSmtpAlert",
    "virtualServerQuorumAlert",
    "virtualServerSmtpAlert",
    "vrrpGroupAlert",
    "vrrpInstanceAlert",
    "vrrpSmtpAlert",
]

#: The states a VRRP instance reports to notifications.
VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED")

_INSTANCE_WORDING = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
    "DELETED": ("Deleted", "=> VRRP Deleted at reload <="),
}

_GROUP_WORDING = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _oneLine(text: str) -> str:
    """
    Fold any CR/LF out of C{text} so it cannot start a new header line.
    """
    return " ".join(text.splitlines()) if ("\r" in text or "\n" in text) else text


# --- subjects and bodies --------------------------------------------------------------------


def vrrpInstanceAlert(routerId: str, instanceName: str, state: str) -> tuple[str, str] | None:
    """
    Subject and body of the mail for a VRRP instance entering C{state}.

    @param routerId: C{router_id} from C{global_defs}.
    @param instanceName: the C{vrrp_instance} name.
    @param state: one of L{VRRP_STATES}.
    @return: C{(subject, body)}, or L{None} for a state keepalived does not mail.
    """
    wording = _INSTANCE_WORDING.get(state)
    if wording is None:
        return None
    return f"[{routerId}] VRRP Instance {instanceName} - {wording[0]}", wording[1]


def vrrpGroupAlert(routerId: str, groupName: str, state: str) -> tuple[str, str] | None:
    """
    Subject and body of the mail for a C{vrrp_sync_group} entering C{state}.

    @return: C{(subject, body)}, or L{None} for a state without group wording
        (C{DELETED} and anything unknown).
    """
    wording = _GROUP_WORDING.get(state)
    if wording is None:
        return None
    return f"[{routerId}] VRRP Group {groupName} - {wording[0]}", wording[1]


def checkerMails(checker: str, up: bool, wasUp: bool) -> bool:
    """
    Whether keepalived's checker C{checker} mails a result: its first one
    (C{up == wasUp} then: a server is assumed up at start, down with
    C{alpha}) or a change of its state.

      - most checkers (TCP, HTTP/SSL, SMTP, DNS, UDP, PING, BFD) mail only
        a change: nothing for a server found healthy at start (nor, with
        C{alpha}, for one found failing);
      - MISC_CHECK mails its first result too, even a success at start;
      - FILE_CHECK never mails.

    (C{no_checker_emails} narrows this further, see
    L{AlertDispatcher.realServerChanged}.)
    """
    kind = checker.upper()
    if kind == "FILE_CHECK":
        return False
    if kind == "MISC_CHECK":
        return True
    return up != wasUp


def checkerBody(
    checker: str,
    success: bool,
    reason: str | None = None,
    *,
    timedOut: bool = False,
    bfdName: str = "",
) -> str:
    """
    The body keepalived's checkers put in a real-server mail.

    @param checker: C{TCP_CHECK}, C{UDP_CHECK}, C{PING_CHECK}, C{DNS_CHECK},
        C{HTTP_GET}, C{SSL_GET}, C{SMTP_CHECK}, C{MISC_CHECK}, C{BFD_CHECK}
        (the C{_CHECK}/C{_GET} suffix and case are optional).  Anything else
        gets the generic C{=> CHECK succeed|failed on service <=} wording.
    @param success: whether the check succeeded.
    @param reason: failure reason for SMTP_CHECK (C{=> CHECK failed on
        service : <reason> <=}).
    @param timedOut: MISC_CHECK only: the script timed out.
    @param bfdName: BFD_CHECK only: the C{bfd_instance} name.
    """
    kind = checker.upper()
    for suffix in ("_CHECK", "_GET"):
        if kind.endswith(suffix):
            kind = kind[: -len(suffix)]
    word = "succeed" if success else "failed"
    if kind in ("TCP", "UDP"):
        return f"=> {kind} CHECK {word} on service <="
    if kind in ("PING", "ICMP"):
        return f"=> ICMP CHECK {word} on service <="
    if kind == "DNS":
        return f"=> DNS_CHECK: {word} on service <="
    if kind in ("HTTP", "SSL"):
        if success:
            return "=> CHECK succeed on service <="
        return "=> CHECK failed on service : HTTP/SSL request failed <="
    if kind == "SMTP":
        if success:
            return "=> CHECK succeed on service <="
        return f"=> CHECK failed on service : {_oneLine(reason or 'unknown error')} <="
    if kind == "MISC":
        verb = "succeeded" if success else ("timed out" if timedOut else "failed")
        return f"=> MISC CHECK {verb} on service <="
    if kind == "BFD":
        verb = "succeeded" if success else "failed"
        return f"=> BFD CHECK {bfdName} {verb} on service <="
    return f"=> CHECK {word} on service <="


def realServerAlert(routerId: str, rs: str, vs: str, alive: bool, body: str) -> tuple[str, str]:
    """
    Subject and body of a real-server mail sent by a checker.

    @param rs: the real server as keepalived formats it, C{[ip]:proto:port}.
    @param vs: the virtual server, C{[ip]:proto:port}, C{FWM n} or C{[group]:port}.
    @param alive: the real server's alive state I{after} the change
        (the subject says C{UP} or C{DOWN} from this, not from the checker).
    @param body: the checker's wording, see L{checkerBody}.
    """
    state = "UP" if alive else "DOWN"
    return f"[{routerId}] Realserver {rs} of virtual server {vs} - {state}", body


def realServerRemovedAlert(routerId: str, rs: str, vs: str, shuttingDown: bool) -> tuple[str, str]:
    """
    Subject and body when a real server is removed by a reload or at shutdown.
    """
    body = "=> Shutting down <=" if shuttingDown else "=> Removing <="
    return f"[{routerId}] Realserver {rs} of virtual server {vs} - DOWN", body


def virtualServerQuorumAlert(
    routerId: str,
    vs: str,
    up: bool,
    quorum: int,
    hysteresis: int,
    threshold: int,
    liveWeight: int,
    *,
    init: bool = False,
    stopping: bool = False,
) -> tuple[str, str]:
    """
    Subject and body of a virtual-server quorum mail.

    keepalived prints C{Q+H=T <= L} in both directions (the threshold passed
    when quorum is lost is C{quorum - hysteresis}); that layout is kept.

    @param up: quorum state after the change.
    @param threshold: the threshold that was crossed.
    @param liveWeight: the sum of the live real servers' weights.
    @param init: the state is the initial one (C{Starting with quorum ...}).
    @param stopping: the daemon is shutting down (C{=> Shutting down <=}).
    """
    subject = f"[{routerId}] Virtualserver {vs} - {'UP' if up else 'DOWN'}"
    if stopping:
        return subject, "=> Shutting down <="
    if up:
        words = "Starting with quorum up" if init else "Gained quorum"
    else:
        words = "Starting with quorum down" if init else "Lost quorum"
    return subject, f"=> {words} {quorum}+{hysteresis}={threshold} <= {liveWeight} <="


# --- message construction -------------------------------------------------------------------


def defaultFromAddress(userName: str, hostName: str) -> str:
    """
    keepalived's default C{notification_email_from}: C{<user>@<host>}
    (the user is the one running the daemon; see C{docs/keepalived-compat.md},
"Quirks of keepalived's code kept on purpose").
    """
    return f"{userName}@{hostName}"


def envelopeAddress(address: str) -> str:
    """
    The address to use in C{MAIL FROM}/C{RCPT TO}.

    Like keepalived: when the configured address ends with C{>} and contains
    C{<} (display-name form, C{"Ops Team <ops@example.com>"}), the part between
    the last C{<} and the final C{>} is used; otherwise the address as is.
    """
    address = address.strip()
    if address.endswith(">") and "<" in address:
        return address[address.rindex("<") + 1 : -1].strip()
    return address


def formatDate(now: datetime) -> str:
    """
    C{strftime("%a, %d %b %Y %H:%M:%S %z")} of an aware C{now}, in English
    whatever the process locale.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("formatDate needs an aware datetime")
    return (
        f"{_DAYS[now.weekday()]}, {now.day:02d} {_MONTHS[now.month - 1]} {now.year:04d} "
        f"{now.hour:02d}:{now.minute:02d}:{now.second:02d} {now.strftime('%z')}"
    )


def _headerValue(text: str) -> str:
    text = _oneLine(text)
    if text.isascii():
        return text
    return Header(text, "utf-8").encode()


def formatMessage(
    fromAddress: str,
    recipients: Sequence[str],
    subject: str,
    body: str,
    now: datetime,
) -> bytes:
    """
    The complete message (RFC 5322, CRLF line ends, before SMTP dot-stuffing)
    keepalived sends after C{DATA}.

    Headers in keepalived's order: C{Date}, C{From}, C{Subject},
    C{X-Mailer: Keepalived}, C{To} with the recipients exactly as configured
    (display names kept) separated by C{","} CRLF C{" "}; then a blank line,
    the body and one more blank line.  Non-ASCII subjects are RFC 2047
    encoded and a non-ASCII body is sent as UTF-8 with MIME headers; CR/LF
    inside the subject or addresses are folded to spaces.

    @param now: aware datetime used for the C{Date} header.
    @raise ValueError: when C{recipients} is empty.
    """
    if not recipients:
        raise ValueError("an alert needs at least one recipient")
    to = ",\r\n ".join(_headerValue(r) for r in recipients)
    lines = [
        f"Date: {formatDate(now)}",
        f"From: {_headerValue(fromAddress)}",
        f"Subject: {_headerValue(subject)}",
        "X-Mailer: Keepalived",
        f"To: {to}",
    ]
    body = "\r\n".join(body.splitlines())
    if not body.isascii():
        lines += [
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
    text = "\r\n".join(lines) + "\r\n\r\n" + body + "\r\n\r\n"
    return text.encode("utf-8")


# --- smtp_alert precedence ------------------------------------------------------------------


def resolveSmtpAlert(*settings: bool | None, default: bool = False) -> bool:
    """
    The first setting that is not L{None}, else C{default}.

    Settings are given most specific first, e.g. C{(instance smtp_alert,
    global smtp_alert_vrrp, global smtp_alert)}.
    """
    for value in settings:
        if value is not None:
            return bool(value)
    return default


def vrrpSmtpAlert(
    own: bool | None, globalVrrp: bool | None = None, globalAll: bool | None = None
) -> bool:
    """
    Effective C{smtp_alert} of a C{vrrp_instance} or C{vrrp_sync_group}:
    its own keyword, else C{smtp_alert_vrrp}, else C{smtp_alert}, else off.
    """
    return resolveSmtpAlert(own, globalVrrp, globalAll, default=False)


def virtualServerSmtpAlert(
    own: bool | None, globalChecker: bool | None = None, globalAll: bool | None = None
) -> bool:
    """
    Effective C{smtp_alert} of a C{virtual_server} (quorum mails): its own
    keyword, else C{smtp_alert_checker}, else C{smtp_alert}, else off.
    """
    return resolveSmtpAlert(own, globalChecker, globalAll, default=False)


def realServerSmtpAlert(
    own: bool | None, globalChecker: bool | None = None, globalAll: bool | None = None
) -> bool:
    """
    Effective C{smtp_alert} of a C{real_server}: its own keyword, else
    C{smtp_alert_checker}, else C{smtp_alert}, else B{on} (keepalived keeps
    this inconsistent default for backwards compatibility; see
C{docs/keepalived-compat.md}, "Quirks of keepalived's code kept on purpose").
    """
    return resolveSmtpAlert(own, globalChecker, globalAll, default=True)


# --- dispatcher ------------------------------------------------------------------------------


class IAlertMailer(Protocol):
    """
    What L{AlertDispatcher} needs from a mailer.
    """

    def send(self, subject: str, body: str) -> None: ...


class AlertDispatcher:
    """
    Decides which events become mails and words them (keepalived's
    C{vrrp_smtp_notifier}, C{vrrp_sync_smtp_notifier} and the checkers'
    C{smtp_alert} calls).

    It keeps, per VRRP instance and sync group, the last state it mailed, so
    a state is mailed only when it differs from the last one mailed (a
    suppressed FAULT does not count as mailed).  Callers pass the per-object
    C{smtp_alert} keyword (L{None} when absent); the globals given here fill in.

    @ivar mailer: the mailer, or L{None} when no mail can be sent
        (C{smtp_server} or C{notification_email} not configured); then every
        method returns C{False}.
    """

    def __init__(
        self,
        mailer: IAlertMailer | None,
        routerId: str,
        *,
        smtpAlert: bool | None = None,
        smtpAlertVrrp: bool | None = None,
        smtpAlertChecker: bool | None = None,
        noEmailFaults: bool = False,
        noCheckerEmails: bool = False,
    ) -> None:
        self.mailer = mailer
        self.routerId = routerId
        self.smtpAlert = smtpAlert
        self.smtpAlertVrrp = smtpAlertVrrp
        self.smtpAlertChecker = smtpAlertChecker
        self.noEmailFaults = noEmailFaults
        self.noCheckerEmails = noCheckerEmails
        self._lastInstanceState: dict[str, str] = {}
        self._lastGroupState: dict[str, str] = {}

    def _send(self, message: tuple[str, str] | None) -> bool:
        if message is None or self.mailer is None:
            return False
        self.mailer.send(*message)
        return True

    def _vrrpAllowed(self, smtpAlert: bool | None, state: str) -> bool:
        if not vrrpSmtpAlert(smtpAlert, self.smtpAlertVrrp, self.smtpAlert):
            return False
        return not (self.noEmailFaults and state == "FAULT")

    def vrrpTransition(
        self, instanceName: str, newState: str, smtpAlert: bool | None = None
    ) -> bool:
        """
        A VRRP instance entered C{newState} (one of L{VRRP_STATES}).

        @param smtpAlert: the instance's own C{smtp_alert} keyword.
        @return: whether a mail was handed to the mailer.
        """
        if not self._vrrpAllowed(smtpAlert, newState):
            return False
        if self._lastInstanceState.get(instanceName) == newState:
            return False
        message = vrrpInstanceAlert(self.routerId, instanceName, newState)
        if message is None:
            return False
        self._lastInstanceState[instanceName] = newState
        if newState == "DELETED":
            # A later instance of the same name starts afresh.
            del self._lastInstanceState[instanceName]
        return self._send(message)

    def groupTransition(self, groupName: str, newState: str, smtpAlert: bool | None = None) -> bool:
        """
        A C{vrrp_sync_group} entered C{newState}.

        @param smtpAlert: the group's own C{smtp_alert} keyword.
        @return: whether a mail was handed to the mailer.
        """
        if not self._vrrpAllowed(smtpAlert, newState):
            return False
        if self._lastGroupState.get(groupName) == newState:
            return False
        message = vrrpGroupAlert(self.routerId, groupName, newState)
        if message is None:
            return False
        self._lastGroupState[groupName] = newState
        return self._send(message)

    def forget(self, name: str) -> None:
        """
        Drop the remembered last-mailed state of an instance or group
        (it was removed by a reload).
        """
        self._lastInstanceState.pop(name, None)
        self._lastGroupState.pop(name, None)

    def realServerChanged(
        self,
        rs: str,
        vs: str,
        alive: bool,
        body: str,
        *,
        aliveChanged: bool = True,
        smtpAlert: bool | None = None,
    ) -> bool:
        """
        A checker of real server C{rs} changed state.

        Call it when the I{checker's} state changed; with C{no_checker_emails}
        the mail is only sent when the real server's alive state changed too.

        @param alive: the real server's alive state after the change.
        @param body: the checker's wording (L{checkerBody}).
        @param aliveChanged: whether the real server's alive state changed.
        @param smtpAlert: the real server's own C{smtp_alert} keyword.
        @return: whether a mail was handed to the mailer.
        """
        if not realServerSmtpAlert(smtpAlert, self.smtpAlertChecker, self.smtpAlert):
            return False
        if self.noCheckerEmails and not aliveChanged:
            return False
        return self._send(realServerAlert(self.routerId, rs, vs, alive, body))

    def realServerRemoved(
        self, rs: str, vs: str, *, shuttingDown: bool, smtpAlert: bool | None = None
    ) -> bool:
        """
        A live real server was removed by a reload (C{=> Removing <=}) or at
        shutdown (C{=> Shutting down <=}).
        """
        if not realServerSmtpAlert(smtpAlert, self.smtpAlertChecker, self.smtpAlert):
            return False
        return self._send(realServerRemovedAlert(self.routerId, rs, vs, shuttingDown))

    def quorumChanged(
        self,
        vs: str,
        up: bool,
        quorum: int,
        hysteresis: int,
        threshold: int,
        liveWeight: int,
        *,
        init: bool = False,
        stopping: bool = False,
        smtpAlert: bool | None = None,
    ) -> bool:
        """
        A virtual server gained or lost quorum (or starts, or stops with
        C{omega}); see L{virtualServerQuorumAlert} for the parameters.

        @param smtpAlert: the virtual server's own C{smtp_alert} keyword.
        """
        if not virtualServerSmtpAlert(smtpAlert, self.smtpAlertChecker, self.smtpAlert):
            return False
        return self._send(
            virtualServerQuorumAlert(
                self.routerId,
                vs,
                up,
                quorum,
                hysteresis,
                threshold,
                liveWeight,
                init=init,
                stopping=stopping,
            )
        )
