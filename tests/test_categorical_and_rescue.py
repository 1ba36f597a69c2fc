"""The botorch planner's model of categorical variables, its tie-breaking and its rescue of stalled runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labos.core.campaign import Objective, PlannerSpec
from labos.core.results import Observation
from labos.core.space import SearchSpace
from labos.planners import create_planner
from labos.planners.botorch.kernels import MixedKernel
from labos.planners.encoding import categorical_blocks, encode

CAT = SearchSpace.model_validate(
    {
        "ligand": {"type": "categorical", "choices": [f"L{i}" for i in range(8)]},
        "base": {"type": "categorical", "choices": ["a", "b", "c", "d"]},
        "temp": {"type": "real", "low": 20, "high": 100},
    }
)
OBJ = [Objective(name="y", direction="maximize")]


def _obs(params: dict, y: float) -> Observation:
    return Observation(params=params, objectives={"y": y})


def test_categorical_blocks_name_the_one_hot_columns_of_each_categorical():
    assert categorical_blocks(CAT) == [list(range(0, 8)), [8, 9, 10, 11]]
    row = encode(CAT, [{"ligand": "L3", "base": "c", "temp": 60.0}])[0]
    assert row[3] == 1 and row[10] == 1 and row.sum() == pytest.approx(2.5)


def _positive(param: torch.Tensor, value: list) -> None:
    """Set a softplus-constrained raw parameter to the given positive values."""
    param.data.copy_(torch.log(torch.expm1(torch.tensor(value, dtype=torch.double))).reshape(param.shape))


def test_mixed_kernel_sums_a_product_term_a_term_per_variable_and_a_matern_term():
    from gpytorch.kernels import MaternKernel

    k = MixedKernel([[0, 1, 2], [3, 4]], [5, 6]).double()
    _positive(k.raw_outputscale, [0.5, 0.2, 0.3, 0.7])  # product, variable 0, variable 1, reals
    _positive(k.raw_category_lengthscale, [[0.5, 2.0], [1.5, 0.8]])  # in the product, each variable's own
    _positive(k.raw_lengthscale, [0.3, 0.6])
    x = torch.tensor(
        [[1, 0, 0, 1, 0, 0.1, 0.5], [0, 1, 0, 1, 0, 0.4, 0.2], [1, 0, 0, 0, 1, 0.1, 0.5], [0, 0, 1, 0, 1, 0.9, 0.9]],
        dtype=torch.double,
    )
    matern = MaternKernel(nu=2.5, ard_num_dims=2, active_dims=[5, 6]).double()
    matern.lengthscale = torch.tensor([[0.3, 0.6]], dtype=torch.double)
    with torch.no_grad():
        K, M = k(x, x).to_dense(), matern(x, x).to_dense()
        for i, j in [(0, 0), (0, 1), (0, 2), (1, 3), (2, 3)]:
            d0, d1 = float(x[i, :3].argmax() != x[j, :3].argmax()), float(x[i, 3:5].argmax() != x[j, 3:5].argmax())
            expected = (
                0.5 * M[i, j] * math.exp(-d0 / 0.5 - d1 / 2.0)
                + 0.2 * math.exp(-d0 / 1.5)
                + 0.3 * math.exp(-d1 / 0.8)
                + 0.7 * M[i, j]
            )
            assert K[i, j] == pytest.approx(float(expected), rel=1e-12)
        assert torch.allclose(k(x, x, diag=True), torch.diagonal(K))
        assert torch.allclose(torch.diagonal(K), torch.full((4,), 1.7, dtype=torch.double))
        only_categories = MixedKernel([[0, 1, 2], [3, 4]], []).double()
        assert only_categories.raw_outputscale.shape == (3,)  # no real term
        ln2 = math.log(2)  # every scale and length-scale starts at softplus(0); points 0 and 3 differ in both
        expected = ln2 * math.exp(-2 / ln2) + 2 * ln2 * math.exp(-1 / ln2)
        assert only_categories(x, x).to_dense()[0, 3] == pytest.approx(expected)
        batched = MixedKernel([[0, 1, 2], [3, 4]], [5, 6], batch_shape=torch.Size([2])).double()  # two objectives
        assert batched(x, x).to_dense().shape == (2, 4, 4)
        assert batched(x, x, diag=True).shape == (2, 4)
    with pytest.raises(ValueError, match="adjacent columns"):
        MixedKernel([[0, 2]], [])


def test_a_variables_relevance_is_the_covariance_one_change_of_its_choice_costs():
    k = MixedKernel([[0, 1, 2], [3, 4]], [5]).double()
    _positive(k.raw_outputscale, [0.5, 0.2, 0.3, 0.7])
    _positive(k.raw_category_lengthscale, [[0.5, 2.0], [1.5, 0.8]])
    x = torch.tensor([[1, 0, 0, 1, 0, 0.3], [0, 1, 0, 1, 0, 0.3], [1, 0, 0, 0, 1, 0.3]], dtype=torch.double)
    with torch.no_grad():
        K = k(x, x).to_dense()
        assert torch.allclose(k.relevance(), torch.stack([K[0, 0] - K[0, 1], K[0, 0] - K[0, 2]]))
        assert k.relevance()[0] == pytest.approx(0.5 * (1 - math.exp(-1 / 0.5)) + 0.2 * (1 - math.exp(-1 / 1.5)))
        batched = MixedKernel([[0, 1, 2], [3, 4]], [5], batch_shape=torch.Size([2])).double()
        assert batched.relevance().shape == (2, 2)


def test_mixed_kernel_hyperparameters_can_be_drawn_from_their_priors():
    """BoTorch retries a failed fit from values drawn from every prior: each needs its setter."""
    from botorch.optim.utils import sample_all_priors
    from gpytorch.priors import GammaPrior

    k = MixedKernel([[0, 1, 2], [3, 4]], [5, 6], lengthscale_prior=GammaPrior(3.0, 6.0)).double()
    torch.manual_seed(0)
    sample_all_priors(k)
    assert k.lengthscale.shape == (1, 2) and k.category_lengthscale.shape == (2, 2)
    assert not torch.allclose(k.lengthscale, torch.full((1, 2), math.log(2), dtype=torch.double))
    assert not torch.allclose(k.category_lengthscale, torch.full((2, 2), math.log(2), dtype=torch.double))
    assert (k.lengthscale > 0).all() and (k.category_lengthscale > 0).all()


def test_what_is_learnt_about_one_choice_carries_to_untried_choices_of_another_variable():
    """y depends on the base only; an untried ligand with the best base is ranked above tried ligands with the worst."""
    effect = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0}
    rng = np.random.default_rng(0)
    told = []
    for lig in range(5):  # ligands L5-L7 never tried
        for base in "abcd":
            if rng.random() < 0.7:
                told.append(_obs({"ligand": f"L{lig}", "base": base, "temp": 50.0}, effect[base]))
    probe = [{"ligand": lig, "base": base, "temp": 50.0} for lig, base in (("L7", "d"), ("L7", "a"), ("L0", "d"))]
    p = create_planner(PlannerSpec(name="botorch"), CAT, OBJ, seed=0)
    p.tell(told)
    untried_best, untried_worst, tried_best = p.mean_scores(probe)  # type: ignore[attr-defined]
    assert untried_best == pytest.approx(tried_best, rel=0.1)
    assert untried_worst < 0.1 * tried_best
    # one-hot columns under the unit-cube prior: the untried ligand stays near the prior whatever the base
    onehot = create_planner(PlannerSpec(name="botorch", options={"categorical_kernel": "onehot"}), CAT, OBJ, seed=0)
    onehot.tell(told)
    best, worst, _ = onehot.mean_scores(probe)  # type: ignore[attr-defined]
    assert worst > 0.5 * best


def test_ties_in_the_acquisition_are_broken_at_random_not_by_the_pools_order():
    """Untried choices the model cannot tell apart: the picks are spread, and reproducible from the seed."""
    space = SearchSpace.model_validate({"c": {"type": "categorical", "choices": [f"c{i:02d}" for i in range(40)]}})
    pool = [{"c": f"c{i:02d}"} for i in range(40)]

    def picks(seed: int) -> list[int]:
        p = create_planner(PlannerSpec(name="botorch"), space, OBJ, seed=seed)
        p.tell([_obs(pool[i], float(i % 3)) for i in (0, 1, 2, 3, 4, 5)])
        rest = pool[6:]
        return [6 + i for i in p.choose(rest, 3)]  # type: ignore[attr-defined]

    first = picks(0)
    assert first == picks(0)
    assert first != [6, 7, 8]
    assert len({tuple(picks(s)) for s in range(4)}) > 1


def _stalled_flat_planner(**options):
    """A planner told 13 equal outcomes: no improvement in 10, and a model flat everywhere."""
    space = SearchSpace.model_validate(
        {"x": {"type": "real", "low": 0, "high": 1}, "z": {"type": "real", "low": 0, "high": 1}}
    )
    p = create_planner(PlannerSpec(name="botorch", options=options), space, OBJ, seed=3)
    told = [{"x": 0.1 * i, "z": 0.05 * i} for i in range(13)]
    p.tell([_obs(q, 1.0) for q in told])
    return p, space, told


def test_the_default_picks_the_same_candidate_whatever_order_the_pool_is_listed_in():
    # the bench shuffles each run's candidates; the default must not depend on that order beyond ties
    space = SearchSpace.model_validate(
        {"x": {"type": "real", "low": 0, "high": 1}, "c": {"type": "categorical", "choices": ["a", "b", "c"]}}
    )
    rng = np.random.default_rng(5)
    pool = [{"x": float(v), "c": str(rng.choice(["a", "b", "c"]))} for v in rng.random(60)]
    told = [_obs(q, math.sin(6 * q["x"]) + (q["c"] == "b")) for q in pool[:8]]
    rest = pool[8:]
    perm = rng.permutation(len(rest))

    def pick(candidates: list[dict]) -> dict:
        p = create_planner(PlannerSpec(name="botorch"), space, OBJ, seed=11)
        p.tell(told)
        (i,) = p.choose(candidates, 1)  # type: ignore[attr-defined]
        return candidates[i]

    assert pick(rest) == pick([rest[j] for j in perm]) == pick(rest[::-1])


def test_a_stalled_run_whose_fit_collapsed_gets_a_space_filling_pick_logged_with_its_reason():
    p, space, told = _stalled_flat_planner()
    pool = [{"x": 0.0, "z": 0.05}, {"x": 1.0, "z": 0.0}, {"x": 0.5, "z": 0.3}, {"x": 0.0, "z": 1.0}]
    (i,) = p.choose(pool, 1)  # type: ignore[attr-defined]
    ref = encode(space, told)
    far = [np.min(np.linalg.norm(ref - encode(space, [c])[0], axis=1)) for c in pool]
    assert i == int(np.argmax(far)) == 3
    log = p.take_log()  # type: ignore[attr-defined]
    assert [(e["kind"], e["action"], e.get("index")) for e in log] == [("rescue", "space_filling", 0)]
    # equal outcomes: the signal variance fits to nothing, below the noise, from either start
    assert "is at least the signal variance" in log[0]["reason"]
    assert "refitted from the default start" in log[0]["reason"]
    assert p.stats == {"rescue_refits": 0, "rescue_space_filling": 1, "rescue_probes": 0}  # type: ignore[attr-defined]
    p.choose(pool, 1)  # type: ignore[attr-defined]
    assert p.take_log() == []  # type: ignore[attr-defined]  # not again until stall_cycles more experiments


def test_a_space_filling_pick_breaks_equal_distances_at_random_not_by_position():
    # on a grid several candidates are equally far from everything measured: the first listed must not win
    d = 0.3 / np.sqrt(5.0)  # 0.3 either side of the told line z = x / 2, at its point (0.6, 0.3)
    pool = [{"x": 0.1, "z": 0.05}, {"x": 0.6 - d, "z": 0.3 + 2 * d}, {"x": 0.6 + d, "z": 0.3 - 2 * d}]
    chosen = set()
    for seed in range(8):
        p, _, _ = _stalled_flat_planner()
        p.rng = np.random.default_rng(seed)  # type: ignore[attr-defined]
        (i,) = p.choose(pool, 1)  # type: ignore[attr-defined]
        chosen.add(i)
    assert chosen == {1, 2}


def test_a_stalled_run_is_refitted_when_the_default_start_gives_a_sound_model(monkeypatch):
    p, _, _ = _stalled_flat_planner()
    calls = {"n": 0}

    def collapsed_once(model, C):
        calls["n"] += 1
        return "the fitted noise variance (1.2) is at least the signal variance (0.3)" if calls["n"] == 1 else None

    monkeypatch.setattr(p, "_collapse", collapsed_once)
    p.ask(1)
    assert calls["n"] == 2
    assert p.take_log() == [  # type: ignore[attr-defined]
        {
            "kind": "rescue",
            "action": "refit",
            "reason": "the fitted noise variance (1.2) is at least the signal variance (0.3)",
        }
    ]
    assert p.stats["rescue_refits"] == 1  # type: ignore[attr-defined]


def test_no_rescue_while_the_run_improves_or_when_switched_off():
    p, _, _ = _stalled_flat_planner(stall_cycles=0)
    p.ask(1)
    assert p.take_log() == []  # type: ignore[attr-defined]
    space = SearchSpace.model_validate({"x": {"type": "real", "low": 0, "high": 1}})
    q = create_planner(PlannerSpec(name="botorch"), space, OBJ, seed=3)
    q.tell([_obs({"x": 0.07 * i}, float(i)) for i in range(13)])  # a new best every time
    q.ask(1)
    assert q.take_log() == []  # type: ignore[attr-defined]


def test_rescues_reach_the_decision_log_once_and_a_restored_planner_does_not_log_them_again():
    from types import SimpleNamespace

    from labos.session import CampaignSession

    p, _, _ = _stalled_flat_planner()
    p.ask(2)
    entries = CampaignSession._planner_log(SimpleNamespace(planner=p), ["e1", "e2"])  # type: ignore[arg-type]
    assert [(kind, exp, payload["action"]) for kind, exp, payload in entries] == [
        ("planner.rescue", "e1", "space_filling"),
        ("planner.rescue", "e2", "space_filling"),
    ]
    restored = type(p).restore(p.space, p.objectives, p.state())
    assert restored.take_log() == []  # type: ignore[attr-defined]
    assert restored.stats == p.stats  # type: ignore[attr-defined]
    assert restored.ask(1) == p.ask(1)


def test_bench_metrics_count_rescues_apart_from_an_agents_accounting():
    from labos.bench.protocol import RunResult, metrics

    runs = [
        RunResult("botorch", r, 0, [0, 1, 2], 1.0, stats={"rescue_refits": r, "rescue_space_filling": int(r == 2)})
        for r in range(3)
    ]
    m = metrics(runs, 3, 2)
    assert m["rescues"] == {"refits": 3, "space_filling": 1, "runs_rescued": 2}
    assert "agent" not in m


def test_a_run_far_behind_the_median_run_is_counted_stuck():
    from labos.bench.protocol import RunResult, stuck_runs

    def run(r: int, last: int, capped: bool = True) -> RunResult:
        return RunResult("p", r, 0, [0] * 38 + [last, last], 1.0, capped=capped)

    assert stuck_runs([run(0, 30), run(1, 36), run(2, 3), run(3, 40, capped=False)], 40) == 1  # 3 < 33 / 4
    assert stuck_runs([run(0, 3), run(1, 1), run(2, 2)], 40) == 0  # a hard set: every run finds few
    early = RunResult("p", 4, 0, [0, 40], 1.0)  # found everything at once: counts all 40 at the horizon
    assert stuck_runs([run(0, 5), run(1, 6), early], 40) == 0


@pytest.mark.parametrize("objectives", [OBJ, [*OBJ, Objective(name="z")]])
def test_the_models_marginals_at_a_pool_equal_the_joint_posteriors_mean_and_variance(objectives):
    """Each candidate's posterior is taken alone (a pool of thousands has no joint n x n covariance)."""
    rng = np.random.default_rng(1)
    pool = [
        {"ligand": f"L{rng.integers(8)}", "base": "abcd"[rng.integers(4)], "temp": float(rng.uniform(20, 100))}
        for _ in range(30)
    ]
    p = create_planner(PlannerSpec(name="botorch"), CAT, objectives, seed=0)
    p.tell([Observation(params=q, objectives={o.name: float(rng.normal()) for o in objectives}) for q in pool[:12]])
    X, Y = p._training_data()  # type: ignore[attr-defined]
    model, _ = p._model(X, Y, None)  # type: ignore[attr-defined]
    C = torch.as_tensor(encode(CAT, pool[12:]), dtype=torch.double)
    mean, var = p._marginals(model, C)  # type: ignore[attr-defined]
    with torch.no_grad():
        joint = model.posterior(C)
        assert mean.shape == var.shape == (18, len(objectives))
        assert torch.allclose(mean, joint.mean, atol=1e-8)
        assert torch.allclose(var, joint.variance, atol=1e-8)


