"""Built-in scorers: deterministic, offline, each a callable with the Eval scorer signature.

Pass them to ``Eval(..., scores=[...])`` or to :func:`evaltui.sdk.rescore.rescore`. Each has
a ``name`` (the score's name) and returns a :class:`~evaltui.sdk.eval.Score` whose metadata
holds an ``explanation`` (shown on the scorer's span). Comparison scorers return a null
score (skipped) when a case has no ``expected`` value.

Values that are not text are compared as canonical JSON (keys sorted), so ``{"a": 1,
"b": 2}`` equals ``{"b": 2, "a": 1}`` and the number ``4`` equals the output ``"4"``.
"""

from __future__ import annotations

import json
import math
import re
import string
import unicodedata
from typing import Any

from evaltui.sdk.eval import Score
from evaltui.store.records import canonical_json

__all__ = [
    "BUILTIN_SCORERS",
    "Contains",
    "ExactMatch",
    "JsonDiff",
    "LengthBounds",
    "Levenshtein",
    "NumericCloseness",
    "Regex",
    "ValidJSON",
    "exact_match",
    "json_diff",
    "levenshtein",
    "levenshtein_distance",
    "numeric_closeness",
    "valid_json",
]

_NO_EXPECTED = "no expected value to compare with: skipped"
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPACES = re.compile(r"\s+")


def _text(value: Any) -> str:
    """A value as text: strings as they are, None as empty, anything else canonical JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return canonical_json(value)
    except TypeError:
        return repr(value)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Scorer:
    name: str = ""
    description: str = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def _score(self, value: float | None, explanation: str, **extra: Any) -> Score:
        return Score(self.name, value, {"explanation": explanation, **extra})


# -- exact match ----------------------------------------------------------------------------------


class ExactMatch(_Scorer):
    """1 when the output equals the expected value, else 0 (after the chosen normalisation).

    Options (all off by default: exact means exact): ``case_sensitive`` (False folds case),
    ``strip`` (leading/trailing whitespace), ``collapse_whitespace`` (runs of whitespace are
    one space), ``ignore_punctuation`` (ASCII punctuation removed), ``unicode_normalize``
    (``"NFKC"`` etc.). Normalisation applies when either side is text; two JSON values
    (objects, lists, numbers) without it are compared as canonical JSON.
    """

    description = "output equals expected (with optional normalisation)"

    def __init__(
        self,
        name: str = "exact_match",
        *,
        case_sensitive: bool = True,
        strip: bool = False,
        collapse_whitespace: bool = False,
        ignore_punctuation: bool = False,
        unicode_normalize: str | None = None,
    ):
        if unicode_normalize not in (None, "NFC", "NFD", "NFKC", "NFKD"):
            raise ValueError(f"unicode_normalize must be NFC, NFD, NFKC, NFKD or None, not {unicode_normalize!r}")
        self.name = name
        self.case_sensitive = case_sensitive
        self.strip = strip
        self.collapse_whitespace = collapse_whitespace
        self.ignore_punctuation = ignore_punctuation
        self.unicode_normalize = unicode_normalize

    def normalize(self, text: str) -> str:
        if self.unicode_normalize:
            text = unicodedata.normalize(self.unicode_normalize, text)
        if self.ignore_punctuation:
            text = text.translate(_PUNCTUATION)
        if self.collapse_whitespace:
            text = _SPACES.sub(" ", text)
        if self.strip or self.collapse_whitespace:
            text = text.strip()
        if not self.case_sensitive:
            text = text.casefold()
        return text

    def __call__(self, output: Any, expected: Any = None) -> Score:
        if expected is None:
            return self._score(None, _NO_EXPECTED)
        a, b = self.normalize(_text(output)), self.normalize(_text(expected))
        if a == b:
            return self._score(1.0, "output equals expected")
        i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        return self._score(
            0.0,
            f"output differs from expected at character {i + 1}: "
            f"{_clip(repr(a[i : i + 30]))} vs {_clip(repr(b[i : i + 30]))}",
        )


# -- Levenshtein ----------------------------------------------------------------------------------


def levenshtein_distance(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each).

    Myers' bit-parallel algorithm (Hyyrö's formulation for edit distance) on Python's
    unbounded integers: one pass over the longer text, each step a few operations on an
    integer as wide as the shorter text, so two 10,000-character texts take milliseconds.
    """
    if a == b:
        return 0
    # the common prefix and suffix cost nothing
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, c in enumerate(b):
        peq[c] = peq.get(c, 0) | (1 << i)
    mask = (1 << m) - 1
    high = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for c in a:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv
    return score


