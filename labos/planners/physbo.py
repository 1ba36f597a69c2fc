"""NIMS-OS's PHYSBO as a labos planner, through the ``nimo`` package (optional extra ``nimo``).

NIMS-OS drives its AI tools through files: a candidates CSV whose objective column is
empty for unmeasured rows, and a proposals CSV it writes back. This planner does exactly
that with ``nimo.selection(method="PHYSBO", ...)``, so the peer is benchmarked as its
users run it. In pool mode (:meth:`choose`) the pool is the candidate file; in
``ask`` a random (feasible) candidate set plus the points measured so far is.

Install with ``pip install 'labos[nimo]'``. ``nimo`` pulls in the ``anthropic`` client
and its HTTP stack, so keep it out of production environments that do not need it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from labos.core.errors import ConfigurationError
from labos.core.space import ParamValue, Point
from labos.planners.base import BasePlanner, PlannerOptions
from labos.planners.encoding import encode
from labos.planners.registry import register


class PhysboOptions(PlannerOptions):
    """Options of the ``physbo`` planner."""

    score: Literal["EI", "PI", "TS"] = Field(default="EI", description="PHYSBO's acquisition score.")
    n_initial_points: int = Field(default=2, ge=1, le=1000, description="Random proposals before PHYSBO.")
    n_candidates: int = Field(default=1000, ge=16, le=100_000, description="Random candidates per ask.")


def nimo_available() -> bool:
    """Whether the ``nimo`` package (and PHYSBO) can be imported."""
    try:
        import nimo  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


@register("physbo")
class PhysboPlanner(BasePlanner):
    """PHYSBO (Bayesian optimisation, NIMS) driven through NIMS-OS's file interface."""

    Options = PhysboOptions
    multi_objective = False

    def _setup(self) -> None:
        if not nimo_available():
            raise ConfigurationError(
                "planner 'physbo' needs the NIMS-OS package: pip install 'labos[nimo]' (nimo==2.1.8)"
            )
        self.opts: PhysboOptions = self.options  # type: ignore[assignment]

    def _select(self, candidates: Sequence[Mapping[str, ParamValue]], n: int) -> list[int]:
        """Run ``nimo.selection`` on the candidates plus the measured points; indices into ``candidates``.

        The candidates file lists every candidate (objective empty unless measured) and,
        below them, measured points that are not candidates, so PHYSBO trains on all
        outcomes told so far.
        """
        import nimo

        def key(p: Mapping[str, ParamValue]) -> tuple[Any, ...]:
            return tuple(p[k] for k in self.space.names)

        measured = {key(o.params): (dict(o.params), self.loss(o)) for o in self.observations if o.ok}
        in_pool = {key(c) for c in candidates}
        rows = list(candidates) + [p for k, (p, _) in measured.items() if k not in in_pool]
        X = encode(self.space, rows)
        with tempfile.TemporaryDirectory(prefix="labos-physbo-") as tmp:
            cand_file, prop_file = Path(tmp) / "candidates.csv", Path(tmp) / "proposals.csv"
            with cand_file.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow([f"x{i}" for i in range(X.shape[1])] + ["objective"])
                for x, p in zip(X, rows, strict=True):
                    y = measured.get(key(p))
                    w.writerow([repr(float(v)) for v in x] + ["" if y is None else repr(y[1])])
            with contextlib.redirect_stdout(io.StringIO()):  # nimo prints its progress
                nimo.selection(
                    method="PHYSBO",
                    input_file=str(cand_file),
                    output_file=str(prop_file),
                    num_objectives=1,
                    num_proposals=n,
                    physbo_score=self.opts.score,
                    minimization=True,
                )
            with prop_file.open() as f:
                picked = [int(float(r[0])) for r in list(csv.reader(f))[1:]]
        return [i for i in picked if i < len(candidates)][:n]

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        if sum(o.ok for o in self.observations) < max(self.opts.n_initial_points, 2):
            return self.feasible_points(self.random_points, n)
        fresh = self.feasible_points(self.random_points, self.opts.n_candidates)
        return [fresh[i] for i in self._select(fresh, n)]

    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """Pick ``n`` unmeasured candidates of the pool (indices into ``candidates``)."""
        if n > len(candidates) or sum(o.ok for o in self.observations) < max(self.opts.n_initial_points, 2):
            return self.random_choice(candidates, n)
        return self._select(candidates, n)
