"""Unix socket files: a live server's file is never taken over or removed by another; a stale one is replaced."""

from __future__ import annotations

import errno
import os
import socket
import stat

import pytest

from evloop import Protocol, Reactor, listen
from evloop.binds import BindError, open_bind, parse_bind
from evloop.net.unix import SocketFile, unlink_stale_socket


def _inode(path) -> int:
    return os.stat(path).st_ino


def test_a_live_listener_is_not_taken_over(tmp_path):
    path = str(tmp_path / "s.sock")
    first = open_bind(parse_bind(f"unix:{path}"), backlog=8)
    try:
        inode = _inode(path)
        with pytest.raises(BindError) as info:
            open_bind(parse_bind(f"unix:{path}"), backlog=8)
        assert info.value.__cause__.errno == errno.EADDRINUSE
        assert _inode(path) == inode  # the first server's file is still there
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)  # and still reaches the first server
            server_side, _ = first[0].accept()
            server_side.close()
    finally:
        for sock in first:
            sock.close()


def test_a_stale_socket_file_is_replaced(tmp_path):
    path = str(tmp_path / "s.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # the file stays, nobody answers
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    sockets = open_bind(parse_bind(f"unix:{path}"), backlog=8)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
    finally:
        for sock in sockets:
            sock.close()


def test_a_datagram_socket_in_use_is_kept(tmp_path):
    path = str(tmp_path / "d.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as live:
        live.bind(path)
        with pytest.raises(OSError) as info:
            unlink_stale_socket(path, socket.SOCK_DGRAM)
        assert info.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError):
            unlink_stale_socket(path)  # probed as a stream socket: a live socket of another type
        assert os.path.exists(path)


def test_closing_does_not_remove_a_file_another_server_bound_since(tmp_path):
    path = str(tmp_path / "s.sock")
    with Reactor() as reactor:
        old = listen(reactor, Protocol, path=path)
        # The path is taken over by another process meanwhile (as after a deploy that removed ours).
        os.unlink(path)
        newer = socket.socket(socket.AF_UNIX)
        newer.bind(path)
        newer.listen(1)
        try:
            old.close()
            assert os.path.exists(path), "the newer server's socket file was removed"
        finally:
            newer.close()
        mine = listen(reactor, Protocol, path=str(tmp_path / "t.sock"))
        mine.close()
        assert not os.path.exists(tmp_path / "t.sock")  # our own file is removed


def test_socket_file_of_an_abstract_name_is_none():
    assert SocketFile.of("\0evloop-test") is None
    assert SocketFile.of(None) is None
