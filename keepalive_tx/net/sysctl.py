# -*- test-case-name: tests.unit.test_net_sysctl -*-
"""
The sysctls keepalived sets for VMACs, and puts back at exit.

IPv4 VMACs (docs/keepalived-compat.md, "VMAC and ipvlan"):

  - on the VMAC: C{arp_ignore=1}, C{accept_local=1}, C{rp_filter=0},
    C{promote_secondaries=1} (gone with the interface);
  - on its parent: C{arp_ignore=1} and C{arp_filter=1}, so that the parent
    neither answers ARP for the VIPs (the VMAC does, with the VMAC's MAC)
    nor for its own addresses on the VMAC's behalf; the previous values
    come back when the last VMAC on that parent goes;
  - C{rp_filter}: the kernel applies the larger of C{all} and the
    interface's value, so for the VMAC's 0 to count, C{all.rp_filter} is
    lowered to 0 -- after raising C{default} and every interface below the
    old C{all} to it, so nothing else changes behaviour.  At exit each
    value still equal to what we set is put back.

C{disable_local_igmp} (C{net.ipv4.igmp_link_local_mcast_reports=0}) is
kept here too: set at start, restored at exit.

Several owners (the VRRP service before and after a reload) share one
L{VmacSysctls}: a setting is restored only when no owner needs it any more.

Values are read and written through C{/proc/sys} (L{ProcSys}), of the
network namespace the process runs in: small synchronous file I/O (~10 us
each), like keepalived's own.
"""

from __future__ import annotations

import os

from twisted.logger import Logger

__all__ = ["ProcSys", "VmacSysctls"]

#: what an IPv4 VMAC gets
VMAC_SETTINGS = (("arp_ignore", 1), ("accept_local", 1), ("rp_filter", 0),
                 ("promote_secondaries", 1))
#: what its parent gets
BASE_SETTINGS = (("arp_ignore", 1), ("arp_filter", 1))
IGMP_REPORTS = "net/ipv4/igmp_link_local_mcast_reports"


class ProcSys:
    """
    Integer sysctls under C{root} (C{/proc/sys}; a directory tree in tests).
    Failures are logged and reported, never raised.
    """

    log = Logger()

    def __init__(self, root: str = "/proc/sys") -> None:
        self.root = root

    def get(self, path: str) -> int | None:
        """
        The value of C{path} (e.g. C{net/ipv4/conf/eth0/arp_ignore}), or
        C{None} if it cannot be read.
        """
        try:
            with open(os.path.join(self.root, path)) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def set(self, path: str, value: int) -> bool:
        try:
            with open(os.path.join(self.root, path), "w") as f:
                f.write(f"{value}\n")
        except OSError as e:
            self.log.warn("Cannot set sysctl {path} to {value}: {error}", path=path.replace("/", "."),
                          value=value, error=e.strerror or str(e))
            return False
        return True

    def interfaces(self) -> list[str]:
        """
        The interfaces with IPv4 settings (C{all} and C{default} excluded).
        """
        try:
            names = os.listdir(os.path.join(self.root, "net/ipv4/conf"))
        except OSError:
            return []
        return sorted(n for n in names if n not in ("all", "default"))


def conf(ifname: str, key: str, family: int = 4) -> str:
    return f"net/ipv{family}/conf/{ifname}/{key}"