class Levenshtein(_Scorer):
    """Similarity 1 − distance / length of the longer text (1 when both are empty)."""

    description = "1 - edit distance / longer length"

    def __init__(self, name: str = "levenshtein", *, case_sensitive: bool = True, strip: bool = False):
        self.name = name
        self.case_sensitive = case_sensitive
        self.strip = strip

    def __call__(self, output: Any, expected: Any = None) -> Score:
        if expected is None:
            return self._score(None, _NO_EXPECTED)
        a, b = _text(output), _text(expected)
        if self.strip:
            a, b = a.strip(), b.strip()
        if not self.case_sensitive:
            a, b = a.casefold(), b.casefold()
        longest = max(len(a), len(b))
        if longest == 0:
            return self._score(1.0, "both are empty", distance=0)
        d = levenshtein_distance(a, b)
        return self._score(
            1 - d / longest, f"{d} edit(s) over {longest} characters", distance=d
        )


# -- numbers ---------------------------------------------------------------------------------------


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", "")) if value.strip() else None
        except ValueError:
            return None
    return None


class NumericCloseness(_Scorer):
    """1 − |output − expected| / max(|output|, |expected|), clipped to [0, 1].

    Numbers given as text (``"1,234.5"``) count; an output that is no number scores 0.
    """

    description = "1 - relative difference of two numbers"

    def __init__(self, name: str = "numeric_closeness"):
        self.name = name

    def __call__(self, output: Any, expected: Any = None) -> Score:
        if expected is None:
            return self._score(None, _NO_EXPECTED)
        b = _as_number(expected)
        if b is None or not math.isfinite(b):
            return self._score(None, f"expected {_clip(_text(expected))!r} is not a number: skipped")
        a = _as_number(output)
        if a is None or not math.isfinite(a):
            return self._score(0.0, f"output {_clip(_text(output))!r} is not a number")
        scale = max(abs(a), abs(b))
        if scale == 0:
            return self._score(1.0, "both are 0")
        value = min(1.0, max(0.0, 1 - abs(a - b) / scale))
        return self._score(value, f"output {a:g} vs expected {b:g}: difference {abs(a - b):g}")


# -- JSON -----------------------------------------------------------------------------------------