def _settled_planner(**options):
    """Told 14 experiments: ten at ligand L0 (the best is the third, never bettered), L1 and L2 once, badly.

    The outcome follows temperature smoothly at L0, so the model is sound, not collapsed:
    the run has settled on the first fair level of the variable that matters.
    """
    p = create_planner(PlannerSpec(name="botorch", options=options), CAT, OBJ, seed=4)
    told = [
        ({"ligand": "L1", "base": "a", "temp": 50.0}, 0.2),
        ({"ligand": "L2", "base": "b", "temp": 70.0}, 0.3),
        ({"ligand": "L0", "base": "a", "temp": 60.0}, 1.0),
    ] + [({"ligand": "L0", "base": "ab"[i % 2], "temp": 20.0 + 8 * i}, 0.9 - 0.01 * abs(8 * i - 40)) for i in range(11)]
    p.tell([_obs(q, y) for q, y in told])
    pool = [
        {"ligand": f"L{i}", "base": b, "temp": float(t)} for i in range(8) for b in "abcd" for t in range(20, 101, 10)
    ]
    return p, pool


def test_a_settled_run_probes_the_least_tried_levels_of_the_variable_that_matters():
    p, pool = _settled_planner(probe_levels=True)
    (i,) = p.choose(pool, 1)  # type: ignore[attr-defined]
    (entry,) = p.take_log()  # type: ignore[attr-defined]
    assert entry["kind"] == "rescue" and entry["action"] == "probe" and entry["variable"] == "ligand"
    assert entry["levels"] == [f"L{k}" for k in range(3, 8)]  # never tried; L1 and L2 were, once
    assert pool[i]["ligand"] in entry["levels"]
    assert "ligand matters most" in entry["reason"] and "5 of its levels were tried 0 times" in entry["reason"]
    assert p.stats == {"rescue_refits": 0, "rescue_space_filling": 0, "rescue_probes": 1}  # type: ignore[attr-defined]
    p.choose(pool, 1)  # type: ignore[attr-defined]
    assert p.take_log() == []  # type: ignore[attr-defined]  # not again until stall_cycles more experiments


