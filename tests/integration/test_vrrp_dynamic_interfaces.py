"""
An instance on an interface that does not exist, ours beside Debian
keepalived 2.2.7 (each in its own lab host):

  - without C{dynamic_interfaces} both refuse to start (exit status 2,
    "Non-existent interface specified in configuration");
  - with it both wait, and when the interface is created after the start
    (a veth pair, then its address) the instance starts and, alone on its
    link, becomes MASTER and adds its VIP there;
  - meanwhile both hold it in FAULT: FAULT is notified at start (the
    C{notify_fault} script, the generic C{notify} script), BACKUP when the
    interface is ready, then MASTER; ours lists it as FAULT in C{/status}
    (before: nothing was notified and C{/status} did not list it).
"""

from __future__ import annotations

import time

from twisted.trial.unittest import TestCase

from tests.integration.vrrpnode import KEEPALIVED, OURS, VrrpLabMixin, waitFor

#: runs inside the namespace: GET a URL, print the body
CLIENT = ("import sys, urllib.request\n"
          "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n")

VIP = "198.51.100.100"
CONFIG = """global_defs {
    router_id dyn%(index)d
%(dynamic)s}
vrrp_instance VI_DYN {
    state BACKUP
    interface eth1
    virtual_router_id 61
    priority 100
    advert_int 1
    virtual_ipaddress {
        %(vip)s/24
    }
}
"""


class DynamicInterfaceTests(VrrpLabMixin, TestCase):
    timeout = 90

    def setUp(self) -> None:
        self.nodes = self.makeNodes([OURS, KEEPALIVED])

    def config(self, node, dynamic: bool, notify: str | None = None) -> str:
        text = CONFIG % {"index": node.host.index, "vip": VIP,
                         "dynamic": "    dynamic_interfaces\n" if dynamic else ""}
        if notify is not None:
            text = text.replace("    virtual_ipaddress {", f"    notify {notify}\n"
                                f"    notify_fault \"{notify} fault\"\n    virtual_ipaddress {{")
        if node.kind == OURS and notify is not None:
            text = text.replace("}\nvrrp_instance",
                                "    status_listen tcp:8123:interface=127.0.0.1\n}\nvrrp_instance")
        return text

    def createInterface(self, node) -> None:
        host = node.host
        host.run("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
        host.run("ip", "link", "set", "eth1p", "up")
        host.run("ip", "link", "set", "eth1", "up")
        host.run("ip", "addr", "add", f"198.51.100.{10 + host.index}/24", "dev", "eth1")

    def vipOnEth1(self, node) -> bool:
        out = node.host.run("ip", "-o", "addr", "show", "dev", "eth1", check=False).stdout
        return f" {VIP}/24 " in out

    def test_refusedWithoutDynamicInterfaces(self) -> None:
        for node in self.nodes:
            node.start(self.config(node, dynamic=False))
        for node in self.nodes:
            self.assertEqual(node.wait(20), 2, node.logTail())
            self.assertIn("Non-existent interface specified in configuration", node.logText())
            self.assertIn("WARNING - interface eth1 for vrrp_instance VI_DYN doesn't exist", node.logText())

    def test_interfaceCreatedAfterStart(self) -> None:
        for node in self.nodes:
            node.start(self.config(node, dynamic=True))
        # both keep running, waiting, without the interface
        time.sleep(2)
        for node in self.nodes:
            self.assertTrue(node.running, node.logTail())
        for node in self.nodes:
            self.createInterface(node)
        for node in self.nodes:
            # 3 adverts (3 s) and the skew time, then MASTER adds the VIP
            waitFor(lambda node=node: self.vipOnEth1(node), 15, f"{node.name} to add {VIP} on eth1",
                    self.nodes)
            self.assertTrue(node.running, node.logTail())
            self.assertIn("(VI_DYN) Entering MASTER STATE", node.logSinceStart())

    def test_faultWhileWaiting(self) -> None:
        import json
        import os
        import sys

        calls = {}
        for node in self.nodes:
            directory = os.path.join(os.path.abspath(self.mktemp()), node.kind)
            os.makedirs(directory)
            script = os.path.join(directory, "notify.sh")
            calls[node.kind] = os.path.join(directory, "calls")
            with open(script, "w") as f:
                f.write(f"#!/bin/sh\necho \"$@\" >> {calls[node.kind]}\n")
            os.chmod(script, 0o755)
            node.start(self.config(node, dynamic=True, notify=script))

        def lines(node) -> list[str]:
            try:
                with open(calls[node.kind]) as f:
                    return sorted(f.read().splitlines())
            except OSError:
                return []

        fault = ["INSTANCE VI_DYN FAULT 100", "fault"]
        for node in self.nodes:
            waitFor(lambda node=node: lines(node) == fault, 10, f"{node.name}'s FAULT notifies",
                    self.nodes)
        ours = self.nodes[0]
        status = ours.host.run(sys.executable, "-c", CLIENT, "http://127.0.0.1:8123/status/vrrp")
        [instance] = json.loads(status.stdout)["instances"]
        self.assertEqual((instance["name"], instance["state"], instance["faults"]),
                         ("VI_DYN", "FAULT", ["interface eth1"]))
        for node in self.nodes:
            self.createInterface(node)
        wanted = sorted(fault + ["INSTANCE VI_DYN BACKUP 100", "INSTANCE VI_DYN MASTER 100"])
        for node in self.nodes:
            waitFor(lambda node=node: lines(node) == wanted, 15, f"{node.name}'s notifies",
                    self.nodes)
