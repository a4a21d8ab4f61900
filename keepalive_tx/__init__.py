"""keepalived, rebuilt in Python on Twisted."""

from keepalive_tx._version import __version__

__all__ = ["__version__"]