class VmacSysctls:
    """
    keepalived's VMAC sysctls with save, claims and restore.
    """

    log = Logger()

    def __init__(self, proc: ProcSys | None = None) -> None:
        self.proc = proc if proc is not None else ProcSys()
        #: parent -> original (arp_ignore, arp_filter), when we changed them
        self._baseSaved: dict[str, tuple[int, int]] = {}
        self._baseOwners: dict[str, set[object]] = {}
        #: all.rp_filter before we lowered it, default's and each raised interface's
        self._allRp: int | None = None
        self._defaultRp: int | None = None
        self._raisedRp: dict[str, int] = {}
        self._rpOwners: set[object] = set()
        self._igmpSaved: int | None = None
        self._igmpOwners: set[object] = set()

    # -- setting ---------------------------------------------------------------

    def vmacCreated(self, owner: object, vmac: str, base: str | None, configure: bool = True) -> None:
        """
        An IPv4 VMAC C{vmac} on C{base} is in use by C{owner}: its settings,
        the parent's and C{rp_filter}.

        @param configure: set the VMAC's own settings (C{False}: another
            owner did, C{owner} only shares the parent's and C{rp_filter}).
        """
        self._lowerRpFilter(owner)
        for key, value in VMAC_SETTINGS if configure else ():
            self.proc.set(conf(vmac, key), value)
        if base is None:
            return
        owners = self._baseOwners.setdefault(base, set())
        first = not owners
        owners.add(owner)
        if not first or base in self._baseSaved:
            return
        old = tuple(self.proc.get(conf(base, key)) for key, _ in BASE_SETTINGS)
        if old == (1, 1) or None in old:
            return
        for key, value in BASE_SETTINGS:
            self.proc.set(conf(base, key), value)
        self._baseSaved[base] = (int(old[0] or 0), int(old[1] or 0))  # type: ignore[arg-type]

    def _lowerRpFilter(self, owner: object) -> None:
        self._rpOwners.add(owner)
        if self._allRp is not None:
            return
        allRp = self.proc.get("net/ipv4/conf/all/rp_filter")
        if allRp is None:
            self.log.info("Unable to read sysctl net.ipv4.conf.all.rp_filter")
            return
        if allRp == 0:
            return
        self._allRp = allRp
        default = self.proc.get("net/ipv4/conf/default/rp_filter")
        if default is not None and default < allRp:
            self.log.info("NOTICE: setting sysctl net.ipv4.conf.default.rp_filter from {old} to {new}",
                          old=default, new=allRp)
            self.proc.set("net/ipv4/conf/default/rp_filter", allRp)
            self._defaultRp = default
        for ifname in self.proc.interfaces():
            value = self.proc.get(conf(ifname, "rp_filter"))
            if value is not None and value < allRp:
                self.proc.set(conf(ifname, "rp_filter"), allRp)
                self._raisedRp[ifname] = value
        self.log.info("NOTICE: setting sysctl net.ipv4.conf.all.rp_filter from {old} to 0", old=allRp)
        self.proc.set("net/ipv4/conf/all/rp_filter", 0)

    def disableLocalIgmp(self, owner: object) -> bool:
        """
        C{disable_local_igmp}: no IGMP reports for 224.0.0.x groups (the
        VMACs' joins of 224.0.0.18 would teach switches their MAC on a
        backup's port).
        """
        self._igmpOwners.add(owner)
        if self._igmpSaved is not None:
            return True
        value = self.proc.get(IGMP_REPORTS)
        if value is None:
            self.log.info("Unable to read /proc/sys/{path}", path=IGMP_REPORTS)
            return False
        if value != 0 and not self.proc.set(IGMP_REPORTS, 0):
            return False
        self._igmpSaved = value
        return True

    # -- restoring -------------------------------------------------------------

    def release(self, owner: object) -> None:
        """
        C{owner} needs nothing any more; put back what nobody needs.
        """
        for base, owners in list(self._baseOwners.items()):
            owners.discard(owner)
            if owners:
                continue
            del self._baseOwners[base]
            saved = self._baseSaved.pop(base, None)
            if saved is not None and self.proc.get(conf(base, "arp_ignore")) is not None:
                for (key, _), value in zip(BASE_SETTINGS, saved, strict=True):
                    self.proc.set(conf(base, key), value)
        self._rpOwners.discard(owner)
        if not self._rpOwners:
            self._restoreRpFilter()
        self._igmpOwners.discard(owner)
        if not self._igmpOwners and self._igmpSaved is not None:
            if self._igmpSaved != 0:
                self.proc.set(IGMP_REPORTS, self._igmpSaved)
            self._igmpSaved = None

    def _restoreRpFilter(self) -> None:
        allRp, self._allRp = self._allRp, None
        if allRp is None:
            return
        if self.proc.get("net/ipv4/conf/all/rp_filter") == 0:
            self.log.info("NOTICE: resetting sysctl net.ipv4.conf.all.rp_filter to {value}",
                          value=allRp)
            self.proc.set("net/ipv4/conf/all/rp_filter", allRp)
        default, self._defaultRp = self._defaultRp, None
        if default is not None and self.proc.get("net/ipv4/conf/default/rp_filter") == allRp:
            self.log.info("NOTICE: resetting sysctl net.ipv4.conf.default.rp_filter to {value}",
                          value=default)
            self.proc.set("net/ipv4/conf/default/rp_filter", default)
        raised, self._raisedRp = self._raisedRp, {}
        for ifname, value in raised.items():
            if self.proc.get(conf(ifname, "rp_filter")) == allRp:
                self.proc.set(conf(ifname, "rp_filter"), value)

    @property
    def changed(self) -> bool:
        """
        Whether anything is still to be put back.
        """
        return bool(self._baseSaved or self._allRp is not None or self._igmpSaved is not None)
