"""
The version, in a module of its own: the package's modules read it from
here, below everything (C{keepalive_tx/__init__.py} is the public facade at
the top; see docs/architecture.md), and C{setup.py} reads this file.
"""

__version__ = "0.1.0"
