"""Built-in scorers (evaltui.sdk.scorers): known cases, names, explanations, use in Eval."""

from __future__ import annotations

import random

import pytest

from evaltui.sdk.eval import Eval, Score
from evaltui.sdk.scorers import (
    BUILTIN_SCORERS,
    Contains,
    ExactMatch,
    JsonDiff,
    LengthBounds,
    Levenshtein,
    NumericCloseness,
    Regex,
    ValidJSON,
    exact_match,
    levenshtein_distance,
)
from evaltui.store import Store, load_trace_rows, load_trace_spans


def value(score: Score) -> float | None:
    assert isinstance(score, Score)
    assert isinstance(score.metadata["explanation"], str) and score.metadata["explanation"]
    return score.score


# -- exact match ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scorer", "output", "expected", "want"),
    [
        (ExactMatch(), "Paris", "Paris", 1.0),
        (ExactMatch(), "Paris", "paris", 0.0),
        (ExactMatch(), "Paris ", "Paris", 0.0),
        (ExactMatch(case_sensitive=False), "PARIS", "paris", 1.0),
        (ExactMatch(strip=True), "  Paris\n", "Paris", 1.0),
        (ExactMatch(collapse_whitespace=True), "New   York\n", "New York", 1.0),
        (ExactMatch(ignore_punctuation=True), "Paris.", "Paris", 1.0),
        (ExactMatch(unicode_normalize="NFKC"), "ﬁne", "fine", 1.0),
        (ExactMatch(), {"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, 1.0),  # canonical JSON
        (ExactMatch(), 4, "4", 1.0),
        (ExactMatch(), [1, 2], [2, 1], 0.0),
        (ExactMatch(), None, "x", 0.0),
    ],
)
def test_exact_match(scorer, output, expected, want):
    assert value(scorer(output=output, expected=expected)) == want


def test_exact_match_explains_where_texts_differ_and_skips_without_expected():
    s = exact_match(output="the cat sat", expected="the cot sat")
    assert s.score == 0.0 and "character 6" in s.metadata["explanation"]
    skipped = exact_match(output="x", expected=None)
    assert skipped.score is None and "skipped" in skipped.metadata["explanation"]
    with pytest.raises(ValueError, match="unicode_normalize"):
        ExactMatch(unicode_normalize="NFX")


# -- Levenshtein ---------------------------------------------------------------------------------


def dp_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [("kitten", "sitting", 3), ("", "", 0), ("", "abc", 3), ("abc", "", 3), ("flaw", "lawn", 2),
     ("gumbo", "gambol", 2), ("ünïcødé", "unicode", 4), ("a" * 70, "a" * 69 + "b", 1)],
)
def test_levenshtein_distance_known(a, b, d):
    assert levenshtein_distance(a, b) == d == levenshtein_distance(b, a)


def test_levenshtein_distance_matches_dynamic_programming():
    rng = random.Random(7)
    for _ in range(2000):
        a = "".join(rng.choice("abcé") for _ in range(rng.randint(0, 90)))
        b = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 90)))
        assert levenshtein_distance(a, b) == dp_distance(a, b), (a, b)


def test_levenshtein_similarity():
    assert value(Levenshtein()(output="kitten", expected="sitting")) == pytest.approx(1 - 3 / 7)
    assert value(Levenshtein()(output="", expected="")) == 1.0
    assert value(Levenshtein()(output="abc", expected="")) == 0.0
    assert value(Levenshtein(case_sensitive=False)(output="ABC", expected="abc")) == 1.0
    s = Levenshtein()(output="kitten", expected="sitting")
    assert s.metadata["distance"] == 3 and s.name == "levenshtein"
    assert Levenshtein()(output="x", expected=None).score is None


# -- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected", "want"),
    [(10, 10, 1.0), (9, 10, 0.9), (11, 10, 1 - 1 / 11), (0, 0, 1.0), (0, 5, 0.0), (-5, 5, 0.0),
     ("1,000", 1000, 1.0), (" 2.5 ", "2.5", 1.0), (5, -5, 0.0), ("n/a", 3, 0.0), (True, 1, 0.0)],
)
def test_numeric_closeness(output, expected, want):
    assert value(NumericCloseness()(output=output, expected=expected)) == pytest.approx(want)


def test_numeric_closeness_skips_when_expected_is_no_number():
    assert NumericCloseness()(output=3, expected="many").score is None
    assert NumericCloseness()(output=3, expected=None).score is None


# -- JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected", "want"),
    [
        ({"a": 1, "b": 2}, {"a": 1, "b": 2}, 1.0),
        ({"a": 1, "b": 3}, {"a": 1, "b": 2}, 0.5),
        ('{"a": 1, "b": {"c": [1, 2]}}', {"a": 1, "b": {"c": [1, 3]}}, 2 / 3),
        ({"a": 1}, {"a": 1, "b": 2}, 0.5),  # a missing leaf
        ({"a": 1, "x": 0}, {"a": 1}, 0.5),  # an extra leaf
        ({"a": 1.0}, {"a": 1}, 1.0),
        ({"a": True}, {"a": 1}, 0.0),  # booleans are not numbers
        ({}, {}, 1.0),
        ([], {"a": 1}, 0.0),
        ("not json", "not json", 1.0),
    ],
)
def test_json_diff(output, expected, want):
    assert value(JsonDiff()(output=output, expected=expected)) == pytest.approx(want)


