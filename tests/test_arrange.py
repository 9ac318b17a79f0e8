"""query/arrange.py: built-in views, sort keys, grouping, text search (pure polars)."""

from __future__ import annotations

import polars as pl
import pytest

from evaltui.query.arrange import (
    BUILTIN_VIEWS,
    SearchIndex,
    builtin_filter,
    group_frame,
    search_rows,
    sort_frame,
    toggle_sort_key,
)
from evaltui.query.filter import filter_frame


def frame() -> pl.DataFrame:
    return pl.DataFrame({
        "root_span_id": ["a", "b", "c", "d", "e", "f"],
        "scores.acc": [0.5, None, 0.9, 0.1, float("nan"), 0.5],
        "duration": [3.0, 1.0, 2.0, 5.0, 4.0, 6.0],
        "metadata": ['{"team": {"name": "x"}}', '{"team": {"name": "y"}}', "{}", '{"team": {"name": "x"}}',
                     None, '{"team": {"name": "y"}}'],
        "metadata.model": ["m1", "m2", "m1", None, "m2", "m1"],
        "input": ["Where is my ORDER?", "hello", "refund please", "order status", None, "hi"],
        "output": ["it ships", "hi", "no", "an order", "x", "y"],
        "error": [None, "Timeout: 30s\nstack", None, "Timeout: 30s\nother", None, None],
        "scorer_errors": [0, 1, 0, 0, 2, 0],
        "review_status": ["unreviewed", "reviewed", None, "unreviewed", "in review", "unreviewed"],
        "assignee": ["o'brien", None, "bob", "o'brien", None, None],
        "tags": ['["a","b"]', "[]", '["a"]', None, '["a","b"]', '["b"]'],
    })


def ids(f: pl.DataFrame) -> list[str]:
    return f["root_span_id"].to_list()


@pytest.mark.parametrize(("view", "expected"), [
    ("Non-errors", ["a", "c", "e", "f"]),
    ("Errors", ["b", "d"]),
    ("Scorer errors", ["b", "e"]),
    ("Unreviewed", ["a", "c", "d", "f"]),
    ("Assigned to me", ["a", "d"]),
])
def test_builtin_views_select_their_rows(view: str, expected: list[str]) -> None:
    text = builtin_filter(view, "o'brien")
    assert text is not None
    assert ids(filter_frame(frame(), text)) == expected


def test_default_view_has_no_filter_and_every_builtin_has_a_name() -> None:
    assert builtin_filter("Default", "me") is None
    assert list(BUILTIN_VIEWS) == ["Default", "Non-errors", "Errors", "Scorer errors", "Unreviewed", "Assigned to me"]


def test_sort_is_multi_key_with_nulls_and_nan_last_both_ways() -> None:
    f = frame()
    assert ids(sort_frame(f, [("scores.acc", False)])) == ["d", "a", "f", "c", "b", "e"]
    assert ids(sort_frame(f, [("scores.acc", True)])) == ["c", "a", "f", "d", "b", "e"]
    # ties on the first key are ordered by the second
    assert ids(sort_frame(f, [("scores.acc", True), ("duration", True)])) == ["c", "f", "a", "d", "e", "b"]
    assert ids(sort_frame(f, [("no such column", True)])) == ids(f)


def test_sort_keys_toggle_add_flip_remove() -> None:
    keys = toggle_sort_key([], "a", False)
    assert keys == [("a", False)]
    keys = toggle_sort_key(keys, "b", True)
    assert keys == [("a", False), ("b", True)]
    keys = toggle_sort_key(keys, "a", True)
    assert keys == [("a", True), ("b", True)]
    assert toggle_sort_key(keys, "b", True) == [("a", True)]


