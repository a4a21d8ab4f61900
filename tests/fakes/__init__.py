"""
The test doubles of keepalive_tx's edges, in one place, and the fixtures
that assemble them.

Every fake a test needs is here, once, under a name that says what it
stands in for (C{FakeVrrpPlatform}, C{FakeRtnetlinkKernel}, C{FakeSocket}
...); test modules import from here and never from one another
(C{tests/unit/test_selfcontained.py} checks both). They live with the
tests, not in the package: none of them is part of the embedding API, and
their knobs (interface names, recorded tuples) are the tests' business.

One module per part of keepalive_tx the fakes stand in for:
L{tests.fakes.sockets}, L{tests.fakes.netlink}, L{tests.fakes.net},
L{tests.fakes.vrrp} (and L{tests.fakes.vrrpmachine} for the bare state
machine), L{tests.fakes.check}, L{tests.fakes.lvs}, L{tests.fakes.scripts},
L{tests.fakes.bfd}, L{tests.fakes.alert}, L{tests.fakes.status} and
L{tests.fakes.service}. What integration test modules share is in
C{tests/integration/support.py}.
"""