def test_without_the_probe_a_settled_run_stays_on_its_level():
    p, pool = _settled_planner()  # the default: off
    (i,) = p.choose(pool, 1)  # type: ignore[attr-defined]
    assert p.take_log() == [] and pool[i]["ligand"] == "L0"  # type: ignore[attr-defined]


def test_a_probe_passes_over_a_variable_whose_levels_were_all_tried_twice():
    p, pool = _settled_planner(probe_levels=True)
    p.tell([_obs({"ligand": f"L{k}", "base": "a", "temp": 20.0}, 0.1) for k in range(1, 8) for _ in range(2)])
    p._last_rescue = 0  # type: ignore[attr-defined]  # stalled again at once
    (i,) = p.choose(pool, 1)  # type: ignore[attr-defined]
    (entry,) = p.take_log()  # type: ignore[attr-defined]
    assert entry["variable"] == "base" and entry["levels"] == ["c", "d"] and pool[i]["base"] in ("c", "d")


def test_a_probe_in_ask_is_replayed_by_a_restored_planner_without_being_logged_twice():
    p, _ = _settled_planner(probe_levels=True, n_candidates=64, n_local=16)
    (point,) = p.ask(1)
    (entry,) = p.take_log()  # type: ignore[attr-defined]
    assert entry["action"] == "probe" and point["ligand"] in entry["levels"] and 20 <= point["temp"] <= 100
    restored = type(p).restore(p.space, p.objectives, p.state())
    assert restored.take_log() == []  # type: ignore[attr-defined]
    assert restored.stats == p.stats == {"rescue_refits": 0, "rescue_space_filling": 0, "rescue_probes": 1}  # type: ignore[attr-defined]
    assert restored.ask(1) == p.ask(1)


def test_a_settled_probe_changes_a_choice_every_recent_experiment_kept():
    p, pool = _settled_planner(probe_levels=True, probe_target="settled")
    (i,) = p.choose(pool, 1)  # type: ignore[attr-defined]
    (entry,) = p.take_log()  # type: ignore[attr-defined]
    # the last ten experiments all kept ligand L0 and alternated the base: only the ligand is settled
    assert entry["action"] == "probe" and entry["variable"] == ["ligand"] and entry["levels"] == ["L0"]
    assert pool[i]["ligand"] != "L0" and "all of them at ligand = L0" in entry["reason"]
