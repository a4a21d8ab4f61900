"""
BFD (RFC 5880 / RFC 5881): keepalived's C{bfd_instance}s, single-hop
asynchronous mode over UDP, on the same reactor as VRRP and the checkers.

  - L{keepalive_tx.bfd.packet}: the control-packet codec (pure);
  - L{keepalive_tx.bfd.session}: one session's state machine (pure, on an
    injected clock);
  - L{keepalive_tx.bfd.transport}: the UDP sockets (receive port with the
    TTL / hop limit from ancillary data, per-session send sockets);
  - L{keepalive_tx.bfd.service}: L{BfdService}, every configured session,
    demultiplexing received packets and telling VRRP tracking and
    C{BFD_CHECK} checkers when a session goes up or down.
"""
