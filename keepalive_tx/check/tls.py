# -*- test-case-name: tests.integration.test_check_http -*-
"""
TLS client side of SSL_GET (and C{genhash -S}).

Like keepalived, the server certificate is B{not} verified by default: a
health check asks "does this server answer", not "is this the server I
trust".  SNI is sent only when asked for (keepalived's C{enable_sni}).

Verification is an opt-in (C{TlsClientOptions(verify=True)}): it goes through
Twisted's public L{optionsForClientTLS}, i.e. service_identity, against the
SNI name (or the connect IP when there is none) and either a CA file or the
platform trust store.

Contexts are built once per distinct (name, verify, CA) and shared by every
connection of a checker; building an C{SSL.Context} per check would cost
more than the check itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer


@dataclass(frozen=True, slots=True)
class TlsClientOptions:
    """
    TLS options of an SSL_GET checker.

    @ivar enableSni: send SNI (keepalived's C{enable_sni}).
    @ivar sniName: SNI name (keepalived's C{sni_name}); when L{None} the
        URL's / checker's virtualhost is used.
    @ivar verify: verify the server certificate (not keepalived behaviour).
    @ivar caFile: PEM file of trusted CAs for C{verify}; L{None} = the
        platform trust store.
    @ivar tlsCompliant: send close_notify when closing (keepalived's
        C{tls_compliant}).
    """

    enableSni: bool = False
    sniName: str | None = None
    verify: bool = False
    caFile: str | None = None
    tlsCompliant: bool = False


_sharedContext: SSL.Context | None = None


def noVerifyContext() -> SSL.Context:
    """
    @return: the process-wide client context that verifies nothing.
    """
    global _sharedContext
    if _sharedContext is None:
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_verify(SSL.VERIFY_NONE, None)
        ctx.set_options(SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3 | SSL.OP_NO_COMPRESSION)
        # a server that closes without close_notify is normal for health checks
        ctx.set_options(getattr(SSL, "OP_IGNORE_UNEXPECTED_EOF", 0))
        _sharedContext = ctx
    return _sharedContext


@implementer(IOpenSSLClientConnectionCreator)
class NoVerifyClientCreator:
    """
    Creates client connections that send SNI (optionally) and verify nothing.
    """

    def __init__(self, serverName: str | None, context: SSL.Context | None = None) -> None:
        self.serverName = serverName
        self._sni = serverName.encode("idna") if serverName else None
        self._context = context if context is not None else noVerifyContext()

    def clientConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        conn = SSL.Connection(self._context, None)
        if self._sni is not None:
            conn.set_tlsext_host_name(self._sni)
        return conn


def clientCreator(
    options: TlsClientOptions, serverName: str | None, connectIp: str
) -> IOpenSSLClientConnectionCreator:
    """
    Build the connection creator for one SNI name.

    @param serverName: the SNI name to send (already resolved from
        C{sni_name} / virtualhost), or L{None} for no SNI.
    @param connectIp: the server address, the identity checked when
        verifying without a name.
    """
    if not options.verify:
        return NoVerifyClientCreator(serverName if options.enableSni else None)
    from twisted.internet.ssl import Certificate, optionsForClientTLS, platformTrust

    if options.caFile is not None:
        with open(options.caFile, "rb") as f:
            trustRoot = Certificate.loadPEM(f.read())
    else:
        trustRoot = platformTrust()
    return optionsForClientTLS(serverName or connectIp, trustRoot=trustRoot)
