"""``survivors_frozen``: what survives a full collection in a scope is frozen; the outermost end unfreezes."""

from __future__ import annotations

import gc
import weakref

import pytest

from mlpipe.orchestration.heap import survivors_frozen


class Node:
    """A cycle-capable object that can be weakly referenced."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


@pytest.fixture(autouse=True)
def nothing_frozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_of_a_full_collection_wait_for_the_scope_to_end():
    garbage_before, garbage_before_ref = cycle()
    del garbage_before
    with survivors_frozen():
        assert gc.get_freeze_count() == 0  # nothing is frozen on entry: the existing cycle ...
        gc.collect()
        assert garbage_before_ref() is None  # ... is collected by the scope's first full collection
        survivor, survivor_ref = cycle()
        gc.collect()
        assert gc.get_freeze_count() > 0  # everything alive after that collection is now frozen
        del survivor  # garbage now, but frozen: not collected while the scope is open
        gc.collect()
        assert survivor_ref() is not None
        young, young_ref = cycle()
        del young  # made after the last freeze: collected as usual
        gc.collect(0)
        gc.collect(1)
        assert young_ref() is None
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert survivor_ref() is None  # collected once the scope ended


def test_nested_scopes_unfreeze_only_at_the_outermost_end():
    with survivors_frozen():
        with survivors_frozen():
            gc.collect()
        assert gc.get_freeze_count() > 0
        gc.collect()
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_elsewhere_is_left_alone():
    keep, _ = cycle()
    gc.freeze()
    frozen = gc.get_freeze_count()
    with survivors_frozen():
        gc.collect()
        assert gc.get_freeze_count() == frozen  # the scope does not freeze ...
    assert gc.get_freeze_count() == frozen  # ... nor unfreeze someone else's objects
    assert keep.other is not None


def test_scope_ends_on_error():
    with pytest.raises(RuntimeError), survivors_frozen():
        gc.collect()
        raise RuntimeError("node failed")
    assert gc.get_freeze_count() == 0
