"""Transports: what a protocol sees of its connection.

``base.py``: the ``Protocol`` contract and the ``Transport`` base class;
``tcp.py``: ``SocketTransport`` over TCP and Unix sockets; ``tls.py``:
``TLSTransport`` (``ssl.SSLObject`` over memory BIOs, layered on a TCP
transport); ``tls_context.py``: server and client contexts, the acceptor
that puts TLS under each accepted connection, ``TLSInfo``.

Name resolution: ``resolver.py`` (``Resolver``, behind ``reactor.resolve``)
over ``dns_query.py`` (one question over UDP/TCP), ``dns_message.py`` (the
sans-I/O codec) and ``dns_config.py`` (``resolv.conf`` and ``hosts``).
"""
