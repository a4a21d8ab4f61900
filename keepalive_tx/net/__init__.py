"""
Linux networking edges: rtnetlink (addresses, links, routes, rules), GARP/NA.

The modules here import only the pyroute2 message codecs they use
(C{pyroute2.netlink.rtnl.*msg}, C{pyroute2.netlink.nfnetlink.*}). Python runs
C{pyroute2/__init__.py} first, which imports all of pyroute2; the daemon's
entry point avoids that with L{keepalive_tx.processwide.lazyPackage}, an
explicit process-wide choice the library leaves to its host.
"""
