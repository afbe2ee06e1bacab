"""Transports: what a protocol sees of its connection.

``base.py``: the ``Protocol`` contract and the ``Transport`` base class;
``tcp.py``: ``SocketTransport`` over TCP and Unix sockets; ``tls.py``:
``TLSTransport`` (``ssl.SSLObject`` over memory BIOs, layered on a TCP
transport); ``tls_context.py``: server and client contexts, the acceptor
that puts TLS under each accepted connection, ``TLSInfo``.
"""
