"""
What several integration test modules share: sockets opened inside a
namespace, a URL client run in one, VMAC address and link readers, a
self-signed certificate, a syslog receiver, the script-parity
configurations and the check for the SMTP server.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SkipTest

from tests.integration.netns import Host, namespaceSocket


def nsSocket(ns: str, family: int, kind: int, proto: int) -> socket.socket:
    """
    A socket living in namespace C{ns} (never creates the namespace).
    """
    return namespaceSocket(ns, family, kind, proto)


def nsRouteSocket(ns: str, groups: int) -> socket.socket:
    """
    What L{keepalive_tx.net.netlink.openRouteSocket} does, in namespace C{ns}.
    """
    sock = nsSocket(ns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, groups))
    return sock


#: Runs inside the namespace: GET a URL, print the body; exit 1 on failure.
URL_CLIENT = """\
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    sys.stderr.write(repr(e)); sys.exit(1)
"""


def addressLines(host: Host) -> list[tuple[str, str]]:
    """
    C{(ifname, address)} of every address in C{host}'s namespace (as C{ip
    -o addr show} lists them; read over netlink: tests poll it).
    """
    return host.allAddresses()


def vipInterface(host: Host, vip: str) -> str | None:
    for ifname, address in addressLines(host):
        if address == vip:
            return ifname
    return None


def linkDetails(host: Host, name: str) -> dict | None:
    out = host.run("ip", "-d", "-j", "link", "show", "dev", name, check=False)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)[0]


def requireAiosmtpd() -> None:
    """
    Skip (or, when C{CI} is set, fail) unless aiosmtpd can be run.
    """
    if importlib.util.find_spec("aiosmtpd") is None:
        reason = "aiosmtpd is not installed (pip install aiosmtpd)"
        if os.environ.get("CI"):
            raise AssertionError(reason + " (CI is set: .ci/setup must install it)")
        raise SkipTest(reason)


def selfSigned(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


# the lines keepalived writes for a VRRP instance's transitions with -D
TRANSITION = re.compile(
    r"^\(VI_\d+\) (Entering |setting |removing |sent 0 priority|Backup received priority 0"
    r"|Master received priority 0|Receive advertisement timeout|Sending/queueing )"
    r"|^Sending (gratuitous ARP|unsolicited Neighbour Advert) on ")


LINE = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ([^\[ ]+)\[(\d+)\]: (.*)$", re.S)


@dataclass(frozen=True)
class Line:
    priority: int
    ident: str
    pid: int
    text: str


class Syslog:
    """
    A syslog daemon's datagram socket, bound by the test.
    """

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.path)
        self.socket.setblocking(False)
        self.lines: list[Line] = []
        self.raw: list[bytes] = []

    def drain(self) -> list[Line]:
        while True:
            try:
                datagram = self.socket.recv(65536)
            except BlockingIOError:
                return self.lines
            self.raw.append(datagram)
            match = LINE.match(datagram.decode("utf-8", "replace"))
            if match is None:
                raise AssertionError(f"not an RFC 3164 line from syslog(): {datagram!r}")
            self.lines.append(Line(int(match[1]), match[2], int(match[3]), match[4]))

    def transitions(self) -> list[tuple[int, str, str]]:
        return [(line.priority, line.ident, line.text) for line in self.drain()
                if line.ident == "Keepalived_vrrp" and TRANSITION.match(line.text)]

    def has(self, text: str) -> bool:
        return any(line.text == text for line in self.drain())

    def close(self) -> None:
        self.socket.close()


PARITY_INSTANCE = """\
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {{
        192.0.2.100/24 dev eth0
    }}
{body}}}
"""


PARITY_SERVER = """\
virtual_server 192.0.2.50 80 {{
    delay_loop 5
    lvs_sched rr
    lvs_method NAT
    protocol TCP
{vs}    real_server 192.0.2.60 80 {{
{rs}    }}
}}
"""


def scriptConfig(globalDefs: str = "", vscript: str | None = None, instance: str | None = "",
           vs: str | None = None, rs: str = "") -> str:
    """
    A configuration: C{global_defs} lines, an optional tracked weight-0
    C{vrrp_script chk} running C{vscript}, an instance with extra C{instance}
    lines (L{None}: no instance), an optional virtual server with extra
    C{vs} lines and real-server lines C{rs}.
    """
    text = f"global_defs {{\n    router_id t\n{globalDefs}}}\n"
    if vscript is not None:
        text += f'vrrp_script chk {{\n    script "{vscript}"\n    interval 1\n}}\n'
        instance = (instance or "") + "    track_script {\n        chk\n    }\n"
    if instance is not None:
        text += PARITY_INSTANCE.format(body=instance)
    if vs is not None:
        text += PARITY_SERVER.format(vs=vs, rs=rs)
    return text
