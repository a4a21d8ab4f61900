"""
The namespace lab itself: hosts reach each other and everything is removed.
"""

import subprocess

from twisted.trial.unittest import TestCase

from tests.integration.netns import Lab, requireLab


class LabTests(TestCase):
    def test_pingAndCleanup(self) -> None:
        requireLab()
        lab = Lab(2)
        try:
            lab.create()
            h1, h2 = lab.hosts
            h1.run("ping", "-c", "1", "-W", "2", h2.ipv4)
            h1.run("ping", "-6", "-c", "1", "-W", "2", h2.ipv6)
            self.assertIn(h1.ipv4, h1.addresses(4))
            names = list(lab._created)
        finally:
            lab.destroy()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for name in names:
            self.assertNotIn(name, listed)
