"""Pausing the cyclic garbage collector over a chunk of bulk work, and collecting after."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from memberlab.core.gcpause import collect_young, collector_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """Two objects referring to each other, no longer reachable: only the collector frees
    them. A weak reference tells whether it has."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the inner block leaves it off
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_blocks_of_two_threads_leave_it_off_until_both_end() -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with collector_paused():
        second_in.set()
        first_out.wait(5)
        assert not gc.isenabled()  # the first block ended, this one has not
    thread.join(5)
    assert gc.isenabled()


def test_an_error_inside_still_turns_it_back_on() -> None:
    with pytest.raises(ValueError, match="chunk failed"), collector_paused():
        raise ValueError("a chunk failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_cycles_made_in_a_pause_wait_for_collect_young() -> None:
    with collector_paused():
        ref = cycle()
        kept = [[] for _ in range(10_000)]  # allocations that would set off a collection
        assert ref() is not None
        collect_young()
        assert ref() is None
    assert len(kept) == 10_000
