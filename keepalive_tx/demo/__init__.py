"""
A demo of keepalive_tx's main job, on this machine, as root::

    python3 -m keepalive_tx.demo

Two directors running C{twistd keepalived} share a virtual IP and balance
two web servers, in network namespaces of their own (192.0.2.0/24); a web
server and then the master director stop and come back while the demo shows
who holds the VIP, the pool, the alert mails and the failover time a client
sees.  Everything it creates is removed at the end.

  - L{keepalive_tx.demo.scenario}: the story and its timeline;
  - L{keepalive_tx.demo.cast}: the machines and the processes they run;
  - L{keepalive_tx.demo.network}: the namespaces;
  - L{keepalive_tx.demo.status}: reading and showing a director's status API;
  - L{keepalive_tx.demo.probe}: the client's outage, from C{ping -D};
  - L{keepalive_tx.demo.smtpsink}: the mail server (C{twisted.mail});
  - C{keepalived.conf}: the directors' configuration.

The driver is a script: it blocks and polls.  The daemons it runs are the
real C{twistd keepalived}, unchanged.
"""
