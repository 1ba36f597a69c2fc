"""Load YAML specifications into pydantic models, reporting every problem with its line.

Validation errors from pydantic carry a location tuple; the loader keeps the line of
each YAML node so that ``space.temperature: high (300) must be greater than low (900)``
can be shown as ``campaign.yaml:7: space.temperature: ...``.

The loader is the first thing hostile or broken input meets, so it is bounded: files
of at most :data:`MAX_BYTES`, nesting at most :data:`MAX_DEPTH` deep, at most
:data:`MAX_VALUES` values once aliases are expanded (a "billion laughs" file is refused,
not expanded), no recursive aliases, keys that are plain scalars, integers that fit in
64 bits and no NaN anywhere. Every refusal is a located :class:`Problem`, never a
traceback, and echoed values are shortened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from labos.core.errors import Problem, SpecError, shown

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]

MAX_BYTES = 1 << 20
"""The largest YAML file labos reads (1 MiB): campaign, registry and server files are a few kB."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and sequences accepted."""
MAX_VALUES = 100_000
"""The most values (scalars, mappings, sequences) a document may hold once its aliases are expanded."""
MAX_INT = 2**63
"""Integers must lie strictly within +-2**63 (anything larger is a typo or an attack)."""


class _Budget:
    """What composing one document has spent, and the collections being composed (to find cycles)."""

    def __init__(self) -> None:
        self.values = 0
        self.active: set[int] = set()
        self.constructor = yaml.constructor.SafeConstructor()


class _Refused(Exception):
    """Composing stopped: the document is too large, or recursive."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _compose_lines(node: yaml.Node, path: Loc, lines: dict[Loc, int], problems: list[Problem], budget: _Budget) -> Any:
    """Turn a composed YAML node into Python data, remembering the line of every path."""
    line = node.start_mark.line + 1
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise _Refused(Problem(_dotted(path), f"more than {MAX_VALUES:,} values once aliases are expanded", line))
    lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in budget.active:
            raise _Refused(Problem(_dotted(path), "a recursive alias (a collection that contains itself)", line))
        budget.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [_compose_lines(n, (*path, i), lines, problems, budget) for i, n in enumerate(node.value)]
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(
                        Problem(_dotted(path), "a key must be a plain value, not a list or mapping", key_line)
                    )
                    continue
                key = _value(key_node, path, problems, budget)
                if key is _BAD:
                    continue
                if key in out:
                    problems.append(Problem(_dotted((*path, key)), "key appears more than once", key_line))
                    continue
                lines[(*path, key)] = key_line
                out[key] = _compose_lines(value_node, (*path, key), lines, problems, budget)
            return out
        finally:
            budget.active.discard(id(node))
    value = _value(node, path, problems, budget)
    return None if value is _BAD else value


_BAD = object()
"""A scalar that could not be constructed (its problem is recorded)."""


def _value(node: yaml.Node, path: Loc, problems: list[Problem], budget: _Budget) -> Any:
    """A scalar node's value, or :data:`_BAD` with a problem recorded (bad tag, huge integer, NaN)."""
    line = node.start_mark.line + 1
    try:
        value = budget.constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        if node.tag == "tag:yaml.org,2002:int" and len(str(node.value)) > 20:
            what = "the integer is too large (limit: 2**63)"
        else:
            what = shown(getattr(exc, "problem", None) or str(exc).splitlines()[0], 120, quote=False)
        problems.append(Problem(_dotted(path), f"cannot read {shown(node.value)}: {what}", line))
        return _BAD
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT < value < MAX_INT:
        problems.append(Problem(_dotted(path), f"integer {shown(value)} is too large (limit: 2**63)", line))
        return _BAD
    if isinstance(value, float) and math.isnan(value):
        problems.append(Problem(_dotted(path), "NaN is not allowed: give a finite number", line))
        return _BAD
    if isinstance(value, bytes | bytearray):
        problems.append(Problem(_dotted(path), "binary data is not accepted here", line))
        return _BAD
    return value


