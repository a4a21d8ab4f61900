"""
C{python3 -m keepalive_tx.demo}: see L{keepalive_tx.demo}.
"""

from keepalive_tx.demo.cli import main

raise SystemExit(main())
