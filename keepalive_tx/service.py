"""
L{KeepalivedService}: the embeddable root service.

It is a plain L{IService}: it installs no signal handlers, starts no global
logging and daemonizes nothing; L{keepalive_tx.tap.makeService} does those.
Subsystems (VRRP instances, checkers, alerts) are children added from the
configuration model.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.logger import Logger


class KeepalivedService(MultiService):
    """
    The root of a keepalive_tx process, built from a configuration model.

    @ivar model: the immutable configuration model in force.
    @ivar reactor: the reactor every child uses.
    """

    log = Logger()

    def __init__(
        self,
        model: Any,
        reactor: Any = None,
        *,
        vrrp: bool = True,
        checkers: bool = True,
        logDetail: bool = False,
        vrrpPlatform: Any = None,
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.model = model
        self.reactor = reactor
        self.runVrrp = vrrp
        self.runCheckers = checkers
        self.logDetail = logDetail
        self.setName("keepalived")
        if vrrp and getattr(model, "vrrpInstances", ()):
            from keepalive_tx.vrrp.service import VrrpService

            self.vrrpService = VrrpService(model, reactor, platform=vrrpPlatform)
            self.vrrpService.setServiceParent(self)
        else:
            self.vrrpService = None

    def startService(self) -> None:
        self.log.info("Starting keepalive_tx")
        super().startService()

    def stopService(self):
        self.log.info("Stopping keepalive_tx")
        return super().stopService()
