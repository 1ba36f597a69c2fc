"""Property-based fuzzing of what users and clients hand labos: campaign files, registry files, wire messages.

Targets: no traceback (every input ends in a clean exit code 0 or 2 with a message, or an
error reply), no hang (pytest-timeout), no server death, memory bounded. The default
run tries a bounded number of inputs per test (``LABOS_FUZZ_EXAMPLES``, default 40);
``pytest -m fuzz_long`` tries 25 times as many.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import resource
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labos.cli import main
from labos.devices import wire
from tests.conftest import EXAMPLES
from tests.test_server_hostile import Served

pytestmark = pytest.mark.e2e

EXAMPLES_N = int(os.environ.get("LABOS_FUZZ_EXAMPLES", "40"))
BASES = {
    name: yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()) for name in ("demo", "solid-state", "two-objectives")
}
REGISTRY = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((EXAMPLES / "instruments").glob("*.yaml"))}
DELETE = object()

LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.text(max_size=40),
    st.sampled_from(["", "*", "rack/*", "../../etc/passwd", "a\0b", "nan", "1e999", "-0", "yes", "~"]),
)
VALUE = st.recursive(
    LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=8,
)
EDITS = st.lists(st.tuples(st.integers(min_value=0), st.one_of(VALUE, st.just(DELETE))), min_size=1, max_size=4)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a parsed YAML document (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(base: dict[str, Any], edits: list[tuple[int, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for index, value in edits:
        paths = _paths(doc)
        if not paths:
            break
        *head, last = paths[index % len(paths)]
        node = doc
        for part in head:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return doc


def _dump(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        return yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False)


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        yield err


def _clean_exit(argv: list[str]) -> tuple[int, str]:
    """Run the CLI; a traceback or an escaping exception fails the property."""
    with _captured() as err:
        code = main(argv)
    text = err.getvalue()
    assert code in (0, 1, 2), (code, text)
    assert "Traceback" not in text, text
    if code == 2:
        assert text.strip(), "a refusal must say why"
        assert len(text) < 20_000, "echoed input is cut short"
    return code, text


def _fuzz_settings(n: int = EXAMPLES_N) -> settings:
    return settings(
        max_examples=n, deadline=None, derandomize=False, suppress_health_check=[HealthCheck.too_slow], database=None
    )


class Tally:
    """How many inputs a fuzz test tried and how they ended (reported in the test's output)."""

    def __init__(self, name: str) -> None:
        self.name, self.counts = name, {}

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def report(self) -> None:
        total = sum(self.counts.values())
        print(f"\n{self.name}: {total} inputs: {dict(sorted(self.counts.items()))}")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_campaign_fuzz(n: int) -> None:
    tally = Tally("campaign files")
    before = _rss_mb()

    @_fuzz_settings(n)
    @given(
        base=st.sampled_from(sorted(BASES)),
        edits=EDITS,
        garble=st.one_of(st.none(), st.tuples(st.integers(0), st.text(max_size=8))),
    )
    def check(base: str, edits: list[tuple[int, Any]], garble: tuple[int, str] | None) -> None:
        text = _dump(_mutate(BASES[base], edits))
        if garble is not None:  # raw damage to the text itself
            at = garble[0] % (len(text) + 1)
            text = text[:at] + garble[1] + text[at:]
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "c.yaml"
            path.write_text(text)
            code, _ = _clean_exit(["validate", str(path)])
            tally.add("valid" if code == 0 else "refused")
            assert not (Path(d) / "labos-data").exists() and sorted(p.name for p in Path(d).iterdir()) == ["c.yaml"]

    check()
    tally.report()
    assert _rss_mb() - before < 1024, "memory bounded"


def _run_registry_fuzz(n: int) -> None:
    tally = Tally("registry files")

    @_fuzz_settings(n)
    @given(base=st.sampled_from(sorted(REGISTRY)), edits=EDITS)
    def check(base: str, edits: list[tuple[int, Any]]) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "entry.yaml"
            path.write_text(_dump(_mutate(REGISTRY[base], edits)))
            code, _ = _clean_exit(["instruments", "--data-dir", str(Path(d) / "data"), "add", str(path)])
            tally.add("registered" if code == 0 else "refused")

    check()
    tally.report()


JSONISH = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=20)
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=12,
)
METHODS = sorted({*wire.ARGUMENTS, "__init__", "close", "world", ""})
ARG = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(),
    st.booleans(),
    st.text(max_size=10),
    st.sampled_from(["s1", "energy", "slit_h", "furnace/boat1", "rack/*", "absorbance", "pl"]),
    st.dictionaries(
        st.sampled_from(["temperature", "dwell", "ramp_rate", "atmosphere", "x"]),
        st.one_of(st.floats(min_value=-1e4, max_value=1e4), st.sampled_from(["air", "H2", "Ar"])),
        max_size=5,
    ),
)
REQUEST = st.one_of(
    st.fixed_dictionaries(  # anything JSON
        {
            "instrument": st.one_of(st.sampled_from(["furnace", "beamline", "uvvis", "laser"]), JSONISH),
            "method": st.one_of(st.sampled_from(METHODS), JSONISH),
            "args": st.one_of(st.lists(JSONISH, max_size=4), JSONISH),
        },
        optional={"extra": JSONISH, "__type__": JSONISH},
    ),
    st.fixed_dictionaries(  # shaped like a request: reaches the checks and the drivers
        {
            "instrument": st.sampled_from(["furnace", "beamline", "uvvis"]),
            "method": st.sampled_from(METHODS),
            "args": st.lists(ARG, max_size=3),
        }
    ),
    st.one_of(  # a valid signature with hostile values: the limits and the drivers' own checks
        st.builds(lambda a, p: {"instrument": "furnace", "method": "anneal", "args": [a, p]}, st.text(max_size=5), ARG),
        st.builds(lambda x: {"instrument": "beamline", "method": "acquire", "args": [x]}, st.floats()),
        st.builds(
            lambda ax, x: {"instrument": "beamline", "method": "move", "args": [ax, x]},
            st.sampled_from(["energy", "slit_h", "slit_v", "theta"]),
            st.floats(),
        ),
        st.builds(
            lambda t, m: {"instrument": "uvvis", "method": "measure", "args": [t, m]},
            st.floats(),
            st.sampled_from(["absorbance", "pl", "raman"]),
        ),
        st.builds(lambda b: {"instrument": "beamline", "method": "shutter", "args": [b]}, st.booleans()),
        st.sampled_from(
            [
                {"instrument": i, "method": m, "args": []}
                for i in ("furnace", "beamline", "uvvis")
                for m in ("readback", "beam", "stop", "inputs")
            ]
        ),
    ),
)


