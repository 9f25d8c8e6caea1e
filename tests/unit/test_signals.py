"""Signals held over a critical section are delivered, once each, when it ends."""

from __future__ import annotations

import signal
import threading

import pytest

from harness.signals import signals_deferred


def test_a_signal_inside_the_block_takes_effect_after_it() -> None:
    done = []

    def critical_section() -> None:
        with signals_deferred():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # twice: delivered once
            done.append("the block ran to its end")

    with pytest.raises(KeyboardInterrupt):
        critical_section()
    assert done == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_handlers_in_place_are_restored_and_called() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with signals_deferred():
            signal.raise_signal(signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_it_changes_nothing() -> None:
    handlers = []

    def body() -> None:
        with signals_deferred():
            handlers.append(signal.getsignal(signal.SIGINT))

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert handlers == [signal.default_int_handler]
