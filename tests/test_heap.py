"""The GC settings of a running service are in force only while one runs."""

from __future__ import annotations

import gc

from stream import heap


def test_nested_services_restore_the_settings_when_the_last_one_leaves() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    heap.enter_hot_path()
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert gc.get_freeze_count() > frozen_before  # the warmed-up heap is frozen
    heap.enter_hot_path()  # a second service in the same process
    heap.leave_hot_path()
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD  # the first one still runs
    heap.leave_hot_path()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
    heap.leave_hot_path()  # an extra leave changes nothing
    assert gc.get_threshold() == before


def test_cycles_are_still_collected_while_a_service_runs() -> None:
    heap.enter_hot_path()
    try:

        class Node:
            pass

        node = Node()
        node.self = node  # type: ignore[attr-defined]
        del node
        assert gc.collect() >= 1
    finally:
        heap.leave_hot_path()
