"""The bounded sketches behind the top lists and distinct counts: bounds and exact merges."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxgate_gateway.report.distinct import Distinct
from mxgate_gateway.report.topk import TopK

names = st.lists(st.sampled_from([f"d{i}.test" for i in range(40)]), max_size=300)
wide = st.lists(st.integers(0, 5000).map(lambda i: f"s{i}.test"), max_size=400)


def check_bounds(top: TopK, truth: Counter[str]) -> None:
    """Space-Saving's guarantees against the true counts."""
    tracked = {e.name: e for e in top.top()}
    assert len(tracked) <= top.capacity
    for name, true in truth.items():
        if name in tracked:
            e = tracked[name]
            assert e.guaranteed <= true <= e.count, (name, e, true)
        else:
            assert true <= top.floor, (name, true, top.floor)


@given(names, st.integers(1, 50))
def test_top_list_memory_is_bounded_and_counts_are_bounded(stream: list[str], cap: int) -> None:
    """At most `capacity` names; counts bracket the truth; untracked names stay under the floor."""
    top = TopK(cap)
    for n in stream:
        top.add(n)
    check_bounds(top, Counter(stream))


@given(names)
def test_top_list_is_exact_while_names_fit(stream: list[str]) -> None:
    """With at most `capacity` distinct names the counts are exact and the floor is zero."""
    top = TopK(40)
    for n in stream:
        top.add(n)
    assert {e.name: e.count for e in top.top()} == Counter(stream)
    assert top.floor == 0
    assert all(e.error == 0 for e in top.top())


@given(names, names, st.integers(1, 50))
def test_merged_top_lists_keep_the_guarantees(a: list[str], b: list[str], cap: int) -> None:
    """Merging two gateways' top lists brackets the combined truth like one gateway would."""
    ta, tb = TopK(cap), TopK(cap)
    for n in a:
        ta.add(n)
    for n in b:
        tb.add(n)
    ta.merge(tb)
    check_bounds(ta, Counter(a) + Counter(b))


@given(names, names)
def test_merge_of_exact_top_lists_adds_counts(a: list[str], b: list[str]) -> None:
    """When everything fits, merge equals counting both streams in one place."""
    ta, tb, both = TopK(100), TopK(100), TopK(100)
    for n in a:
        ta.add(n)
        both.add(n)
    for n in b:
        tb.add(n)
        both.add(n)
    ta.merge(tb)
    assert ta.top() == both.top()
    assert ta.to_json() == both.to_json()


def test_a_heavy_sender_survives_a_flood_of_one_off_senders() -> None:
    """A name with more than N/capacity of the traffic is kept, its count bracketed."""
    top = TopK(10)
    for i in range(2000):
        top.add(f"oneoff{i}.test")
        if i % 4 == 0:
            top.add("heavy.test")
    first = top.top(1)[0]
    assert first.name == "heavy.test"
    assert first.guaranteed <= 500 <= first.count


@settings(max_examples=60)
@given(wide, st.integers(0, 32))
def test_distinct_memory_is_bounded(stream: list[str], limit: int) -> None:
    """An estimator stores at most `exact_limit` names or `2**precision` registers."""
    d = Distinct(exact_limit=limit, precision=6)
    for n in stream:
        d.add(n)
        assert d.footprint() <= max(limit, 64)
    assert d.is_exact is (len(set(stream)) <= limit)
    if d.is_exact:
        assert d.estimate() == len(set(stream))


@settings(max_examples=60)
@given(wide, wide, st.integers(0, 32))
def test_distinct_merge_is_exact(a: list[str], b: list[str], limit: int) -> None:
    """merge(est(A), est(B)) has the same state as est(A then B): a union, not a sum."""
    da, db, both = (Distinct(exact_limit=limit, precision=6) for _ in range(3))
    for n in a:
        da.add(n)
        both.add(n)
    for n in b:
        db.add(n)
        both.add(n)
    da.merge(db)
    assert da.to_json() == both.to_json()
    assert Distinct.from_json(da.to_json(), exact_limit=limit, precision=6).to_json() == (
        both.to_json()
    )


@pytest.mark.parametrize("n", [500, 5000, 50000])
def test_hyperloglog_estimate_is_close(n: int) -> None:
    """Above the exact limit the estimate stays within 5 % (about three standard errors)."""
    d = Distinct()
    for i in range(n):
        d.add(f"sender{i}.example")
    assert not d.is_exact
    assert d.footprint() == 4096
    assert abs(d.estimate() - n) <= 0.05 * n


@pytest.mark.parametrize(
    "state",
    [
        None,
        {"exact": "a"},
        {"precision": 12, "registers": "!!"},
        {"precision": 11, "registers": ""},
        {"precision": 12, "registers": ""},
    ],
)
def test_distinct_rejects_malformed_state(state: object) -> None:
    """A report body with a broken estimator is refused, not half-merged."""
    with pytest.raises(ValueError):  # noqa: PT011 - every malformation is a ValueError
        Distinct.from_json(state)


@pytest.mark.parametrize(
    "state",
    [
        None,
        {"capacity": 2, "floor": 0},
        {"capacity": 2, "floor": 0, "counters": [["a", 1, 2]]},
        {"capacity": 1, "floor": 0, "counters": [["a", 1, 0], ["b", 1, 0]]},
        {"capacity": 2, "floor": -1, "counters": []},
        {"capacity": 2, "floor": 0, "counters": [["a", True, 0]]},
    ],
)
def test_top_list_rejects_malformed_state(state: object) -> None:
    """Counts must be non-negative integers, error ≤ count, and rows ≤ capacity."""
    with pytest.raises(ValueError):  # noqa: PT011 - every malformation is a ValueError
        TopK.from_json(state)