def test_group_by_column_orders_groups_and_keeps_rows_together() -> None:
    f = sort_frame(frame(), [("duration", False)])
    out, groups = group_frame(f, "model")  # the shortcut for metadata.model
    assert [(g.label, g.count) for g in groups] == [("m1", 3), ("m2", 2), ("(none)", 1)]
    assert ids(out) == ["c", "a", "f", "b", "e", "d"]  # by duration inside each group
    assert [g.start for g in groups] == [0, 3, 5]
    m1 = groups[0]
    assert m1.means["scores.acc"] == pytest.approx((0.5 + 0.9 + 0.5) / 3)
    assert m1.means["duration"] == pytest.approx((3 + 2 + 6) / 3)
    assert groups[1].means["scores.acc"] is None  # a null and a NaN: no mean


def test_group_orders_by_lowest_score_or_name_and_by_nested_metadata_error_tags() -> None:
    f = frame()
    _, groups = group_frame(f, "metadata.model", "score:scores.acc")
    assert [g.label for g in groups] == ["(none)", "m1", "m2"]  # 0.1, 0.63, none last
    _, groups = group_frame(f, "metadata.team.name", "name")
    assert [(g.label, g.count) for g in groups] == [("(none)", 2), ("x", 2), ("y", 2)]
    _, groups = group_frame(f, "error")
    assert [(g.label, g.count) for g in groups] == [("(none)", 4), ("Timeout: 30s", 2)]
    _, groups = group_frame(f, "tags", "name")
    assert [g.label for g in groups] == ["(none)", "a", "a, b", "b"]
    out, groups = group_frame(f, "nope")  # a path these rows lack: one group of all
    assert [(g.label, g.count) for g in groups] == [("(none)", 6)] and ids(out) == ids(f)


def test_search_is_case_insensitive_literal_across_text_columns() -> None:
    f = frame()
    assert search_rows(f, "ORDER") == [0, 3]
    assert search_rows(f, "team") == [0, 1, 3, 5]  # metadata
    assert search_rows(f, "%") == []  # literal, not a pattern
    assert search_rows(f, "") == []


def test_search_treats_regex_characters_as_text() -> None:
    f = pl.DataFrame({"input": ["a.b (x)", "axb", "A.B"], "output": [None, "[x]", "c*d"]})
    assert search_rows(f, "a.b") == [0, 2]  # the dot is a dot
    assert search_rows(f, "(x") == [0]  # an unbalanced parenthesis is text, not an error
    assert search_rows(f, "[X]") == [1]
    assert search_rows(f, "C*") == [2]


def test_search_index_typed_letter_by_letter_finds_what_a_fresh_search_finds() -> None:
    # the search bar asks the index at every keystroke; each longer text searches only the
    # rows a shorter one matched, which must never lose or add a row
    words = ["Damaged item", "damaged ITEM!", "dam", "item damaged", "İstanbul", "istanbul", "STRASSE",
             "straße", "\u212a-kelvin", "K-kelvin", None, "a.b*c", "x" * 50]
    f = pl.DataFrame({
        "input": [words[i % len(words)] for i in range(400)],
        "output": [words[(i * 7) % len(words)] for i in range(400)],
        "expected": [None] * 400,
        "metadata": [f'{{"n": {i}}}' for i in range(400)],
    })
    SearchIndex.NARROW = 1.0  # narrow at every step here, to exercise it
    try:
        for text in ["damaged item", "İstanbul", "straße", "k-kelvin", "a.b*c", "xxxx", "n\": 39"]:
            index = SearchIndex(f)
            for end in range(1, len(text) + 1):
                typed = text[:end]
                assert index.hits(typed) == search_rows(f, typed), typed
                assert index.known(typed) == search_rows(f, typed)
        index = SearchIndex(f)
        assert index.known("dam") is None  # never searched: nothing known yet
        assert index.hits("DAMAGED") == index.hits("damaged") == search_rows(f, "damaged") != []
    finally:
        SearchIndex.NARROW = 0.25


def test_search_index_runs_one_search_for_threads_asking_the_same_text() -> None:
    from concurrent.futures import ThreadPoolExecutor

    f = pl.DataFrame({"input": [f"row {i} order" if i % 3 else f"row {i}" for i in range(3000)]})
    index = SearchIndex(f)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(index.hits, ["ORDER"] * 8))
    assert all(r == search_rows(f, "order") for r in results) and len(results[0]) == 2000
