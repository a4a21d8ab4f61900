"""
Logs as keepalived writes them, for the filters and alerts operators already
have: syslog lines under keepalived's idents and facility, keepalived's
console (C{-l}) and log-file (C{-g}) formats.

  - L{keepalive_tx.logs.events}: which ident, priority and text lines an
    event becomes (pure).
  - L{keepalive_tx.logs.syslog}: RFC 3164 datagrams to C{/dev/log}.
  - L{keepalive_tx.logs.local}: the console and per-subsystem log files.
  - L{keepalive_tx.logs.entry}: the observers the command line asks for,
    installed by the twistd/twist entry point (never by the embeddable
    service).
"""
