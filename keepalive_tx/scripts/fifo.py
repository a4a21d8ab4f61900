# -*- test-case-name: tests.unit.test_vrrp_notify,tests.unit.test_lvs_fifo -*-
"""
keepalived's notify FIFOs (C{notify_fifo}, C{vrrp_notify_fifo},
C{lvs_notify_fifo}), written by VRRP and by LVS alike.

A FIFO (L{NotifyFifo}) is created with C{mkfifo} (mode 0600, chowned to the
configured user) when absent, opened C{O_RDWR|O_NONBLOCK} so that opening
and writing never block even without a reader, and a line that does not fit
is lost.  A FIFO we created is removed again on close.  What is written
(the VRRP and LVS lines) is the writers' business.
"""

from __future__ import annotations

import errno
import os
import stat

from twisted.logger import Logger

from keepalive_tx.scripts.runner import resolveUser

__all__ = ["NotifyFifo"]

log = Logger()


class NotifyFifo:
    """
    One notify FIFO, written without ever blocking.

    @ivar path: the FIFO path.
    @ivar fd: the open descriptor, or C{None}.
    @ivar lost: lines that could not be written (FIFO full, no room).
    @ivar log: where problems are logged (the writer's logger, so that
        they carry its syslog ident).
    """

    def __init__(self, path: str, user: str | None = None, log: Logger = log) -> None:
        self.path = path
        self.user = user
        self.log = log
        self.fd: int | None = None
        self.created = False
        self.lost = 0
        self.written = 0

    def open(self) -> bool:
        """
        Create the FIFO if absent and open it.

        @return: whether it is open.
        """
        if self.fd is not None:
            return True
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            try:
                os.mkfifo(self.path, 0o600)
            except OSError as e:
                self.log.error("Unable to create notify fifo {path}: {e}", path=self.path, e=e)
                return False
            self.created = True
            self._chown()
        except OSError as e:
            self.log.error("Unable to stat notify fifo {path}: {e}", path=self.path, e=e)
            return False
        else:
            if not stat.S_ISFIFO(st.st_mode):
                self.log.error("Notify fifo {path} exists and is not a fifo", path=self.path)
                return False
        try:
            self.fd = os.open(
                self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as e:
            self.log.error("Unable to open notify fifo {path}: {e}", path=self.path, e=e)
            return False
        return True

    def _chown(self) -> None:
        if not self.user:
            return
        try:
            uid, gid = resolveUser(self.user)
            os.chown(self.path, -1 if uid is None else uid, -1 if gid is None else gid)
        except (ValueError, OSError) as e:
            self.log.warn("Unable to set owner of notify fifo {path}: {e}", path=self.path, e=e)

    def write(self, line: bytes) -> bool:
        """
        Write one whole line, or nothing when the FIFO has no room.

        @return: whether the line was written.
        """
        if self.fd is None:
            return False
        try:
            n = os.write(self.fd, line)
        except BlockingIOError:
            self.lost += 1
            return False
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EPIPE):
                self.log.warn("notify fifo {path}: {e}", path=self.path, e=e)
            self.lost += 1
            return False
        self.written += 1
        return n == len(line)

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
        if self.created:
            self.created = False
            try:
                os.unlink(self.path)
            except OSError:
                pass