def _body(draw_req: Any, raw: bytes | None) -> bytes:
    if raw is not None:
        return raw
    return json.dumps(draw_req, allow_nan=True).encode()


def _run_wire_fuzz(n: int) -> None:
    tally = Tally("wire messages")
    with tempfile.TemporaryDirectory() as d:
        served = Served(Path(d))
        try:
            rss = _rss_mb()

            @_fuzz_settings(n)
            @given(request=REQUEST, raw=st.one_of(st.none(), st.binary(max_size=200)))
            def check(request: dict[str, Any], raw: bytes | None) -> None:
                reply = served.raw(_body(request, raw))
                assert set(reply) >= {"ok"}, reply
                if reply["ok"] is False:
                    assert reply["error"]["type"] in (
                        "BadRequest",
                        "OutOfBoundsError",
                        "InterlockError",
                        "DeviceFault",
                    ), reply
                    tally.add(reply["error"]["type"])
                else:
                    tally.add("ok")
                assert served.thread.is_alive()

            check()
            assert served.alive(), "the server serves on"
            assert _rss_mb() - rss < 512, "memory bounded"
        finally:
            served.close()
    tally.report()


def test_fuzzed_campaign_files_validate_or_are_refused_cleanly():
    _run_campaign_fuzz(EXAMPLES_N)


def test_fuzzed_registry_files_register_or_are_refused_cleanly():
    _run_registry_fuzz(EXAMPLES_N)


def test_fuzzed_wire_messages_get_replies_and_never_end_the_server():
    _run_wire_fuzz(EXAMPLES_N * 5)


@pytest.mark.slow
@pytest.mark.fuzz_long
@pytest.mark.parametrize("target", ["campaign", "registry", "wire"])
def test_long_fuzz(target):
    {"campaign": _run_campaign_fuzz, "registry": _run_registry_fuzz, "wire": _run_wire_fuzz}[target](EXAMPLES_N * 25)