def test_json_diff_names_the_differing_paths():
    s = JsonDiff()(output={"a": 1, "b": {"c": [1, 2]}}, expected={"a": 2, "b": {"c": [1, 3]}})
    assert s.metadata["differing"] == ["a", "b.c[1]"]
    assert "1 of 3 leaves match" in s.metadata["explanation"]


@pytest.mark.parametrize(
    ("scorer", "output", "want"),
    [
        (ValidJSON(), '{"a": 1}', 1.0),
        (ValidJSON(), "[1, 2", 0.0),
        (ValidJSON(), {"already": "data"}, 1.0),
        (ValidJSON(), None, 0.0),
        (ValidJSON(), "42", 1.0),
        (ValidJSON(require="object"), "[1]", 0.0),
        (ValidJSON(require="array"), "[1]", 1.0),
    ],
)
def test_valid_json(scorer, output, want):
    assert value(scorer(output=output)) == want


# -- text checks ---------------------------------------------------------------------------------


def test_contains():
    assert value(Contains("refund")(output="We issued a refund.")) == 1.0
    assert value(Contains("Refund")(output="We issued a refund.")) == 0.0
    assert value(Contains("Refund", case_sensitive=False)(output="We issued a refund.")) == 1.0
    assert value(Contains(["refund", "sorry"])(output="a refund")) == 0.0
    assert value(Contains(["refund", "sorry"], mode="any")(output="a refund")) == 1.0
    # without configured text: the case's expected value
    assert value(Contains()(output="the answer is 42", expected="42")) == 1.0
    assert value(Contains()(output="the answer is 42", expected=["answer", "43"])) == 0.0
    assert Contains()(output="x", expected=None).score is None
    s = Contains(["refund", "sorry"])(output="a refund")
    assert "missing 'sorry'" in s.metadata["explanation"]
    with pytest.raises(ValueError, match="mode"):
        Contains("x", mode="some")


def test_regex():
    assert value(Regex(r"\d{3}-\d{4}")(output="call 555-1234 now")) == 1.0
    assert value(Regex(r"\d{3}-\d{4}", full=True)(output="call 555-1234 now")) == 0.0
    assert value(Regex(r"^yes$", flags=2)(output="YES")) == 1.0  # re.IGNORECASE
    assert "matches at 6" in Regex(r"\d+")(output="call 555").metadata["explanation"]
    with pytest.raises(ValueError, match="invalid regular expression"):
        Regex("(")


def test_length_bounds():
    assert value(LengthBounds(max_length=5)(output="abcde")) == 1.0
    assert value(LengthBounds(max_length=5)(output="abcdef")) == 0.0
    assert value(LengthBounds(min_length=2, max_length=3, unit="words")(output="one two")) == 1.0
    assert value(LengthBounds(min_length=3, unit="words")(output="one two")) == 0.0
    s = LengthBounds(min_length=10)(output="short")
    assert s.metadata["length"] == 5 and "below" in s.metadata["explanation"]
    for bad in ({}, {"min_length": -1}, {"min_length": 5, "max_length": 2}, {"max_length": 3, "unit": "lines"}):
        with pytest.raises(ValueError):
            LengthBounds(**bad)


def test_every_builtin_has_a_name_and_description():
    assert set(BUILTIN_SCORERS) == {"exact_match", "levenshtein", "numeric_closeness", "json_diff",
                                    "contains", "regex", "valid_json", "length_bounds"}
    for name, cls in BUILTIN_SCORERS.items():
        args = {"contains": ("x",), "regex": ("x",)}.get(name, ())
        kwargs = {"max_length": 3} if name == "length_bounds" else {}
        scorer = cls(*args, **kwargs)
        assert scorer.name == name
        assert cls.description
    assert ExactMatch("strict").name == "strict"
    assert Contains("x", name="mentions_x").name == "mentions_x"


def test_builtins_work_as_eval_scorers(tmp_path):
    store = Store(tmp_path / "e.db")
    data = [{"input": "capital of France", "expected": "Paris"}, {"input": "2+2", "expected": "4"}]
    answers = {"capital of France": "Paris", "2+2": "5"}
    result = Eval("p", data, lambda q: answers[q], scores=[ExactMatch(), Levenshtein(), Contains("a")],
                  db=store, progress=False, print_summary=False)
    rows = load_trace_rows(store, result.experiment_id).sort("input")
    assert rows["scores.exact_match"].to_list() == [0.0, 1.0]  # "2+2" sorts first
    assert rows["scores.contains"].to_list() == [0.0, 1.0]
    spans = load_trace_spans(store, result.experiment_id, rows["root_span_id"][0])
    score_span = spans.filter(spans["name"] == "exact_match").to_dicts()[0]
    assert "explanation" in score_span["metadata"]
    store.close()
