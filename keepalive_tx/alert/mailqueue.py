# -*- test-case-name: tests.unit.test_alert_mail -*-
"""
Which alert mail to try next: the queue policy of
L{keepalive_tx.alert.mail.Mailer}, pure (times are passed in, nothing is
sent from here).

keepalived sends each alert on a connection of its own, once: a mail that
fails is lost, and never delays another.  We keep and retry failed mails,
but keep that independence:

  - every mail has its own retry schedule (C{retryInitial}, doubling per
    failed attempt up to C{retryMax}, until it is older than
    C{retryWindow}); one that keeps failing never holds back another;
  - first attempts and retries go on separate connections (two "lanes"):
    a new alert is tried at once, even while retries are under way, and
    a slow relay (connect timeouts) holds each lane for one attempt only;
  - first attempts go in the order of the events while the relay works,
    and B{newest first} while it fails (the latest alert says what the
    state is now); retries go in the order they fall due;
  - a delivery that succeeds shows the relay is back: every waiting mail
    is due at once;
  - the queue is bounded (C{limit} waiting mails, those in delivery not
    counted): when full, the B{oldest} waiting mail is dropped, logged and
    counted -- the most likely to be stale, and the newest ones describe
    the current state.
"""

from __future__ import annotations

from keepalive_tx.alert.smtpattempt import Mail

__all__ = ["MailQueue"]


class MailQueue:
    """
    The mails waiting for an attempt (those in delivery are the caller's).

    @ivar relayFailing: the last attempt that ended failed (for another
        reason than the relay refusing that mail).
    """

    def __init__(self, limit: int, retryInitial: float, retryMax: float,
                 retryWindow: float) -> None:
        self.limit = max(1, limit)
        self.retryInitial = retryInitial
        self.retryMax = max(retryMax, retryInitial)
        self.retryWindow = retryWindow
        self.relayFailing = False
        self._waiting: list[Mail] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def add(self, mail: Mail) -> Mail | None:
        """
        Queue a new mail (due at once).

        @return: the mail dropped to make room, if the queue was full.
        """
        dropped = None
        if len(self._waiting) >= self.limit:
            dropped = min(self._waiting, key=lambda m: m.queuedAt)
            self._waiting.remove(dropped)
        mail.dueAt = mail.queuedAt
        self._waiting.append(mail)
        return dropped

    def nextFirst(self) -> Mail | None:
        """
        Take the next mail never tried: the oldest, or the newest while the
        relay fails.
        """
        fresh = [m for m in self._waiting if m.attempts == 0]
        if not fresh:
            return None
        mail = fresh[-1] if self.relayFailing else fresh[0]
        self._waiting.remove(mail)
        return mail

    def nextRetry(self, now: float) -> Mail | None:
        """
        Take the retry that fell due first (the oldest among equals), if one
        is due at C{now}.
        """
        due = [m for m in self._waiting if m.attempts and m.dueAt <= now]
        if not due:
            return None
        mail = min(due, key=lambda m: (m.dueAt, m.queuedAt))
        self._waiting.remove(mail)
        return mail

    def nextAny(self) -> Mail | None:
        """
        Take the oldest waiting mail, due or not (when stopping: one last
        attempt each).
        """
        if not self._waiting:
            return None
        mail = min(self._waiting, key=lambda m: m.queuedAt)
        self._waiting.remove(mail)
        return mail

    def nextDue(self) -> float | None:
        """
        When the next retry falls due (C{None}: no retry waiting).
        """
        return min((m.dueAt for m in self._waiting if m.attempts), default=None)

    def delivered(self, now: float) -> None:
        """
        A mail went through: the relay works, every waiting mail is due.
        """
        self.relayFailing = False
        for mail in self._waiting:
            mail.dueAt = min(mail.dueAt, now)

    def failed(self, mail: Mail, now: float, relayFault: bool = True) -> float | None:
        """
        An attempt at C{mail} failed and may be retried: queue it again,
        due after its backoff.

        @param relayFault: the relay (or the way to it) failed, rather than
            refusing this one mail.
        @return: the delay before the retry, or C{None} when the mail is
            past its retry window (it is not queued again).
        """
        if relayFault:
            self.relayFailing = True
        delay = min(self.retryMax, self.retryInitial * 2 ** (max(1, mail.attempts) - 1))
        if now + delay - mail.queuedAt > self.retryWindow:
            return None
        mail.dueAt = now + delay
        self._waiting.append(mail)
        return delay

    def expire(self, now: float) -> list[Mail]:
        """
        Remove and return the mails older than the retry window.
        """
        old = [m for m in self._waiting if now - m.queuedAt > self.retryWindow]
        for mail in old:
            self._waiting.remove(mail)
        return old

    def clear(self) -> list[Mail]:
        """
        Remove and return every waiting mail.
        """
        mails, self._waiting = self._waiting, []
        return mails
