"""``evloop.exits.is_stop_request``: a signal's stop request told apart from an application's exception."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from evloop.exits import is_stop_request


def _raised(exc_type: type[BaseException]) -> BaseException:
    try:
        raise exc_type()
    except BaseException as exc:
        return exc


@pytest.fixture
def sigint_routed_away():
    """SIGINT handled by a Python function that does not raise, as evloop.serve's router does."""
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    yield
    signal.signal(signal.SIGINT, previous)


def test_code_raising_systemexit_is_not_a_stop_request():
    assert not is_stop_request(_raised(SystemExit))


def test_code_raising_keyboardinterrupt_is_not_one_once_sigint_is_routed_away(sigint_routed_away):
    assert not is_stop_request(_raised(KeyboardInterrupt))


def test_keyboardinterrupt_under_pythons_own_ctrl_c_handler_counts_as_ctrl_c():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert is_stop_request(_raised(KeyboardInterrupt))


def test_an_exit_raised_by_a_python_signal_handler_is_a_stop_request():
    def on_usr1(signum, frame):
        sys.exit(7)

    previous = signal.signal(signal.SIGUSR1, on_usr1)
    try:
        with pytest.raises(SystemExit) as info:
            os.kill(os.getpid(), signal.SIGUSR1)
            signal.sigtimedwait([], 0)  # a bytecode boundary after delivery; the handler has run by now
        assert is_stop_request(info.value)
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_other_exceptions_are_never_stop_requests():
    assert not is_stop_request(_raised(ValueError))
    assert not is_stop_request(_raised(GeneratorExit))
