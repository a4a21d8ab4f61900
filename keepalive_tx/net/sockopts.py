"""
Linux socket option numbers that Python's C{socket} module lacks on some
builds, shared by the raw VRRP port and the BFD sockets.
"""

from __future__ import annotations

import socket

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_HDRINCL = getattr(socket, "IP_HDRINCL", 3)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IPV6_CHECKSUM = getattr(socket, "IPV6_CHECKSUM", 7)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_JOIN_GROUP = getattr(socket, "IPV6_JOIN_GROUP", 20)
