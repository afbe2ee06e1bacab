"""Errors raised by the HTTP layer."""


class ProtocolError(Exception):
    """The peer broke HTTP/1.1; answer ``status`` with ``Connection: close``.

    ``status`` is the response status the server should send (400, 413, 414,
    417, 431, 501, 505); ``reason`` is a short text for the response body and
    the log.  After it is raised the receiving side is finished: the server
    sends the error response (``ServerConnection.send_error_response``) and
    closes the connection once it is flushed.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class StateError(RuntimeError):
    """The server used a ServerConnection out of order (a bug in the caller).

    The message names the state and the event that had no transition.
    """
