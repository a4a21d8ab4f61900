from twisted.application.service import ServiceMaker

keepalived = ServiceMaker("keepalive_tx", "keepalive_tx.tap", "keepalived (VRRP + LVS health checks) on Twisted", "keepalived")