def _as_json(value: Any) -> Any:
    """Text holding JSON becomes its value; anything else stays as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _leaves(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _leaves(v, f"{path}[{i}]", out)
    else:
        out[path or "$"] = value  # scalars, and empty objects/lists as values of their own


def _same_leaf(a: Any, b: Any) -> bool:
    # booleans are not numbers; 1 and 1.0 are the same number
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


class JsonDiff(_Scorer):
    """Share of matching leaves: leaves (paths to scalars) equal on both sides / all leaf paths.

    Text holding JSON is parsed first. The explanation lists the first differing paths.
    """

    description = "share of equal leaves in two JSON values"

    def __init__(self, name: str = "json_diff"):
        self.name = name

    def __call__(self, output: Any, expected: Any = None) -> Score:
        if expected is None:
            return self._score(None, _NO_EXPECTED)
        got, want = {}, {}
        _leaves(_as_json(output), "", got)
        _leaves(_as_json(expected), "", want)
        paths = list(dict.fromkeys([*want, *got]))
        differ = [p for p in paths if p not in got or p not in want or not _same_leaf(got[p], want[p])]
        matched = len(paths) - len(differ)
        if not differ:
            return self._score(1.0, f"all {len(paths)} leaves match")
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        return self._score(matched / len(paths), f"{matched} of {len(paths)} leaves match; differ: {shown}",
                           differing=differ[:50])


class ValidJSON(_Scorer):
    """1 when the output is JSON (text that parses, or already a JSON value), else 0.

    ``require``: ``"object"`` or ``"array"`` to also demand that shape.
    """

    description = "output parses as JSON"

    def __init__(self, name: str = "valid_json", *, require: str | None = None):
        if require not in (None, "object", "array"):
            raise ValueError(f"require must be 'object', 'array' or None, not {require!r}")
        self.name = name
        self.require = require

    def __call__(self, output: Any) -> Score:
        if isinstance(output, str):
            try:
                value = json.loads(output)
            except ValueError as e:
                return self._score(0.0, f"not JSON: {e}")
        elif output is None:
            return self._score(0.0, "no output")
        else:
            value = output
        if self.require == "object" and not isinstance(value, dict):
            return self._score(0.0, f"JSON, but a {type(value).__name__}, not an object")
        if self.require == "array" and not isinstance(value, list):
            return self._score(0.0, f"JSON, but a {type(value).__name__}, not an array")
        return self._score(1.0, "valid JSON")


# -- text checks ----------------------------------------------------------------------------------


class Contains(_Scorer):
    """1 when the output contains the given text(s), else 0.

    ``substrings``: one text or a list; None means the case's ``expected`` (text or list of
    texts). ``mode``: ``"all"`` (every one must occur) or ``"any"``.
    """

    description = "output contains the given text"

    def __init__(
        self,
        substrings: str | list[str] | None = None,
        *,
        name: str = "contains",
        case_sensitive: bool = True,
        mode: str = "all",
    ):
        if mode not in ("all", "any"):
            raise ValueError(f"mode must be 'all' or 'any', not {mode!r}")
        if isinstance(substrings, str):
            substrings = [substrings]
        if substrings is not None and not all(isinstance(s, str) for s in substrings):
            raise TypeError("substrings must be text or a list of texts")
        self.name = name
        self.substrings = list(substrings) if substrings is not None else None
        self.case_sensitive = case_sensitive
        self.mode = mode

    def __call__(self, output: Any, expected: Any = None) -> Score:
        needles = self.substrings
        if needles is None:
            if expected is None:
                return self._score(None, _NO_EXPECTED)
            needles = [expected] if isinstance(expected, str) else expected
            if not isinstance(needles, list) or not all(isinstance(s, str) for s in needles):
                needles = [_text(expected)]
        hay = _text(output)
        if not self.case_sensitive:
            hay = hay.casefold()
        found = [n for n in needles if (n if self.case_sensitive else n.casefold()) in hay]
        missing = [n for n in needles if n not in found]
        ok = bool(found) if self.mode == "any" else not missing
        if ok:
            return self._score(1.0, f"contains {', '.join(repr(_clip(n, 40)) for n in found[:5])}")
        return self._score(0.0, f"missing {', '.join(repr(_clip(n, 40)) for n in missing[:5])}")


class Regex(_Scorer):
    """1 when the regular expression matches the output text (``re.search``; ``full``: whole text)."""

    description = "output matches a regular expression"

    def __init__(self, pattern: str, *, name: str = "regex", flags: int = 0, full: bool = False):
        try:
            self.regex = re.compile(pattern, flags)
        except re.error as e:
            raise ValueError(f"invalid regular expression {pattern!r}: {e}") from None
        self.name = name
        self.pattern = pattern
        self.full = full

    def __call__(self, output: Any) -> Score:
        text = _text(output)
        m = self.regex.fullmatch(text) if self.full else self.regex.search(text)
        if m:
            return self._score(1.0, f"matches at {m.start() + 1}: {_clip(repr(m.group(0)))}")
        return self._score(0.0, f"no match for {_clip(repr(self.pattern))}")


class LengthBounds(_Scorer):
    """1 when the output's length is within [min_length, max_length] (either may be omitted).

    ``unit``: ``"chars"`` or ``"words"`` (whitespace-separated).
    """

    description = "output length within bounds"

    def __init__(
        self,
        min_length: int | None = None,
        max_length: int | None = None,
        *,
        name: str = "length_bounds",
        unit: str = "chars",
    ):
        if min_length is None and max_length is None:
            raise ValueError("give min_length, max_length or both")
        for label, v in (("min_length", min_length), ("max_length", max_length)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{label} must be a whole number >= 0, not {v!r}")
        if min_length is not None and max_length is not None and min_length > max_length:
            raise ValueError(f"min_length {min_length} is more than max_length {max_length}")
        if unit not in ("chars", "words"):
            raise ValueError(f"unit must be 'chars' or 'words', not {unit!r}")
        self.name = name
        self.min_length = min_length
        self.max_length = max_length
        self.unit = unit

    def __call__(self, output: Any) -> Score:
        text = _text(output)
        n = len(text.split()) if self.unit == "words" else len(text)
        lo = self.min_length if self.min_length is not None else 0
        hi = self.max_length if self.max_length is not None else math.inf
        bounds = f"[{lo}, {'∞' if hi == math.inf else hi}]"
        if lo <= n <= hi:
            return self._score(1.0, f"{n} {self.unit} within {bounds}", length=n)
        side = "below" if n < lo else "above"
        return self._score(0.0, f"{n} {self.unit}, {side} {bounds}", length=n)


# Ready-made instances of the scorers that need no parameters.
exact_match = ExactMatch()
levenshtein = Levenshtein()
numeric_closeness = NumericCloseness()
json_diff = JsonDiff()
valid_json = ValidJSON()

# Name -> class, for a picker (the TUI lists these with their descriptions).
BUILTIN_SCORERS: dict[str, type[_Scorer]] = {
    "exact_match": ExactMatch,
    "levenshtein": Levenshtein,
    "numeric_closeness": NumericCloseness,
    "json_diff": JsonDiff,
    "contains": Contains,
    "regex": Regex,
    "valid_json": ValidJSON,
    "length_bounds": LengthBounds,
}
