"""The filter language: parsing (precedence, errors with columns), each operator through
polars and through SQL on a small store, paths, completion."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from evaltui import store as st
from evaltui.query import paths as P
from evaltui.query.filter import (
    And,
    AnySpan,
    Arith,
    Compare,
    FilterError,
    Includes,
    InList,
    IsNull,
    Like,
    Literal,
    Match,
    Neg,
    Not,
    Or,
    Path,
    complete,
    count_matching,
    filter_frame,
    format_filter,
    matching_ids,
    parse_filter,
    seen_values,
    to_polars,
    to_sql,
    word_start,
)


def p(text: str) -> Path:
    return Path(tuple(int(x[1:-1]) if x.startswith("[") else x for x in text.replace("[", ".[").split(".")))


# -- parsing ----------------------------------------------------------------------------------


def test_precedence_or_and_not() -> None:
    assert parse_filter("a = 1 or b = 2 and c = 3") == Or(
        (Compare("=", p("a"), Literal(1)), And((Compare("=", p("b"), Literal(2)), Compare("=", p("c"), Literal(3)))))
    )
    a1, b2 = Compare("=", p("a"), Literal(1)), Compare("=", p("b"), Literal(2))
    assert parse_filter("not a = 1 and b = 2") == And((Not(a1), b2))
    assert parse_filter("not not a") == Not(Not(p("a")))
    assert parse_filter("(a = 1 or b = 2) and c") == And((Or((a1, b2)), p("c")))


def test_precedence_arithmetic() -> None:
    product = Arith("*", Literal(2), Literal(3))
    assert parse_filter("1 + 2 * 3 > x") == Compare(">", Arith("+", Literal(1), product), p("x"))
    assert parse_filter("a - b - c = 0") == Compare("=", Arith("-", Arith("-", p("a"), p("b")), p("c")), Literal(0))
    assert parse_filter("-x * 2 < -3") == Compare("<", Arith("*", Neg(p("x")), Literal(2)), Literal(-3))
    assert parse_filter("(scores.a + scores.b) / 2 >= .5") == Compare(
        ">=", Arith("/", Arith("+", p("scores.a"), p("scores.b")), Literal(2)), Literal(0.5)
    )


def test_operators_and_keywords() -> None:
    assert parse_filter("a <> 1") == Compare("!=", p("a"), Literal(1))
    assert parse_filter("a == 1") == Compare("=", p("a"), Literal(1))
    assert parse_filter("a IS NOT NULL AND b is null") == And((IsNull(p("a"), True), IsNull(p("b"), False)))
    assert parse_filter("a not like 'x%'") == Not(Like(p("a"), "x%"))
    assert parse_filter("a ILIKE 'x%'") == Like(p("a"), "x%", True)
    assert parse_filter("a not in (1, -2.5, true)") == Not(InList(p("a"), (Literal(1), Literal(-2.5), Literal(True))))
    assert parse_filter("a match '^x'") == Match(p("a"), "^x")
    assert parse_filter("tags not includes 'x'") == Not(Includes(p("tags"), Literal("x")))
    assert parse_filter("any_span(type = 'llm')") == AnySpan(Compare("=", p("type"), Literal("llm")))
    assert parse_filter("true and not false") == And((Literal(True), Not(Literal(False))))


def test_literals() -> None:
    assert parse_filter("x = 'it''s'").right == Literal("it's")
    assert parse_filter(r"x = 'it\'s'").right == Literal("it's")
    assert parse_filter('x = "say \\"hi\\""').right == Literal('say "hi"')
    assert parse_filter(r"x = 'a\nb\tc\\d'").right == Literal("a\nb\tc\\d")
    assert parse_filter(r"x = '\u00e9\ud83d\ude00'").right == Literal("é😀")
    assert parse_filter(r"x match '\d+\.\w'").pattern == r"\d+\.\w"  # unknown escapes stay for regexes
    assert parse_filter(r"x like '100\%'").pattern == "100\\%"
    assert parse_filter("x = 1e3").right == Literal(1000.0)
    assert parse_filter("x = 12").right == Literal(12)
    assert isinstance(parse_filter("x = 99999999999999999999").right.value, float)  # beyond int64


def test_paths() -> None:
    assert parse_filter("scores.\"my score\" > 0").left == Path(("scores", "my score"))
    assert parse_filter("scores.`a.b` > 0").left == Path(("scores", "a.b"))
    assert parse_filter("scores.'x' > 0").left == Path(("scores", "x"))
    assert parse_filter("`my col` > 0").left == Path(("my col",))
    assert parse_filter("metadata.user.tier = 'x'").left == Path(("metadata", "user", "tier"))
    assert parse_filter("metadata.list[2].x = 1").left == Path(("metadata", "list", 2, "x"))
    assert parse_filter("metadata.2024 = 1").left == Path(("metadata", "2024"))
    assert parse_filter("metadata.in = 1").left == Path(("metadata", "in"))  # keywords are names after a dot


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("scores.acc < ", "expected a value after '<' at column 14", 14),
        ("name = 'abc", "unterminated string starting at column 8", 8),
        ("scores.acc < 0.5 and", "expected a value after 'and' at column 21", 21),
        ("(a = 1", "expected ')' at column 7 to close the '(' at column 1", 7),
        ("a = 1)", "unexpected ')' (no '(' to close) at column 6", 6),
        ("a = 1 b = 2", "expected 'and' or 'or' before 'b' at column 7", 7),
        ("a not = 1", "expected like, ilike, in, match or includes after 'not' at column 7", 7),
        ("x is 3", "expected 'null' after 'is' at column 6", 6),
        ("x is not", "expected 'null' after 'is not' at column 9", 9),
        ("a in 1", "expected '(' after 'in' at column 6", 6),
        ("a in ()", "expected a value after '(' at column 7, found ')'", 7),
        ("a in (1 2)", "expected ',' or ')' in the list at column 9", 9),
        ("a in (1, null)", "null cannot be a value here (use 'is null') at column 10", 10),
        ("a like 5", "expected a quoted pattern after 'like' at column 8", 8),
        ("a < b < c", "comparisons cannot be chained (join them with 'and') at column 7", 7),
        ("a $ b", "unexpected character '$' at column 3", 3),
        ("a ! b", "unexpected character '!' at column 3 (did you mean '!='?)", 3),
        ("a && b", "unexpected character '&' at column 3 (use 'and')", 3),
        ("scores. > 1", "expected a name after 'scores.' at column 8", 8),
        ("metadata.x[a] = 1", "expected an index like [0] at column 11", 11),
        ("1.2.3 = x", "invalid number '1.2.3' at column 1", 1),
        ("x = 12abc", "invalid number '12abc' at column 5", 5),
        ("x = '\\u12'", "invalid \\u escape (four hex digits expected) at column 6", 6),
        ("x = '\\ud800'", "invalid \\u escape (a lone surrogate) at column 6", 6),
        ("x = 1e999", "number '1e999' is too large at column 5", 5),
        ("any_span type = 'x'", "expected '(' after 'any_span' at column 10", 10),
        ("= 1", "expected a value at column 1, found '='", 1),
        ("a = ", "expected a value after '=' at column 5", 5),
        ("   ", "the filter is empty", 1),
    ],
)
def test_parse_errors_point_at_their_column(text: str, message: str, column: int) -> None:
    with pytest.raises(FilterError) as err:
        parse_filter(text)
    assert str(err.value) == message
    assert err.value.column == column


def test_limits_are_filter_errors() -> None:
    with pytest.raises(FilterError, match="nested too deeply"):
        parse_filter("(" * 3000 + "a" + ")" * 3000)
    with pytest.raises(FilterError, match="nested too deeply"):
        parse_filter("not " * 2000 + "a")
    with pytest.raises(FilterError, match="too long to evaluate"):
        parse_filter("x" + " + 1" * 200 + " > 0")
    with pytest.raises(FilterError, match="longer than"):
        parse_filter("a = 1 or " * 2000 + "a = 1")
    # long and/or lists are fine: they compile to balanced trees
    expr = parse_filter(" or ".join(f"x = {i}" for i in range(500)))
    assert len(expr.items) == 500
    to_sql(parse_filter(" or ".join(f"name = '{i}'" for i in range(500))))


def test_filter_error_is_a_value_error_with_a_caret() -> None:
    with pytest.raises(ValueError) as err:
        parse_filter("scores.acc < ")
    assert err.value.caret("scores.acc < ") == "scores.acc < \n             ^"


@pytest.mark.parametrize(
    "text",
    [
        "scores.Factuality < 0.5 and metadata.model = 'gpt-4o'",
        "error is not null",
        "output ilike '%sorry%'",
        "tags includes 'triage'",
        "metrics.tokens > 2000 or not (scores.acc < 0.5 and error is null)",
        "scores.\"my score\" in (0, 0.5, 1) and metadata.user.tier != 'free'",
        "any_span(type = 'llm' and tokens > 1000) and -scores.x / 2 <= -0.25",
        "name match '^a\\\\d' and input not like '%x\\%%'",
        "metadata.list[0].name = 'it''s' or `my col` is null",
    ],
)
def test_format_filter_round_trips(text: str) -> None:
    expr = parse_filter(text)
    assert parse_filter(format_filter(expr)) == expr


# -- a small store: each operator through polars and through SQL ------------------------------------


@pytest.fixture(scope="module")
def exp(tmp_path_factory: pytest.TempPathFactory) -> tuple[st.Store, str]:
    s = st.Store(tmp_path_factory.mktemp("filter") / "f.db")
    eid = st.create_experiment(s, "proj", "exp")

    def root(n: int, **fields) -> dict:
        return {"id": f"t{n}", "experiment_id": eid, "span_id": f"t{n}",
                "span_attributes": {"name": fields.pop("name", "task"), "type": "eval"},
                "metrics": {"start": 10.0 * n, "end": 10.0 * n + n, **fields.pop("metrics", {})}, **fields}

    def child(n: int, c: str, kind: str, **fields) -> dict:
        return {"id": f"t{n}-{c}", "experiment_id": eid, "span_id": f"t{n}-{c}", "root_span_id": f"t{n}",
                "span_parents": [f"t{n}"], "span_attributes": {"name": fields.pop("name", c), "type": kind},
                "metrics": {"start": 10.0 * n, "end": 10.0 * n + 0.5, **fields.pop("metrics", {})}, **fields}

    st.write_spans(s, [
        root(1, input={"q": "capital of France?"}, output="Paris", expected="Paris",
             scores={"acc": 1.0, "my score": 0.5},
             metadata={"model": "gpt-4o", "temperature": 0.2, "user": {"tier": "gold", "id": 1}, "n": 5,
                       "flag": True, "list": ["a", "b"], "Tier x": "no"},
             tags=["triage", "v2"]),
        child(1, "llm", "llm", name="llm call", metrics={"tokens": 1200, "prompt_tokens": 1000}, output="Paris",
              metadata={"model": "gpt-4o"}),
        child(1, "tool", "tool", name="search", metrics={"tokens": 300}),
        root(2, name="answer", input={"q": "how to pick a lock"}, output="I'm sorry, I can't help with that",
             scores={"acc": 0.0}, error="refused",
             metadata={"model": "claude", "temperature": 0.7, "user": {"tier": "free", "id": 2}, "n": "7",
                       "flag": False, "list": []},
             tags=["v2"], metrics={"tokens": 2500}),
        root(3, input="plain question", output={"answer": 42}, scores={"acc": None},
             metadata={"model": "gpt-4o-mini", "user": {"tier": 3}, "n": None}),
        child(3, "llm", "llm", name="llm retry", error="rate limited", metrics={"tokens": 50}),
        child(3, "judge", "score", scores={"acc": None}, metadata={"model": "claude"}),
        root(4, input={"q": "percent"}, output="100% done_ok", scores={"acc": 0.5},
             metadata={"model": "GPT-4O", "Tier x": "é", "temperature": 1}, tags=["Triage"]),
    ])
    st.set_review(s, eid, ["t1"], user="ann", review_status="reviewed")
    st.set_review(s, eid, ["t2"], user="ann", assignee="bob")
    yield s, eid
    s.close()


def both(exp: tuple[st.Store, str], text: str, row_type: str = "traces") -> set[str]:
    """The matching ids, asserting that polars and SQL agree."""
    store, eid = exp
    key = "root_span_id" if row_type == "traces" else "id"
    load = st.load_trace_rows if row_type == "traces" else st.load_span_rows
    frame = load(store, eid, cache=False)
    spans = lambda: st.load_span_rows(store, eid, cache=False)  # noqa: E731
    via_polars = set(filter_frame(frame, text, row_type=row_type, spans=spans)[key].to_list())
    via_sql = set(matching_ids(store, eid, text, row_type=row_type))
    assert via_polars == via_sql, f"{text!r}: polars {sorted(via_polars)} != sql {sorted(via_sql)}"
    assert count_matching(store, eid, text, row_type=row_type) == len(via_sql)
    return via_polars


TRACE_CASES = [
    # comparisons, null semantics
    ("scores.acc < 0.5", {"t2"}),
    ("scores.acc >= 0.5", {"t1", "t4"}),
    ("scores.acc is null", {"t3"}),
    ("scores.acc is not null", {"t1", "t2", "t4"}),
    ("not scores.acc < 0.5", {"t1", "t4"}),  # t3: unknown stays unknown under not
    ("scores.acc < 0.5 or scores.acc >= 0.5", {"t1", "t2", "t4"}),
    ("scores.acc = 0.5 or true", {"t1", "t2", "t3", "t4"}),  # unknown or true is true
    ("scores.\"my score\" = 0.5", {"t1"}),
    ("scores.`my score` != 0.5", set()),
    ("(scores.acc + scores.\"my score\") / 2 > 0.6", {"t1"}),
    ("-scores.acc < -0.5", {"t1"}),
    ("scores.acc * 0 = 0", {"t1", "t2", "t4"}),
    ("scores.acc / 0 is null", {"t1", "t2", "t3", "t4"}),
    # text, like, ilike, match, in
    ("metadata.model = 'gpt-4o'", {"t1"}),
    ("metadata.model != 'gpt-4o'", {"t2", "t3", "t4"}),
    ("metadata.model <> 'gpt-4o'", {"t2", "t3", "t4"}),
    ("metadata.model > 'gpt'", {"t1", "t3"}),
    ("metadata.model like 'gpt%'", {"t1", "t3"}),
    ("metadata.model ilike 'gpt%'", {"t1", "t3", "t4"}),
    ("metadata.model not like 'gpt%'", {"t2", "t4"}),
    ("metadata.model like 'gpt-_o'", {"t1"}),
    ("metadata.model in ('claude', 'GPT-4O')", {"t2", "t4"}),
    ("metadata.model not in ('claude')", {"t1", "t3", "t4"}),
    ("metadata.model match '^gpt-4o(-mini)?$'", {"t1", "t3"}),
    ("metadata.model match '(?i)^gpt'", {"t1", "t3", "t4"}),
    ("metadata.model not match 'o$'", {"t2", "t3", "t4"}),
    ("output ilike '%SORRY%'", {"t2"}),
    ("output like '%sorry%'", {"t2"}),
    ("output like '%Sorry%'", set()),
    (r"output like '100\% done\_ok'", {"t4"}),
    (r"output like '100\%%'", {"t4"}),
    ("output like '1__% done%'", {"t4"}),
    (r"output like '100\% done\_o'", set()),
    ("output = 'Paris' and expected = output", {"t1"}),
    ("input.q like '%France%'", {"t1"}),
    ("input = 'plain question'", {"t3"}),
    ("name in ('answer')", {"t2"}),
    # JSON values at any depth, with their types
    ("metadata.user.tier = 'gold'", {"t1"}),
    ("metadata.user.tier > 2", {"t3"}),
    ("metadata.user.id in (1, 2)", {"t1", "t2"}),
    ("metadata.n > 4", {"t1", "t2"}),  # "7" is text holding a number
    ("metadata.n = '7'", {"t2"}),  # only the string
    ("metadata.n = '5'", set()),  # 5 is a number, not text
    ("metadata.n is null", {"t3", "t4"}),
    ("metadata.flag", {"t1"}),
    ("metadata.flag = true", {"t1"}),
    ("metadata.flag = false", {"t2"}),
    ("not metadata.flag", {"t2"}),
    ("metadata.list includes 'a'", {"t1"}),
    ("metadata.list[1] = 'b'", {"t1"}),
    ("metadata.list = '[]'", {"t2"}),  # arrays compare as their JSON text
    ("metadata.user = '{\"tier\":\"gold\",\"id\":1}'", {"t1"}),
    ("metadata.temperature * 10 > 5", {"t2", "t4"}),
    ("metadata.\"Tier x\" = 'é'", {"t4"}),
    ("output.answer = 42", {"t3"}),
    ("output.answer = '42'", set()),
    # tags
    ("tags includes 'triage'", {"t1"}),
    ("not tags includes 'triage'", {"t2", "t3", "t4"}),  # a missing list includes nothing
    ("tags includes 'Triage'", {"t4"}),
    ("tags not includes 'v2'", {"t3", "t4"}),
    ("tags includes 5", set()),
    # errors, metrics, review fields
    ("error is not null", {"t2", "t3"}),
    ("error is null", {"t1", "t4"}),
    ("error = 'refused'", {"t2"}),
    ("has_error", {"t2", "t3"}),
    ("has_error = false", {"t1", "t4"}),
    ("metrics.tokens > 2000", {"t2"}),
    ("metrics.tokens > 2000 or not (scores.acc < 0.5)", {"t1", "t2", "t4"}),
    ("tokens >= 1500 and llm_calls = 1", {"t1"}),
    ("duration > 2", {"t3", "t4"}),
    ("metrics.duration = 1", {"t1"}),
    ("span_count = 3", {"t1", "t3"}),
    ("review_status = 'reviewed'", {"t1"}),
    ("reviewed_by = 'ann'", {"t1"}),
    ("assignee = 'bob'", {"t2"}),
    ("assignee is null", {"t1", "t3", "t4"}),
    ("review_status != 'reviewed' and assignee is null", {"t3", "t4"}),
    # any_span
    ("any_span(type = 'llm' and tokens > 1000)", {"t1"}),
    ("any_span(span_type = 'tool')", {"t1"}),
    ("not any_span(type = 'llm')", {"t2", "t4"}),
    ("any_span(error like '%rate%')", {"t3"}),
    ("any_span(metadata.model = 'claude') or metadata.model = 'claude'", {"t2", "t3"}),
    ("any_span(name ilike 'LLM%') and scores.acc is null", {"t3"}),
    # constants
    ("true", {"t1", "t2", "t3", "t4"}),
    ("false", set()),
    ("null", set()),
    ("1 + 1 = 2", {"t1", "t2", "t3", "t4"}),
]


@pytest.mark.parametrize(("text", "expected"), TRACE_CASES)
def test_trace_filters_in_polars_and_sql(exp: tuple[st.Store, str], text: str, expected: set[str]) -> None:
    assert both(exp, text) == expected


SPAN_CASES = [
    ("type = 'llm'", {"t1-llm", "t3-llm"}),
    ("span_type = 'llm' and tokens > 1000", {"t1-llm"}),
    ("error is not null", {"t2", "t3-llm"}),
    ("name like 'llm%'", {"t1-llm", "t3-llm"}),
    ("scores.acc is not null", {"t1", "t2", "t4"}),
    ("metadata.model = 'claude'", {"t2", "t3-judge"}),
    ("parent_id is null", {"t1", "t2", "t3", "t4"}),
    ("parent_id = 't1'", {"t1-llm", "t1-tool"}),
    ("metrics.prompt_tokens >= 1000", {"t1-llm"}),
    ("has_error and type != 'eval'", {"t3-llm"}),
    ("output = '\"Paris\"'", {"t1", "t1-llm"}),  # span previews are JSON text
    ("output like '%Paris%' and root_span_id = 't1'", {"t1", "t1-llm"}),
    ("duration < 1", {"t1-llm", "t1-tool", "t3-llm", "t3-judge"}),
]


@pytest.mark.parametrize(("text", "expected"), SPAN_CASES)
def test_span_filters_in_polars_and_sql(exp: tuple[st.Store, str], text: str, expected: set[str]) -> None:
    assert both(exp, text, "spans") == expected


def test_blank_filter_matches_everything(exp: tuple[st.Store, str]) -> None:
    store, eid = exp
    assert count_matching(store, eid, "  ") == 4
    assert filter_frame(st.load_trace_rows(store, eid, cache=False), "").height == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scroes.acc < 0.5", "unknown path 'scroes.acc' at column 1 (did you mean scores.acc?)"),
        ("scores.ac < 0.5", "unknown path 'scores.ac' at column 1 (did you mean scores.acc?)"),
        ("metadata.modle = 'x'", "unknown path 'metadata.modle' at column 1 (did you mean metadata.model?)"),
        ("metrics.tokenz > 1", "unknown path 'metrics.tokenz' at column 1 (did you mean metrics.tokens?)"),
        ("x and assigne = 'bob'", "unknown path 'x' at column 1"),
        ("scores.acc = 'x'", "cannot compare a number with text at column 14"),
        ("tokens like 'a%'", "'like' compares text, but 'tokens' is a number at column 1"),
        ("has_error match 'x'", "'match' compares text, but 'has_error' is a boolean at column 1"),
        ("name = null", "compare with null using 'is null' or 'is not null' at column 6"),
        ("name", "'name' is text: compare it (e.g. name = '...') at column 1"),
        ("'abc'", "expected a condition, found text at column 1"),
        ("type = 'llm'", "type is a property of spans; in trace rows use any_span(type = 'llm') at column 1"),
        ("any_span(any_span(name = 'x'))", "any_span(...) applies to trace rows at column 10"),
        ("name match '(?<=a)b'", "invalid regular expression"),
        ("name match '[[:alpha:]]'", "invalid regular expression"),
        ("name match '('", "invalid regular expression"),
        ("tokens in (1, 'a')", "a list holds numbers or text, not both at column 15"),
        ("tokens in ('a', 'b')", "'in' compares text, but 'tokens' is a number at column 1"),
        ("scores.acc includes 1", "includes looks inside a list, but 'scores.acc' is a number at column 1"),
        ("(a = 1) = (b = 2)", "'=' compares values, not conditions"),
        ("metadata.`a\"b` = 1", "the key 'a\"b' cannot be addressed"),
        ("tokens + 'x' > 1", "expected a number, found text at column 10"),
    ],
)
def test_compile_errors_name_the_problem_in_both_backends(exp: tuple[st.Store, str], text: str, message: str) -> None:
    store, eid = exp
    frame = st.load_trace_rows(store, eid, cache=False)
    with pytest.raises(FilterError) as in_polars:
        filter_frame(frame, text)
    with pytest.raises(FilterError) as in_sql:
        count_matching(store, eid, text)
    assert str(in_polars.value).startswith(message)
    assert str(in_sql.value) == str(in_polars.value)


def test_sql_is_parameterized(exp: tuple[st.Store, str]) -> None:
    sql, params = to_sql("metadata.model = 'gpt-4o' and scores.\"my score\" > 0.5 and output like '%x%'")
    assert "gpt-4o" not in sql and "my score" not in sql and "%x%" not in sql
    assert sql.count("?") == len(params)
    assert params == ['$."model"', '$."model"', "gpt-4o", '$."my score"', 0.5, "*x*"]
    assert to_sql("name = 'x'", table="spans") == ("(spans.name = ?)", ["x"])
    assert to_sql("name = 'x'", alias="t") == ("(t.name = ?)", ["x"])
    with pytest.raises(ValueError):
        to_sql("name = 'x'", alias="t; DROP TABLE x")
    with pytest.raises(FilterError, match="custom column"):
        to_sql("my_col > 1", schema={"my_col": pl.Int64})
    sql, _ = to_sql("any_span(type = 'llm')")
    assert sql == (
        "EXISTS (SELECT 1 FROM spans AS s WHERE s.experiment_id = traces.experiment_id"
        " AND s.root_span_id = traces.root_span_id AND (s.type = ?))"
    )


def test_field_tables_match_the_store_frames(exp: tuple[st.Store, str]) -> None:
    store, eid = exp
    traces = st.load_trace_rows(store, eid, cache=False)
    for name, (_, kind) in P.TRACE_FIELDS.items():
        assert P.kind_of_dtype(traces.schema[name]) == kind, name
    spans = st.load_span_rows(store, eid, cache=False)
    for name, (_, kind) in P.SPAN_FIELDS.items():
        if name in spans.columns:
            assert P.kind_of_dtype(spans.schema[name]) == kind, name
    assert set(spans.columns) - set(P.SPAN_FIELDS) == {"scores.acc", "scores.my score"}


# -- hand-made frames: custom columns and what only polars has ----------------------------------------


def test_custom_columns_and_frames_without_raw_json() -> None:
    frame = pl.DataFrame({
        "root_span_id": ["a", "b", "c"],
        "my_col": [1, 5, None],
        "note": ['{"a": {"b": 2}}', '{"a": 1}', "not json"],
        "cat": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
        "metadata.model": ["m1", None, "m2"],
        "my col": [0.5, 0.1, 0.9],
        "when": pl.Series([1, 2, 3]).cast(pl.Datetime),
    })
    ids = lambda text: filter_frame(frame, text)["root_span_id"].to_list()  # noqa: E731
    assert ids("my_col > 1") == ["b"]
    assert ids("note.a.b = 2") == ["a"]
    assert ids("note.a = 1") == ["b"]
    assert ids("cat = 'x'") == ["a", "c"]
    assert ids("metadata.model like 'm%'") == ["a", "c"]
    assert ids("`my col` >= 0.5") == ["a", "c"]
    with pytest.raises(FilterError, match="cannot compare"):
        ids("when > 1")


def test_any_span_in_polars_needs_spans_and_loads_them_once() -> None:
    traces = pl.DataFrame({"root_span_id": ["a", "b"], "name": ["x", "y"]})
    spans = pl.DataFrame({"id": ["a", "a1", "b"], "root_span_id": ["a", "a", "b"], "type": ["eval", "llm", "eval"]})
    calls = []

    def load() -> pl.DataFrame:
        calls.append(1)
        return spans

    assert filter_frame(traces, "name = 'y'", spans=load)["root_span_id"].to_list() == ["b"]
    assert calls == []  # not needed, not loaded
    expr = to_polars("any_span(type = 'llm') or any_span(type = 'tool')", traces.schema, spans=load)
    assert traces.filter(expr)["root_span_id"].to_list() == ["a"]
    assert calls == [1]
    with pytest.raises(FilterError, match="needs the experiment's spans"):
        filter_frame(traces, "any_span(type = 'llm')")
    with pytest.raises(FilterError, match="applies to trace rows"):
        filter_frame(spans, "any_span(type = 'llm')", row_type="spans")


def test_mixed_type_metadata_columns_keep_json_types(tmp_path) -> None:
    # the store writes numbers into a text column when a key's values have mixed types
    s = st.Store(tmp_path / "m.db")
    eid = st.create_experiment(s, "p", "e")
    values = ["7", 7, 7.5, True, "x", None, {"a": 1}, [1]]
    st.write_spans(s, [
        {"id": f"r{i}", "experiment_id": eid, "span_id": f"s{i}", "metadata": {"v": v}} for i, v in enumerate(values)
    ])
    frame = st.load_trace_rows(s, eid, cache=False)
    assert frame.schema["metadata.v"] == pl.String
    ids = lambda text: sorted(both((s, eid), text))  # noqa: E731
    assert ids("metadata.v = '7'") == ["s0"]
    assert ids("metadata.v = 7") == ["s0", "s1"]
    assert ids("metadata.v > 7") == ["s2"]
    assert ids("metadata.v = true") == ["s3"]
    assert ids("metadata.v like '%'") == ["s0", "s4", "s6", "s7"]
    assert ids("metadata.v includes 1") == ["s7"]
    assert ids("metadata.v.a = 1") == ["s6"]
    assert ids("metadata.v is null") == ["s5"]
    s.close()


# -- completion ----------------------------------------------------------------------------------

SCHEMA = {
    "root_span_id": pl.String, "name": pl.String, "tokens": pl.Int64, "duration": pl.Float64, "has_error": pl.Boolean,
    "scores.Factuality": pl.Float64, "scores.my score": pl.Float64, "metadata.model": pl.String,
    "metadata": pl.String, "tags": pl.String, "review_status": pl.String,
}
VALUES = {"metadata.model": ["gpt-4o", "claude", "it's"], "tags": ["triage", "v2"], "review_status": ["reviewed"]}


def test_complete_paths() -> None:
    assert complete("sc", 2, SCHEMA) == ['scores."my score"', "scores.Factuality"]
    assert complete("scores.", 7, SCHEMA) == ['scores."my score"', "scores.Factuality"]
    assert "metrics.tokens" in complete("met", 3, SCHEMA)
    assert "metadata.model" in complete("met", 3, SCHEMA)
    assert complete("fact", 4, SCHEMA) == ["scores.Factuality"]  # found inside the name
    assert "any_span(" in complete("", 0, SCHEMA)
    assert complete("tokens > 1 and na", 17, SCHEMA) == ["name"]
    assert word_start("tokens > 1 and na", 17) == 15


def test_complete_values_and_operators() -> None:
    assert complete("metadata.model = ", 17, SCHEMA, VALUES) == ["'claude'", "'gpt-4o'", "'it\\'s'"]
    text = "metadata.model = 'gp"
    assert complete(text, len(text), SCHEMA, VALUES) == ["'gpt-4o'"]
    assert word_start(text, len(text)) == 17
    assert complete("tags includes ", 14, SCHEMA, VALUES) == ["'triage'", "'v2'"]
    assert complete("metadata.model in ('claude', ", 29, SCHEMA, VALUES) == ["'claude'", "'gpt-4o'", "'it\\'s'"]
    assert "=" in complete("scores.Factuality ", 18, SCHEMA) and "is null" in complete("name ", 5, SCHEMA)
    assert complete("scores.Factuality < 0.5 ", 24, SCHEMA) == ["and", "or"]
    assert complete("name = 'x' a", 12, SCHEMA) == ["and"]
    assert complete("name = 'x' and (", 16, SCHEMA)[:2] == ["duration", "has_error"]
    for junk in ("'", "name = \"", "$$", "scores.`x", "a[", "((", "metadata.model = 'a' and tags includes"):
        complete(junk, len(junk), SCHEMA, VALUES)
        word_start(junk, len(junk))


def test_seen_values(exp: tuple[st.Store, str]) -> None:
    store, eid = exp
    values = seen_values(st.load_trace_rows(store, eid, cache=False))
    assert values["metadata.model"] == ["GPT-4O", "claude", "gpt-4o", "gpt-4o-mini"]
    assert values["tags"] == ["Triage", "triage", "v2"]
    assert "input" not in values


def test_query_modules_do_not_import_textual() -> None:
    code = "import sys, evaltui.query.filter, evaltui.query.paths; assert 'textual' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
