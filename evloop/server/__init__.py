"""The HTTP server: glue between transports, the sans-I/O protocols and the app.

- ``config``: ``ServerConfig``.
- ``registry``: ``Server``, its listeners, the registry of connections, shutdown.
- ``context``: the narrow interface a connection's protocol sees of its server.
- ``phases``: the phase machine of a connection, its one transition table.
- ``h1``: ``HTTPProtocol``, HTTP/1.1 over a transport.
- ``access_log``: the access log's formatter and buffered handler.
- ``metrics``: the server's figures and the ``--metrics-path`` / ``--status-path`` routes.
"""

from .access_log import AccessLog, BufferedAccessHandler, install_access_handler
from .config import ServerConfig
from .h1 import HTTPProtocol
from .phases import Phase, PhaseError
from .registry import Server, address_url

__all__ = [
    "ServerConfig", "Server", "HTTPProtocol", "address_url", "Phase", "PhaseError", "AccessLog",
    "BufferedAccessHandler", "install_access_handler",
]
