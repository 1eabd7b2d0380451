"""read_ahead: the same items in order, computed one ahead in another thread."""

from __future__ import annotations

import threading

import pytest

from mlpipe.io.read_ahead import read_ahead


def test_items_in_order_and_computed_in_another_thread():
    threads = []

    def items():
        for k in range(50):
            threads.append(threading.get_ident())
            yield k

    assert list(read_ahead(items())) == list(range(50))
    assert set(threads) == {threads[0]} and threads[0] != threading.get_ident()


def test_the_next_item_is_computed_before_the_caller_asks_for_it():
    next_started = threading.Event()

    def items():
        yield 0
        next_started.set()
        yield 1

    iterator = read_ahead(items())
    assert next(iterator) == 0
    assert next_started.wait(10)  # a serial iterator would start item 1 only on the next call
    assert list(iterator) == [1]


def test_an_error_of_the_items_is_raised_to_the_caller_after_the_items_before_it():
    def failing():
        yield 1
        raise ValueError("bad record 2")

    seen = []
    with pytest.raises(ValueError, match="bad record 2"):
        for item in read_ahead(failing()):
            seen.append(item)
    assert seen == [1]


def test_closing_early_stops_reading():
    produced = []

    def items():
        for k in range(100):
            produced.append(k)
            yield k

    iterator = read_ahead(items())
    assert next(iterator) == 0
    iterator.close()
    assert len(produced) <= 2  # the one in work when closed, nothing after it