def _check_depth(text: str, source: str | None) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, from the parser's events (no recursion)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark is not None else None
                raise SpecError([Problem("", f"nested more than {MAX_DEPTH} levels deep", line)], source)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml(text: str, source: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML text, returning the data and a map from location to line number.

    Raises
    ------
    SpecError
        On a syntax error, a duplicated key or anything over the loader's bounds, with
        the line of the problem.
    """
    if len(text) > MAX_BYTES:
        raise SpecError(
            [Problem("", f"{len(text):,} characters; a labos YAML file may hold at most {MAX_BYTES:,}")], source
        )
    try:
        _check_depth(text, source)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = f"YAML syntax error: {shown(exc.problem or exc, 200, quote=False)}"
        if exc.context:
            msg += f" ({shown(exc.context, 200, quote=False)})"
        raise SpecError([Problem("", msg, line)], source) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem("", f"YAML error: {shown(exc, 200, quote=False)}")], source) from None
    if node is None:
        return None, {}
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    try:
        data = _compose_lines(node, (), lines, problems, _Budget())
    except _Refused as refused:
        raise SpecError([refused.problem], source) from None
    if problems:
        raise SpecError(problems, source)
    return data, lines


def _has(container: Any, part: str | int) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _data_path(data: Any, loc: Loc, missing: bool) -> Loc:
    """Keep the parts of a pydantic location that exist in the data (drops union tags).

    For a ``missing`` error the last part (the absent key) is kept as well.
    """
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if _has(cur, part):
            out.append(part)
            cur = cur[part]
        elif missing and i == len(loc) - 1:
            out.append(part)
        # anything else is a pydantic tag (e.g. the discriminator value): skip it
    return tuple(out)


def _message(err: Any, data_loc: Loc, data: Any) -> str:
    kind = err["type"]
    msg: str = err["msg"]
    if kind == "extra_forbidden":
        return f"unknown key {shown(data_loc[-1])}" if data_loc else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return "missing 'type' (one of: real, integer, discrete, categorical, composition)"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown type {shown(ctx.get('tag'))}; expected one of {ctx.get('expected_tags')}"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if kind not in ("value_error", "assertion_error") and "input" in err:
        value = err["input"]
        if not isinstance(value, dict | list):
            msg = f"{msg} (got {shown(value)})"
    return msg


def problems_from_validation(exc: ValidationError, data: Any, lines: dict[Loc, int]) -> list[Problem]:
    """Translate a pydantic ``ValidationError`` into located :class:`Problem` s."""
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        loc = _data_path(data, tuple(err["loc"]), err["type"] == "missing")
        line = None
        for n in range(len(loc), -1, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        path = _dotted(loc)
        msg = _message(err, loc, data)
        if (path, msg) in seen:
            continue
        seen.add((path, msg))
        out.append(Problem(path, msg, line))
    return out


def parse_model(model: type[M], text: str, source: str | None = None) -> tuple[M, dict[Loc, int]]:
    """Parse YAML ``text`` into ``model``, raising :class:`SpecError` with every problem."""
    data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError([Problem("", f"expected a mapping of keys at the top level, got {got}", 1)], source)
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise SpecError(problems_from_validation(exc, data, lines), source) from None


def read_model(model: type[M], path: str | Path) -> tuple[M, dict[Loc, int]]:
    """Read and parse a YAML file into ``model`` (see :func:`parse_model`)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except (OSError, ValueError):  # missing, unreadable, or a NUL byte in the path: reported below
        size = 0
    if size > MAX_BYTES:
        problem = Problem("", f"the file is {size:,} bytes; a labos YAML file may be at most {MAX_BYTES:,}")
        raise SpecError([problem], str(p))
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError([Problem("", f"file not found: {p}")], str(p)) from None
    except IsADirectoryError:
        raise SpecError([Problem("", f"{p} is a directory, not a YAML file")], str(p)) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Problem("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")], str(p)) from None
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read {p}: {exc.strerror}")], str(p)) from None
    except ValueError as exc:  # a NUL byte in the path
        raise SpecError([Problem("", f"cannot read {shown(str(p))}: {exc}")], shown(str(p))) from None
    return parse_model(model, text, str(p))


def parse_path(path: str) -> Loc:
    """``"workflow.steps[1].options.x"`` -> ``("workflow", "steps", 1, "options", "x")``."""
    out: list[str | int] = []
    for part in path.split("."):
        while "[" in part:
            head, _, rest = part.partition("[")
            if head:
                out.append(head)
            idx, _, part = rest.partition("]")
            out.append(int(idx) if idx.isdigit() else idx)
        if part:
            out.append(part)
    return tuple(out)


def locate(problems: list[Problem], lines: dict[Loc, int]) -> list[Problem]:
    """Fill in the line of every problem that has none, from its dotted path."""
    out = []
    for p in problems:
        if p.line is None and p.path:
            loc = parse_path(p.path)
            for n in range(len(loc), 0, -1):
                if loc[:n] in lines:
                    p = Problem(p.path, p.message, lines[loc[:n]])
                    break
        out.append(p)
    return out
