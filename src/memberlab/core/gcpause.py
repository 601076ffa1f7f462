"""Pausing Python's cyclic garbage collector over a burst of work that keeps what it makes.

The collector runs a full collection each time the objects that survived its younger
generations have grown by a quarter, and a full collection walks every tracked object of
the process. A chunk of a bulk import makes hundreds of thousands of objects (states, lots,
entries, rows) and keeps them until the chunk is written, so the collector walked the
growing heap again and again: working out 100,000 purchases in one process took 17 full
collections, 5.9 s of 14.6 s of CPU, and found next to nothing to free (the rules make no
reference cycles; reference counting frees what they drop).

Paused over one chunk, the collector walks the chunk's objects once, after it. Whatever
cycles the chunk did make are collected then, so memory stays bounded by a chunk.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0  # blocks inside ``collector_paused`` now, in any thread
_enable_after = False  # whether the collector was on when the first of them began


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside the block (reference counting still frees
    objects as usual), and back on after the last of the blocks open at once ends (imports
    may run side by side in a server's threads) if it was on before the first; even on an
    error."""
    global _pauses, _enable_after
    with _lock:
        if _pauses == 0:
            _enable_after = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _enable_after:
                gc.enable()


def collect_young() -> None:
    """Within a long pause (a whole import), between its chunks: collect what was made since
    the last call (the two young generations), so that cycles among a chunk's objects are
    freed with it. It walks only those objects, not the whole heap as a full collection
    would; what survives is left to the next full collection after the pause."""
    gc.collect(1)
