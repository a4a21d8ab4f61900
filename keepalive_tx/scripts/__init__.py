"""
Running operators' scripts, shared by every part that runs one (VRRP notify
and tracking scripts, MISC_CHECK, LVS quorum and notify scripts, the notify
FIFOs' reader scripts).

This package sits below the domains (C{vrrp}, C{lvs}, C{check}) and imports
nothing of theirs (docs/architecture.md, "Layers"):

  - L{keepalive_tx.scripts.runner}: L{ScriptRunner}, which runs a script
    without ever blocking the reactor, with a timeout (TERM, then KILL);
  - L{keepalive_tx.scripts.security}: keepalived's C{script_user} and
    C{enable_script_security}, and the start-up findings about scripts;
  - L{keepalive_tx.scripts.scriptfile}: what keepalived finds out about a
    script's file before it agrees to run it;
  - L{keepalive_tx.scripts.procgroup}: a process group per script, so that
    everything it started can be signalled at once;
  - L{keepalive_tx.scripts.fifo}: the notify FIFOs VRRP and LVS write their
    lines to (and the scripts reading them are started with).
"""
