"""Load YAML specifications into pydantic models, reporting every problem with its line.

Validation errors from pydantic carry a location tuple; the loader keeps the line of
each YAML node so that ``space.temperature: high (300) must be greater than low (900)``
can be shown as ``campaign.yaml:7: space.temperature: ...``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from labos.core.errors import Problem, SpecError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


def _compose_lines(node: yaml.Node, path: Loc, lines: dict[Loc, int], problems: list[Problem]) -> Any:
    """Turn a composed YAML node into Python data, remembering the line of every path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in out:
                problems.append(
                    Problem(_dotted((*path, key)), "key appears more than once", key_node.start_mark.line + 1)
                )
                continue
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _compose_lines(value_node, (*path, key), lines, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_compose_lines(n, (*path, i), lines, problems) for i, n in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    return loader.construct_object(node, deep=True)


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
        On a syntax error or a duplicated key, with the line of the problem.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = f"YAML syntax error: {exc.problem or exc}"
        if exc.context:
            msg += f" ({exc.context})"
        raise SpecError([Problem("", msg, line)], source) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem("", f"YAML error: {exc}")], source) from None
    if node is None:
        return None, {}
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    try:
        data = _compose_lines(node, (), lines, problems)
    except yaml.YAMLError as exc:
        raise SpecError([Problem("", f"YAML error: {exc}")], source) from None
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
        return f"unknown key {data_loc[-1]!r}" if data_loc else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return "missing 'type' (one of: real, integer, categorical, composition)"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if kind not in ("value_error", "assertion_error") and "input" in err:
        value = err["input"]
        if not isinstance(value, dict | list):
            msg = f"{msg} (got {value!r})"
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
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError([Problem("", f"file not found: {p}")], str(p)) from None
    except IsADirectoryError:
        raise SpecError([Problem("", f"{p} is a directory, not a YAML file")], str(p)) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Problem("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")], str(p)) from None
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read {p}: {exc.strerror}")], str(p)) from None
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
