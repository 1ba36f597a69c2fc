from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from labos.core.space import SearchSpace, stick_break, stick_unbreak

SPACE = SearchSpace.model_validate(
    {
        "mix": {"type": "composition", "components": ["a", "b", "c"], "total": 2.0},
        "t": {"type": "real", "low": 1, "high": 1000, "log": True, "unit": "s"},
        "x": {"type": "real", "low": -1, "high": 1},
        "n": {"type": "integer", "low": 1, "high": 4},
        "k": {"type": "integer", "low": 1, "high": 64, "log": True},
        "s": {"type": "categorical", "choices": ["p", "q", 3]},
    }
)


def errors(data: dict) -> str:
    with pytest.raises(ValidationError) as info:
        SearchSpace.model_validate(data)
    return str(info.value)


def test_bounds_message_echoes_values():
    msg = errors({"temperature": {"type": "real", "low": 900, "high": 300}})
    assert "high (300) must be greater than low (900)" in msg


def test_log_scale_needs_positive_low():
    assert "needs low > 0, got low = 0" in errors({"t": {"type": "real", "low": 0, "high": 1, "log": True}})


def test_composition_rejects_duplicate_components_and_name_clash():
    assert "listed more than once: a" in errors({"m": {"type": "composition", "components": ["a", "a"]}})
    msg = errors({"m": {"type": "composition", "components": ["a", "b"]}, "a": {"type": "real", "low": 0, "high": 1}})
    assert "'a' is used by both 'm' and 'a'" in msg


def test_categorical_rejects_duplicates_and_unknown_keys():
    assert "appears more than once" in errors({"c": {"type": "categorical", "choices": ["x", "x"]}})
    assert "Extra inputs" in errors({"c": {"type": "categorical", "choices": ["x", "y"], "lowe": 1}})


def test_names_and_dims():
    assert SPACE.names == ["a", "b", "c", "t", "x", "n", "k", "s"]
    assert SPACE.unit_dim == 2 + 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=7, max_size=7))
def test_every_unit_point_maps_into_the_space(u):
    p = SPACE.from_unit(u)
    assert SPACE.problems(p) == []
    assert math.isclose(p["a"] + p["b"] + p["c"], 2.0, rel_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.001, 0.999), min_size=7, max_size=7))
def test_unit_mapping_round_trips_for_continuous_parts(u):
    p = SPACE.from_unit(u)
    back = SPACE.from_unit(SPACE.to_unit(p))
    for key in ("a", "b", "c", "t", "x"):
        assert back[key] == pytest.approx(p[key], rel=1e-6, abs=1e-9)
    for key in ("n", "k", "s"):
        assert back[key] == p[key]


def test_stick_breaking_is_uniform_on_the_simplex():
    rng = np.random.default_rng(0)
    w = np.array([stick_break(rng.random(2)) for _ in range(20000)])
    # flat Dirichlet(1,1,1): each marginal has mean 1/3 and P(w_i < 1/3) = 1 - (2/3)^2 = 5/9
    assert np.allclose(w.mean(axis=0), 1 / 3, atol=0.01)
    assert np.allclose((w < 1 / 3).mean(axis=0), 5 / 9, atol=0.015)
    assert stick_unbreak(stick_break([0.2, 0.7])) == pytest.approx([0.2, 0.7])


def test_problems_name_every_violation():
    bad = {"a": 1.0, "b": 0.5, "c": -0.1, "t": 2000.0, "x": 0.0, "n": 2.5, "k": 8, "s": "zz", "extra": 1}
    msgs = SPACE.problems(bad)
    text = "\n".join(msgs)
    assert "unknown parameter(s): extra" in text
    assert "components must be non-negative, got c = -0.1" in text
    assert "components sum to 1.4, must sum to 2" in text
    assert "t: 2000 is outside [1, 1000]" in text
    assert "n: 2.5 is not an integer" in text
    assert "s: 'zz' is not one of" in text
    assert "missing parameter(s)" not in text
    assert SPACE.problems({})[0].startswith("missing parameter(s): a, b, c")


def test_with_constraints_returns_a_copy_and_leaves_the_original_alone():
    from labos.core.space import LinearConstraint

    plain = SearchSpace.model_validate(
        {"x": {"type": "real", "low": 0, "high": 1}, "y": {"type": "real", "low": 0, "high": 1}}
    )
    tight = plain.with_constraints([LinearConstraint.model_validate("x + y <= 0.5")])
    assert tight.constraints and not plain.constraints
    assert plain.feasible({"x": 0.9, "y": 0.9}) and not tight.feasible({"x": 0.9, "y": 0.9})


def test_models_see_a_composition_as_its_fractions_not_its_stick_breaking_coordinates():
    from labos.planners.encoding import categorical_blocks, encode, encoded_dim

    metals = SearchSpace.model_validate(
        {
            "m": {"type": "composition", "components": ["ni", "fe", "co", "mn"]},
            "s": {"type": "categorical", "choices": ["a", "b"]},
        }
    )
    ni_fe = {"ni": 0.9, "fe": 0.1, "co": 0.0, "mn": 0.0, "s": "a"}
    ni_co = {"ni": 0.9, "fe": 0.0, "co": 0.1, "mn": 0.0, "s": "a"}
    rows = encode(metals, [ni_fe, ni_co])
    assert encoded_dim(metals) == 4 + 2 and rows.shape == (2, 6)
    assert rows[0, :4].tolist() == pytest.approx([0.9, 0.1, 0.0, 0.0])
    assert categorical_blocks(metals) == [[4, 5]] and rows[:, 4].tolist() == [1.0, 1.0]
    # 0.14 apart as compositions, and so for a model; in the cube's coordinates they are far apart
    assert np.linalg.norm(rows[0] - rows[1]) == pytest.approx(0.1 * math.sqrt(2))
    assert np.linalg.norm(metals.to_unit(ni_fe) - metals.to_unit(ni_co)) > 1.0
    # a composition of another total is encoded as fractions of it
    row = encode(SPACE, [SPACE.from_unit(np.full(SPACE.unit_dim, 0.3))])[0]
    assert row[:3].sum() == pytest.approx(1.0) and ((row >= 0) & (row <= 1)).all()
