# -*- test-case-name: tests.unit.test_vrrp_instance -*-
"""
One running C{vrrp_instance}: the state machine wired to the codec, the raw
socket, the virtual addresses and the GARP/NA announcer.

L{VrrpInstance} implements L{IMachineEffects} (what the machine wants done)
and L{IVrrpReceiver} (what the socket delivers).  Everything it touches is
injected: a sender (L{IAdvertSender}, normally a L{VrrpRawPort}), an
L{IAddressManager}, an L{Announcer} and a clock.  Observers
(L{IInstanceObserver}) learn of state changes for notify scripts, mail and
status.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface, implementer

from keepalive_tx.config import model
from keepalive_tx.net.addresses import IAddressManager, Vip, vipsFor
from keepalive_tx.net.announce import Announcer
from keepalive_tx.net.nftplan import Blocked
from keepalive_tx.vrrp.machine import (
    IMachineEffects,
    MachineConfig,
    State,
    VRRPMachine,
)
from keepalive_tx.vrrp.packet import (
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    VRRP_TTL,
    AuthType,
    IPv4AdvertTemplate,
    ReceivedMeta,
    VrrpAdvert,
    encodeVrrp,
    nextIpId,
)
from keepalive_tx.vrrp.transport import IVrrpReceiver
from keepalive_tx.vrrp.validate import (
    AdvertChecker,
    RateLimitedLog,
    ReceiveCounters,
    ReceivePolicy,
)

if TYPE_CHECKING:
    from keepalive_tx.net.rtnames import IprouteNames

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["IAdvertSender", "IInstanceObserver", "VrrpInstance", "machineConfigFor",
           "tellObservers"]


def tellObservers(instance: Any, method: str, *args: Any) -> None:
    """
    Call C{observer.method(instance, *args)} on each of C{instance.observers}
    that has C{method}; a failing observer is logged, the others are still
    told.
    """
    for observer in list(instance.observers):
        f = getattr(observer, method, None)
        if f is None:
            continue
        try:
            f(instance, *args)
        except Exception:
            instance.log.failure("({name}) observer {observer!r} failed", name=instance.name,
                                 observer=observer)


class IAdvertSender(Interface):
    """
    Sends one advert packet (IPv4: whole IP packet; IPv6: VRRP message).
    """

    def send(packet: bytes, destination: IPAddress) -> bool:
        """
        Hand C{packet} to the kernel; C{False} when it could not be sent.
        """


class IInstanceObserver(Interface):
    """
    Learns what happens to an instance (notify scripts, mail, status).
    """

    def instanceStateChanged(instance: VrrpInstance, old: State, new: State, reason: str) -> None:
        """
        C{instance} went from C{old} to C{new}.
        """


_AUTH_TYPES = {"PASS": AuthType.PASS, "AH": AuthType.AH}


def machineConfigFor(config: model.VrrpInstanceConfig, ourAddress: IPAddress | None) -> MachineConfig:
    """
    The state machine's view of a configured instance.
    """
    return MachineConfig(
        name=config.name,
        vrid=config.virtualRouterId or 1,
        version=config.version,
        priority=config.priority,
        advertInterval=config.advertInt,
        nopreempt=config.nopreempt,
        preemptDelay=config.preemptDelay,
        wantMaster=config.state == "MASTER",
        downTimerAdverts=config.downTimerAdverts,
        lowerPrioNoAdvert=config.lowerPrioNoAdvert,
        higherPrioSendAdvert=config.higherPrioSendAdvert,
        ownerIgnoreAdverts=config.ownerIgnoreAdverts,
        ourAddress=ourAddress,
    )


@implementer(IMachineEffects, IVrrpReceiver)
class VrrpInstance:
    """
    One configured VRRP instance at run time.

    @ivar machine: its L{VRRPMachine}.
    @ivar counters: receive-check counters (keepalived's stats names).
    @ivar stats: send-side counters (C{advert_sent}, C{pri_zero_sent},
        C{become_master}, C{release_master}).
    """

    log = Logger()

    def __init__(
        self,
        config: model.VrrpInstanceConfig,
        *,
        clock: IReactorTime,
        sender: Any,
        addresses: IAddressManager,
        announcer: Announcer | None,
        sourceAddress: IPAddress,
        multicastGroup: IPAddress | None = None,
        checkUnicastSource: bool = False,
        routes: Any = None,
        rules: Any = None,
        ipNames: IprouteNames | None = None,
        firewall: Any = None,
        vipInterfaces: Sequence[str | None] | None = None,
        vmacInterfaces: Sequence[str] = (),
    ) -> None:
        """
        @param firewall: a L{keepalive_tx.net.firewall.FirewallHandle}: a
            MASTER that is not the address owner and has no accept mode
            blocks its addresses through it.
        @param vipInterfaces: the interface of each VIP then eVIP, when they
            do not all go where C{dev} or the instance interface says
            (VMACs, L{keepalive_tx.net.vmac.InstanceLinks}).
        @param vmacInterfaces: the instance's own VMAC, tracked as its
            interface is.
        """
        self.config = config
        self.name = config.name
        self.clock = clock
        self.sender = sender
        self.addresses = addresses
        self.announcer = announcer
        self.sourceAddress = sourceAddress
        self.family = sourceAddress.version
        if config.mcastDstIp is not None:
            multicastGroup = config.mcastDstIp
        if multicastGroup is None:
            multicastGroup = VRRP_MCAST_V4 if self.family == 4 else VRRP_MCAST_V6
        self.multicastGroup = multicastGroup
        self.peers = tuple(p.address for p in config.unicastPeers)
        auth = config.authentication if config.version == 2 and self.family == 4 else None
        self.authType = _AUTH_TYPES.get(auth.authType, AuthType.NONE) if auth else AuthType.NONE
        self.password = auth.password if auth else b""
        nVips = len(config.virtualIpaddresses)
        ifnames = list(vipInterfaces) if vipInterfaces is not None else [
            a.dev or config.interface
            for a in config.virtualIpaddresses + config.virtualIpaddressesExcluded]
        self.vips = vipsFor(config.virtualIpaddresses, config.interface, ifnames[:nVips])
        self.evips = vipsFor(config.virtualIpaddressesExcluded, config.interface, ifnames[nVips:])
        self.vmacInterfaces = frozenset(vmacInterfaces)
        #: (ifname, ip) of the VIPs/eVIPs whose external deletion we react to
        self.trackedVips: dict[tuple[str, IPAddress], Vip] = {}
        for a, vip in zip(
            (a for a, ifname in zip(config.virtualIpaddresses + config.virtualIpaddressesExcluded,
                                    ifnames, strict=True) if ifname),
            self.vips + self.evips, strict=True,
        ):
            if not a.noTrack:
                self.trackedVips[(vip.ifname, vip.ip)] = vip
        # virtual_routes / virtual_rules: only handled with a manager
        self.routes = routes
        self.rules = rules
        self.virtualRoutes: list[Any] = []
        self.virtualRules: list[Any] = []
        #: the virtual routes / rules whose deletion we react to
        self.trackedRouting: dict[str, list[Any]] = {"route": [], "rule": []}
        wantRoutes = config.virtualRoutes if routes is not None else ()
        wantRules = config.virtualRules if rules is not None else ()
        if wantRoutes or wantRules:
            # Only then: the route/rule spec builder (and iproute2 name files).
            from keepalive_tx.net.routespec import routeSpecsFor, ruleSpecsFor
            from keepalive_tx.net.rtnames import IprouteNames

            names = ipNames if ipNames is not None else IprouteNames()
            self.virtualRoutes = routeSpecsFor(wantRoutes, names, self._configProblem)
            self.virtualRules = ruleSpecsFor(wantRules, names, self._configProblem)
            quiet = lambda location, text: None  # noqa: E731 - reported just above
            self.trackedRouting = {
                "route": routeSpecsFor(tuple(r for r in wantRoutes if not r.noTrack), names,
                                       quiet),
                "rule": ruleSpecsFor(tuple(r for r in wantRules if not r.noTrack), names, quiet),
            }
        self.advertAddresses = tuple(
            v.address.ip for v in self.vips if v.address.version == self.family)
        self.counters = ReceiveCounters()
        self.stats: dict[str, int] = dict.fromkeys(
            ("advert_sent", "pri_zero_sent", "become_master", "release_master"), 0)
        self.observers: list[Any] = []
        self._ipId = 0
        self._ahSequence = 0
        self._rateLog = RateLimitedLog(self.log, f"({self.name}) ")
        self._advertPackets: dict[int, list[tuple[IPAddress, Any]]] = {}
        self._receiveChecker = AdvertChecker()
        self._policy = ReceivePolicy(
            family=self.family,
            vrid=config.virtualRouterId or 1,
            version=config.version,
            authType=self.authType,
            password=self.password,
            advertInterval=config.advertInt,
            vips=self.advertAddresses,
            unicastPeers=config.unicastPeers,
            checkUnicastSource=config.checkUnicastSrc or checkUnicastSource,
            ownerIgnoreAdverts=config.ownerIgnoreAdverts,
            effectivePriority=config.priority,
            v3ChecksumAsV2=False,
        )
        self.machine = VRRPMachine(machineConfigFor(config, sourceAddress), self, clock)
        self._resuming = False
        #: C{(ifname, ip)} of the VIPs/eVIPs a resumed MASTER's predecessor
        #: left in place for it (L{None}: not known, all count as added)
        self.heldAddresses: set[tuple[str, IPAddress]] | None = None
        self._skipCheckAdvAddr = bool(config.skipCheckAdvAddr)
        self.firewall = firewall
        #: keepalived's no_accept: drop traffic to our addresses while MASTER
        self.dropsTraffic = not config.accept and config.priority != 255

    @property
    def policy(self) -> ReceivePolicy:
        """
        The L{ReceivePolicy} in force: the configured one with our current
        effective priority, the last AH sequence number and, with
        C{skip_check_adv_addr}, the master whose address lists a BACKUP
        no longer compares (brought up to date when read, not on every
        advert sent).
        """
        policy = self._policy
        machine = self.machine
        if (policy.effectivePriority != machine.effectivePriority
                or policy.ahLastSequence != self._ahSequence):
            policy = self._policy = policy.evolve(
                effectivePriority=machine.effectivePriority,
                ahLastSequence=self._ahSequence)
        if self._skipCheckAdvAddr:
            known = machine.masterAddress if machine.state == State.BACKUP else None
            if policy.skipAddressCheckFrom != known:
                policy = self._policy = policy.evolve(skipAddressCheckFrom=known)
        return policy

    @policy.setter
    def policy(self, policy: ReceivePolicy) -> None:
        self._policy = policy
        self._ahSequence = policy.ahLastSequence

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def resumeMaster(self) -> bool:
        """
        Whether this instance continues a MASTER of the configuration
        before a reload and has not reported a state of its own yet: from
        L{VrrpService} building it until its machine enters MASTER (on the
        reactor turn after L{start}; later when a weight-0 tracked script
        holds the start), or anything else (then it lets them go as a
        MASTER leaving would), or until it is stopped or handed over.
        Meanwhile it holds the addresses its predecessor kept for it,
        although its machine is still INIT, or BACKUP with a zero timer.
        """
        return self._resuming

    @resumeMaster.setter
    def resumeMaster(self, value: bool) -> None:
        self._resuming = value

    @property
    def holdsMaster(self) -> bool:
        """
        Whether this instance holds the addresses as a MASTER: in MASTER,
        or resumed by a reload and not taken over yet (L{resumeMaster}).
        A reload hands it over as a MASTER either way, however soon it
        comes after the previous one.
        """
        return self._resuming or self.machine.state == State.MASTER

    @property
    def vrid(self) -> int:
        return self._policy.vrid

    @property
    def vmacName(self) -> str | None:
        """
        The name of the instance's own VMAC/ipvlan interface as it is in
        use (not necessarily the configured one: keepalived's rules may
        have chosen another), or L{None}.
        """
        return next(iter(self.vmacInterfaces), None)

    def addressesHeld(self) -> set[tuple[str, IPAddress]]:
        """
        C{(ifname, ip)} of the VIPs/eVIPs this instance has in place now: all
        of them as MASTER, those its predecessor left as a MASTER resumed by
        a reload that has not taken over yet, none otherwise.
        """
        placed = {(v.ifname, v.ip) for v in self.vips + self.evips}
        if self.machine.state == State.MASTER:
            return placed
        if self._resuming:
            return placed if self.heldAddresses is None else placed & self.heldAddresses
        return set()

    # -- lifecycle -----------------------------------------------------------

    def removeStale(self) -> None:
        """
        Remove configured addresses left behind by a crashed run.
        """
        self._logVips("removing")
        self._setFirewall(False)
        removed = self.addresses.removeStale(self.vips + self.evips)
        for vip in removed:
            self.log.info("({name}) removed stale VIP {vip} left by a previous run",
                          name=self.name, vip=str(vip))
        self._setRoutes(False)  # keepalived removes virtual routes and rules at start too

    def start(self) -> None:
        self.machine.start(resumeMaster=self._resuming)

    def detach(self, keep: set[tuple[str, IPAddress]]) -> None:
        """
        Hand over to the instance of a reloaded configuration: stop quietly
        (see L{VRRPMachine.detach}); addresses not in C{keep} (C{(ifname,
        ip)} of the successor's VIPs/eVIPs) are removed, as are virtual
        routes and rules (the successor adds its own).
        """
        wasMaster = self.holdsMaster
        self._resuming = False
        if self.announcer is not None:
            self.announcer.stop()
        self.machine.detach()
        if not wasMaster:
            return
        self._setRoutes(False)
        if self.firewall is not None:
            self.firewall.narrow(keep)
        for vip in self.vips + self.evips:
            if (vip.ifname, vip.ip) not in keep:
                self.addresses.remove(vip)

    def stop(self, reason: str = "stop") -> None:
        """
        Graceful stop: a MASTER sends priority 0 and removes its addresses;
        so does one resumed by a reload that has not taken over yet
        (L{resumeMaster}), whose machine does not know it holds them.

        @param reason: the transition reason (see L{VRRPMachine.stop}).
        """
        self._giveUpResumed()
        self.machine.stop(reason)

    def _giveUpResumed(self) -> None:
        """
        A resumed MASTER (L{resumeMaster}) that will not be MASTER after
        all (stopped, faulted, held back by its sync group): send priority
        0 and remove the addresses it holds, as a MASTER leaving would.
        """
        if not self._resuming:
            return
        self._resuming = False
        self.sendAdvert(0)
        self.releaseMaster()

    def abandon(self) -> None:
        """
        Stop without letting go (keepalived's C{-V}): no priority-0 advert,
        addresses, routes and rules stay where they are.
        """
        if self.announcer is not None:
            self.announcer.stop()
        self.machine.detach()

    # -- IVrrpReceiver -------------------------------------------------------

    def vrrpReceived(self, data: bytes, meta: ReceivedMeta) -> None:
        result = self._receiveChecker.check(data, meta, self.policy)
        self.counters.record(result)
        if not result.accepted:
            self._rateLog.logResult(result)
            return
        if result.notes:
            self._rateLog.logResult(result)
        advert = result.advert
        assert advert is not None and result.source is not None
        if result.ahSequence is not None:
            self._syncAhSequence(result.ahSequence, advert.priority, result.source)
        self.machine.advertReceived(advert.priority, result.source, advert.advertInterval)

    def _syncAhSequence(self, sequence: int, priority: int, source: IPAddress) -> None:
        """
        keepalived keeps B{one} AH sequence counter per instance: sending
        increments it, an accepted advert sets it to the sender's number, and
        a MASTER receiving a lower-priority advert sets it to that number + 1
        -- so whoever takes over continues above what the other side has
        seen, and a restarted peer (counting from 1 again) is re-synced
        instead of being dropped as a replay until it catches up.
        """
        self._ahSequence = sequence
        if self.machine.state == State.MASTER and priority:
            eff = self.machine.effectivePriority
            if priority < eff or (priority == eff and int(source) < int(self.sourceAddress)):
                self._ahSequence = (sequence + 1) & 0xFFFFFFFF

    # -- IMachineEffects -----------------------------------------------------

    def sendAdvert(self, priority: int) -> None:
        packets = self._advertPackets.get(priority)
        if packets is None:
            packets = self._advertPacketsFor(priority)
        if self.authType == AuthType.AH:
            self._ahSequence = (self._ahSequence + 1) & 0xFFFFFFFF
        sender = self.sender
        for destination, template in packets:
            if template.__class__ is bytes:  # IPv6: the kernel fills in the checksum
                packet = template
            else:
                self._ipId = nextIpId(self._ipId)
                packet = template.packet(self._ipId, self._ahSequence)
            if sender.send(packet, destination):
                self.stats["advert_sent"] += 1
                if priority == 0:
                    self.stats["pri_zero_sent"] += 1

    def _advertPacketsFor(self, priority: int) -> list[tuple[IPAddress, Any]]:
        """
        Build, remember and return the adverts for C{priority}: one
        (destination, L{IPv4AdvertTemplate} or IPv6 message bytes) per
        destination.  Everything else they depend on is fixed for the
        instance's lifetime; a handful of priorities are remembered.
        """
        cfg = self.config
        if cfg.version == 2:
            advert = VrrpAdvert(
                version=2, vrid=self.vrid, priority=priority, addresses=self.advertAddresses,
                authType=self.authType, advertIntSeconds=max(1, round(cfg.advertInt)))
        else:
            advert = VrrpAdvert(
                version=3, vrid=self.vrid, priority=priority, addresses=self.advertAddresses,
                maxAdvertIntCs=max(1, round(cfg.advertInt * 100)))
        destinations = self.peers or (self.multicastGroup,)
        ttl = cfg.unicastTtl if (self.peers and cfg.unicastTtl is not None) else VRRP_TTL
        packets: list[tuple[IPAddress, Any]] = []
        for destination in destinations:
            if self.family == 4:
                template: Any = IPv4AdvertTemplate(
                    advert, self.sourceAddress, destination, ttl=ttl, password=self.password)
            else:
                template = encodeVrrp(advert, 6, computeChecksum=False)
            packets.append((destination, template))
        if len(self._advertPackets) >= 8:
            self._advertPackets.clear()
        self._advertPackets[priority] = packets
        return packets

    def becomeMaster(self) -> None:
        if self._resuming:
            self._resumeMaster()
            return
        self.stats["become_master"] += 1
        self._setFirewall(True)
        self._logVips("setting")
        for vip in self.vips + self.evips:
            self.addresses.add(vip)
        self._setRoutes(True)
        if self.announcer is not None:
            self.announcer.becameMaster()

    def _resumeMaster(self) -> None:
        """
        MASTER again after a reload (keepalived 2.2.7's rule): only the
        addresses the predecessor did not leave in place are added; the
        GARP/NA burst goes out only if some were, once (see
        L{Announcer.resumedMaster}); virtual routes and rules are set again.
        """
        self._setFirewall(True)
        held = self.heldAddresses
        added = [vip for vip in self.vips + self.evips
                 if held is None or (vip.ifname, vip.ip) not in held]
        if added:
            self._logVips("setting")
        for vip in added:
            self.addresses.add(vip)
        self._setRoutes(True)
        if self.announcer is not None:
            self.announcer.resumedMaster(bool(added))

    def releaseMaster(self) -> None:
        self.stats["release_master"] += 1
        if self.announcer is not None:
            self.announcer.stop()
        self._setRoutes(False)
        self._logVips("removing")
        for vip in self.vips + self.evips:
            self.addresses.remove(vip)
        self._setFirewall(False)

    def _setFirewall(self, add: bool) -> None:
        """
        keepalived's accept-mode rules: a no_accept MASTER drops traffic to
        and from its VIPs and eVIPs (set before the addresses, removed after
        them); any other instance blocks nothing.
        """
        if self.firewall is None:
            return
        if not self.dropsTraffic:
            self.firewall.unblock()
            return
        self.log.debug("({name}) {verb} firewall drop rule", name=self.name,
                       verb="setting" if add else "removing", keepalivedDetail=True)
        if not add:
            self.firewall.unblock()
            return
        c = self.config
        self.firewall.block(
            Blocked(vip.ip, ifname=vip.ifname,
                    byName=c.dontTrackPrimary and (vip.ifname == c.interface
                                                   or (vip.ifname, vip.ip) not in self.trackedVips))
            for vip in self.vips + self.evips)

    def _logVips(self, verb: str) -> None:
        """
        keepalived's C{-D} lines before it sets or removes the addresses.
        """
        for kind, vips in (("", self.vips), ("E-", self.evips)):
            if vips:
                self.log.debug("({name}) {verb} {kind}VIPs.", name=self.name, verb=verb,
                               kind=kind, keepalivedDetail=True)

    def _setRoutes(self, add: bool) -> None:
        """
        Add the virtual routes, then rules (C{add}), or remove the rules,
        then routes.
        """
        steps = [("Routes", self.routes, self.virtualRoutes), ("Rules", self.rules, self.virtualRules)]
        for what, manager, items in steps if add else reversed(steps):
            if manager is None or not items:
                continue
            self.log.debug("({name}) {verb} Virtual {what}", name=self.name,
                           verb="setting" if add else "removing", what=what,
                           keepalivedDetail=True)
            change = manager.add if add else manager.remove
            for item in items:
                change(item)

    def _configProblem(self, location: object, message: str) -> None:
        where = f"{location}: " if location is not None else ""
        self.log.warn("({name}) {where}{problem}", name=self.name, where=where,
                      problem=message)

    def stateChanged(self, old: State, new: State, reason: str) -> None:
        if new == State.MASTER:
            self._resuming = False
        else:
            self._giveUpResumed()
        self._rateLog.reset()
        tellObservers(self, "instanceStateChanged", old, new, reason)

    def lowerPriorityAdvertSeen(self, priority: int, source: IPAddress) -> None:
        if self.announcer is not None:
            self.announcer.lowerPriorityAdvert()
        self._tellObservers("instanceLowerPriorityAdvert", priority, source)

    def effectivePriorityChanged(self, old: int, new: int) -> None:
        self._tellObservers("instancePriorityChanged", old, new)

    def _tellObservers(self, method: str, *args: Any) -> None:
        tellObservers(self, method, *args)

    # -- link events ---------------------------------------------------------

    def linkChanged(self, ifname: str, ifindex: int, up: bool) -> None:
        """
        L{keepalive_tx.net.links.LinkMonitor} observer: the instance
        interface or a weight-0 tracked interface went down (FAULT) or up.
        """
        watched = self.trackedInterfaces()
        if ifname in watched:
            self.machine.setFault(f"interface {ifname}", not up)

    def addressRemoved(self, ifname: str, ifindex: int, address: Any) -> None:
        """
        L{keepalive_tx.net.links.LinkMonitor} observer: an address went away.
        A MASTER whose tracked VIP (one without C{no_track}) was deleted by
        someone else goes to BACKUP, sends priority 0 and normally takes over
        again after Skew_Time, re-adding everything (keepalived's rule).  An
        event for an address that is back already (our own removal, seen
        late) is ignored.
        """
        if self.machine.state != State.MASTER:
            return
        vip = self.trackedVips.get((ifname, address.interface.ip))
        if vip is None:
            return
        try:
            if self.addresses.present(vip):
                return
        except Exception:
            self.log.failure("({name}) cannot check VIP {vip}", name=self.name, vip=str(vip))
            return
        self.log.info("Netlink reflector reports IP {ip} removed from {ifname}",
                      ip=str(vip.ip), ifname=ifname)
        self.machine.addressLost(f"VIP {vip.ip}")

    def routingRemoved(self, kind: str, protocol: int | None) -> None:
        """
        A route (C{kind} C{"route"}) or rule (C{"rule"}) of C{protocol} was
        deleted: a MASTER missing one of its tracked virtual routes / rules
        reacts as to a deleted VIP (keepalived's rule; C{no_track} ones are
        left alone).
        """
        if self.machine.state != State.MASTER:
            return
        manager = self.routes if kind == "route" else self.rules
        if manager is None:
            return
        for spec in self.trackedRouting.get(kind, ()):
            if protocol is not None and spec.protocol != protocol:
                continue
            try:
                if manager.present(spec):
                    continue
            except Exception:
                self.log.failure("({name}) cannot check {kind} {spec}", name=self.name,
                                 kind=kind, spec=str(spec))
                return
            self.log.info("({name}) virtual {kind} {spec} deleted", name=self.name, kind=kind,
                          spec=str(spec))
            self.machine.addressLost(f"virtual {kind} {spec}")
            return

    def trackedInterfaces(self) -> set[str]:
        """
        Interfaces whose loss puts this instance in FAULT.
        """
        names = set()
        if self.config.interface and not self.config.dontTrackPrimary:
            names.add(self.config.interface)
            names |= self.vmacInterfaces
        for tracker in self.config.trackInterfaces:
            if not tracker.weight and not tracker.reverse:
                names.add(tracker.name)
        return names
