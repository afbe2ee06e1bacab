"""Transports: what a protocol sees of its connection.

``base.py``: the ``Protocol`` contract, the ``Transport`` base class and the
water marks every transport with a write buffer shares (``WriteFlowControl``);
``tcp.py``: ``SocketTransport`` over TCP and Unix sockets; ``tls.py``:
``TLSTransport`` (``ssl.SSLObject`` over memory BIOs, layered on a TCP
transport); ``tls_context.py``: server and client contexts, the acceptor
that puts TLS under each accepted connection, ``TLSInfo``; ``udp.py``:
datagram transports (UDP, Unix datagram sockets); ``pipes.py`` and
``process.py``: child processes with pipes (``spawn``); ``unix.py``: Unix
socket paths.

Name resolution: ``resolver.py`` (``Resolver``, behind ``reactor.resolve``)
over ``dns_query.py`` (one question over UDP/TCP), ``dns_message.py`` (the
sans-I/O codec) and ``dns_config.py`` (``resolv.conf`` and ``hosts``).
"""
