"""A re-plan that keeps what runs is recognised whatever the order, duplicates or zero entries, so the
autoscaler applies and publishes nothing for it."""

from __future__ import annotations

from workflows.autoscale import same_items
from workflows.types import Item


def test_same_replicas_in_another_shape_are_the_same_items() -> None:
    now = [Item("c1", "p1", "fp8", 1, 2), Item("c2", "p2", "fp8", 1, 1)]
    assert same_items(now, [Item("c2", "p2", "fp8", 1, 1), Item("c1", "p1", "fp8", 1, 1), Item("c1", "p1", "fp8", 1, 1)])
    assert same_items(now, [*now, Item("c3", "p3", "fp8", 1, 0)])


def test_any_change_of_count_pool_variant_or_tp_is_a_change() -> None:
    now = [Item("c1", "p1", "fp8", 1, 2)]
    assert not same_items(now, [Item("c1", "p1", "fp8", 1, 3)])
    assert not same_items(now, [Item("c1", "p9", "fp8", 1, 2)])
    assert not same_items(now, [Item("c1", "p1", "bf16", 1, 2)])
    assert not same_items(now, [Item("c1", "p1", "fp8", 2, 2)])
    assert not same_items(now, [])
