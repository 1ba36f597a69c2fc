"""What a model may answer, derived from the search space: a GBNF grammar and a JSON schema.

llama.cpp constrains sampling with a GBNF grammar; with one generated here even a 135M
model can only write a JSON object of the expected shape whose numbers lie inside their
bounds and whose categories are among the choices (llama.cpp's JSON-schema mode does not
enforce numeric bounds). Backends that enforce a JSON schema get :func:`reply_schema`.
Neither replaces validation: every reply is still checked against the space
(:func:`labos.agents.prompt.check_proposals`), because a server may ignore both, and
neither can express linear constraints or "not measured yet". A composition is asked
for without its last component, which is what remains of the total (so a reply cannot
break the simplex's sum, only leave a negative remainder, which validation refuses).

Numbers are written with a fixed number of decimals chosen from the parameter's range
(and, on a log scale, from its lower bound), so the grammar is a short list of
digit-class patterns: the integers ``round(value * 10**d)`` between the bounds, split
the classic way into fixed-length runs (``[0-9]``, ``1[0-5][0-9]``, ...), with the
decimal point put back in.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from labos.core.space import (
    CategoricalParameter,
    CompositionParameter,
    DiscreteParameter,
    IntegerParameter,
    RealParameter,
    SearchSpace,
)

Purpose = Literal["propose", "hypothesis", "verdict"]
VERDICTS = ("supported", "refuted", "inconclusive")
TEXT_MAX = 160
"""Longest hypothesis or reason a reply may hold (characters)."""


# ------------------------------------------------------------------ numbers
def _same_length(a: str, b: str) -> list[list[tuple[int, int]]]:
    """Digit-range runs covering the integers from ``a`` to ``b`` (decimal strings of one length)."""
    if a == b:
        return [[(int(c), int(c)) for c in a]]
    i = 0
    while a[i] == b[i]:
        i += 1
    prefix = [(int(c), int(c)) for c in a[:i]]
    ra, rb = a[i:], b[i:]
    if len(ra) == 1:
        return [[*prefix, (int(ra), int(rb))]]
    rest = len(ra) - 1
    if set(ra[1:]) == {"0"} and set(rb[1:]) == {"9"}:
        return [[*prefix, (int(ra[0]), int(rb[0])), *[(0, 9)] * rest]]
    out = [[*prefix, *p] for p in _same_length(ra, ra[0] + "9" * rest)]
    if int(rb[0]) - int(ra[0]) > 1:
        out.append([*prefix, (int(ra[0]) + 1, int(rb[0]) - 1), *[(0, 9)] * rest])
    out.extend([*prefix, *p] for p in _same_length(rb[0] + "0" * rest, rb))
    return out


def integer_runs(lo: int, hi: int) -> list[list[tuple[int, int]]]:
    """Digit-range runs (one ``(low digit, high digit)`` per position) covering ``lo..hi`` (``0 <= lo``)."""
    if lo > hi:
        return []
    if lo < 0:
        raise ValueError("integer_runs covers non-negative integers")
    out: list[list[tuple[int, int]]] = []
    while len(str(lo)) < len(str(hi)):
        top = 10 ** len(str(lo)) - 1
        out.extend(_same_length(str(lo), str(top)))
        lo = top + 1
    out.extend(_same_length(str(lo), str(hi)))
    return out


def decimals_for(p: RealParameter | IntegerParameter | CompositionParameter) -> int:
    """Decimals a value of ``p`` is written with: 0 for integers, else about 1/1000 of the range."""
    if isinstance(p, IntegerParameter):
        return 0
    if isinstance(p, CompositionParameter):
        low, high = 0.0, p.total
    else:
        low, high = p.low, p.high
    d = max(0, math.ceil(-math.log10(high - low)) + 3)
    if isinstance(p, RealParameter) and p.log:
        d = max(d, math.ceil(-math.log10(low)) + 2)
    return min(d, 10)


def _run_gbnf(run: list[tuple[int, int]], decimals: int) -> str:
    digits = [str(a) if a == b else f"[{a}-{b}]" for a, b in run]
    if decimals:
        if len(digits) <= decimals:
            digits = ["0"] * (decimals - len(digits) + 1) + digits
        digits.insert(len(digits) - decimals, ".")
    return " ".join(_literal(d) if not d.startswith("[") else d for d in digits)


def number_gbnf(low: float, high: float, decimals: int) -> str:
    """A GBNF alternation of the numbers in ``[low, high]`` written with ``decimals`` decimals."""
    scale = 10**decimals
    lo = math.ceil(low * scale - 1e-9)
    hi = math.floor(high * scale + 1e-9)
    if lo > hi:
        raise ValueError(f"no number with {decimals} decimals lies in [{low}, {high}]")
    alts: list[str] = []
    if lo < 0:  # negative values: "-" and the magnitudes
        mags = integer_runs(max(1, -hi) if hi < 0 else 1, -lo)
        alts.extend(f'"-" {_run_gbnf(r, decimals)}' for r in mags)
    if hi >= 0:
        alts.extend(_run_gbnf(r, decimals) for r in integer_runs(max(0, lo), hi))
    return " | ".join(f"( {a} )" for a in alts)


# ------------------------------------------------------------------ grammar
def _literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _json_literal(value: Any) -> str:
    return _literal(json.dumps(value))


def _rule_name(key: str) -> str:
    return "v-" + "".join(c if c.isalnum() else "-" for c in key)


def gbnf(space: SearchSpace, purpose: Purpose, n: int = 1) -> str:
    """The GBNF grammar of a reply: ``n`` proposals with a hypothesis, a hypothesis, or a verdict."""
    text = f'text ::= "\\"" [^"\\\\\\x00-\\x1f\\x7f]{{1,{TEXT_MAX}}} "\\""'
    if purpose == "verdict":
        verdict = " | ".join(_json_literal(v) for v in VERDICTS)
        return "\n".join(
            [
                'root ::= "{\\"verdict\\": " verdict ", \\"reason\\": " text "}"',
                f"verdict ::= {verdict}",
                text,
            ]
        )
    if purpose == "hypothesis":
        return "\n".join(['root ::= "{\\"hypothesis\\": " text "}"', text])
    rules: list[str] = []
    fields: list[str] = []
    defined: set[str] = set()
    for name, p in space.items():
        if isinstance(p, CompositionParameter):
            rule = _rule_name(name)
            body = number_gbnf(0.0, p.total, decimals_for(p))
            members = p.components[:-1]  # the last is what remains of the total
        elif isinstance(p, RealParameter | IntegerParameter):
            rule = _rule_name(name)
            body = number_gbnf(p.low, p.high, decimals_for(p))
            members = [name]
        else:
            assert isinstance(p, CategoricalParameter | DiscreteParameter)
            rule = _rule_name(name)
            levels = p.choices if isinstance(p, CategoricalParameter) else p.values
            body = " | ".join(_json_literal(c) for c in levels)
            members = [name]
        if rule not in defined:
            rules.append(f"{rule} ::= {body}")
            defined.add(rule)
        fields.extend(f"{_literal(json.dumps(m) + ': ')} {rule}" for m in members)
    point = ' "{" ' + ' ", " '.join(fields) + ' "}"'
    proposals = " ".join(["point"] + ['", " point'] * (n - 1))
    head = [
        f'root ::= "{{\\"hypothesis\\": " text ", \\"proposals\\": [" {proposals} "]}}"',
        f"point ::={point}",
        text,
    ]
    return "\n".join(head + rules)


# ------------------------------------------------------------------- schema
def _value_schema(p: Any, total: float | None = None) -> dict[str, Any]:
    if isinstance(p, CategoricalParameter):
        return {"enum": list(p.choices)}
    if isinstance(p, DiscreteParameter):
        return {"enum": list(p.values)}
    if isinstance(p, IntegerParameter):
        return {"type": "integer", "minimum": p.low, "maximum": p.high}
    if isinstance(p, CompositionParameter):
        return {"type": "number", "minimum": 0.0, "maximum": p.total}
    return {"type": "number", "minimum": p.low, "maximum": p.high}


def reply_schema(space: SearchSpace, purpose: Purpose, n: int = 1) -> dict[str, Any]:
    """The JSON schema of a reply (for backends that enforce one)."""
    text = {"type": "string", "minLength": 1, "maxLength": TEXT_MAX}
    if purpose == "verdict":
        props: dict[str, Any] = {"verdict": {"enum": list(VERDICTS)}, "reason": text}
    elif purpose == "hypothesis":
        props = {"hypothesis": text}
    else:
        point: dict[str, Any] = {}
        for name, p in space.items():
            if isinstance(p, CompositionParameter):
                point.update({c: _value_schema(p) for c in p.components[:-1]})
            else:
                point[name] = _value_schema(p)
        props = {
            "hypothesis": text,
            "proposals": {
                "type": "array",
                "minItems": n,
                "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": point,
                    "required": list(point),
                    "additionalProperties": False,
                },
            },
        }
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
