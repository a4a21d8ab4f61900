"""
Linux networking edges: rtnetlink (addresses, links, routes, rules), GARP/NA.

Importing any module of this package first makes C{import pyroute2} cheap
(L{keepalive_tx.net.lazypyroute2}): we use a handful of pyroute2's message
codecs, and its package C{__init__} would otherwise import all of pyroute2
(NDB, IPDB, ethtool, conntrack, ...: about 7 MB of resident memory).
"""

from keepalive_tx.net import lazypyroute2

lazypyroute2.install()
