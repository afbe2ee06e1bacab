"""Response serialisation helpers."""

from http import HTTPStatus

import pytest

from evloop.http.writer import (
    STATUS_LINES,
    AppFields,
    chunk,
    encode_fields,
    error_body,
    has_special_fields,
    status_line,
)


@pytest.mark.parametrize("status", list(HTTPStatus))
def test_pre_encoded_status_lines(status):
    assert status_line(status.value) == f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    assert status_line(status.value) is STATUS_LINES[status.value]


def test_unknown_status_has_empty_reason():
    assert status_line(599) == b"HTTP/1.1 599 \r\n"


@pytest.mark.parametrize("bad", [99, 600, 999, 1000, -1, "200"])
def test_invalid_status(bad):
    with pytest.raises(ValueError):
        status_line(bad)


def test_encode_fields():
    assert encode_fields([]) == b""
    assert encode_fields([("A", "1"), ("B", "")]) == b"A: 1\r\nB: \r\n"
    assert encode_fields([(b"A", b"\xff\t")]) == b"A: \xff\t\r\n"
    assert encode_fields([("A", "caf\xe9")]) == b"A: caf\xe9\r\n"


@pytest.mark.parametrize(
    "headers",
    [[("A", "1\r\nB: 2")], [("A", "\n")], [("A\r", "1")], [("A", "\x7f")], [(b"A", b"1\r\nB: 2")], [("A B", "1")]],
)
def test_encode_fields_refuses_splitting(headers):
    with pytest.raises(ValueError):
        encode_fields(headers)


def test_special_fields():
    assert not has_special_fields(b"Content-Type: text/plain\r\nX-Date: 1\r\n")
    for name in (b"Connection", b"content-length", b"TRANSFER-ENCODING", b"Date", b"Server"):
        assert has_special_fields(b"A: 1\r\n" + name + b": x\r\n")
    info = AppFields(b"A: 1\r\nContent-Length: 3\r\nConnection: Keep-Alive, Close\r\nTransfer-Encoding: x\r\n")
    assert info.block == b"A: 1\r\nConnection: Keep-Alive, Close\r\n"
    assert info.content_length == 3 and info.close and info.connection
    assert not info.date and not info.server
    with pytest.raises(ValueError):
        AppFields(b"Content-Length: 3\r\nContent-Length: 4\r\n")
    with pytest.raises(ValueError):
        AppFields(b"Content-Length: -3\r\n")


def test_chunk_and_error_body():
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert error_body(431, "too many header fields") == b"431 Request Header Fields Too Large: too many header fields\n"
