"""The campaign specification: what to vary, what to optimise, with which planner and instruments."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from labos.core.errors import shown
from labos.core.space import NAME_RE, LinearConstraint, SearchSpace

MAX_PATH_CHARS = 4096


def _plain_path(p: Path) -> Path:
    text = str(p)
    if "\x00" in text:
        raise ValueError(f"the path {shown(text)} contains a NUL byte")
    if len(text) > MAX_PATH_CHARS:
        raise ValueError(f"the path is {len(text):,} characters long (at most {MAX_PATH_CHARS})")
    return p


SafePath = Annotated[Path, AfterValidator(_plain_path)]
"""A file-system path that the operating system can take (no NUL byte, not absurdly long)."""


def finite_options(value: Any, where: str = "") -> Any:
    """Check that every number inside free-form ``options`` is finite (NaN or infinity would unlock limits).

    Raises
    ------
    ValueError
        Naming the option, e.g. ``max_temperature_c is nan: options must be finite numbers``.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'value'} is {value}: options must be finite numbers")
    if isinstance(value, dict):
        for k, v in value.items():
            finite_options(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            finite_options(v, f"{where}[{i}]")
    return value


Options = Annotated[dict[str, Any], AfterValidator(finite_options)]
"""Free-form options (of a planner, an instrument, a step) whose numbers are all finite."""


class _Spec(BaseModel):
    # every float is finite unless its field says otherwise (a NaN limit is no limit: v > nan is False)
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings", allow_inf_nan=False)


class Objective(_Spec):
    """An objective value derived from an analysis metric.

    ``value = metric`` or, with a ``target``, ``value = |metric - target|`` (which is
    then minimised).
    """

    name: str = Field(pattern=NAME_RE.pattern, description="Name of the objective.")
    direction: Literal["minimize", "maximize"] = "minimize"
    metric: str | None = Field(default=None, description="Analysis metric it is derived from; defaults to name.")
    target: float | None = Field(default=None, description="Aim for this metric value (minimise distance).")
    unit: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Objective:
        if self.target is not None and self.direction != "minimize":
            raise ValueError("an objective with a target is a distance to minimise: use direction: minimize")
        if self.target is not None and not math.isfinite(self.target):
            raise ValueError(f"target ({self.target}) must be finite")
        return self

    @property
    def source(self) -> str:
        """The analysis metric this objective is computed from."""
        return self.metric or self.name

    def value(self, metrics: dict[str, float]) -> float:
        """Compute the objective from the analysis metrics of one experiment."""
        m = float(metrics[self.source])
        return abs(m - self.target) if self.target is not None else m

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a < b if self.direction == "minimize" else a > b


class Budget(_Spec):
    """How many experiments the campaign may run."""

    max_experiments: int = Field(ge=1, le=100_000)
    batch_size: int = Field(default=1, ge=1, description="Proposals asked of the planner at once.")
    max_consecutive_failures: int = Field(
        default=5, ge=1, description="Stop the campaign after this many failed experiments in a row."
    )

    @model_validator(mode="after")
    def _batch(self) -> Budget:
        if self.batch_size > self.max_experiments:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed max_experiments ({self.max_experiments})")
        return self


class PlannerSpec(_Spec):
    """Which registered planner proposes experiments, and its options (default: BoTorch GP-UCB)."""

    name: str = "botorch"
    options: Options = Field(default_factory=dict)


InstrumentKind = Literal["synthesizer", "uvvis", "robot", "furnace", "xrd"]


class InstrumentSpec(_Spec):
    """An instrument used by the campaign's workflow."""

    kind: InstrumentKind
    driver: str = Field(default="sim", description="Registered driver name (entry point group labos.drivers).")
    options: Options = Field(default_factory=dict)
    timeout_s: float | None = Field(
        default=3600.0,
        gt=0,
        allow_inf_nan=False,
        description="Wall-clock seconds one action may take before it fails and the instrument is stopped "
        "(null: no limit).",
    )


class StepSpec(_Spec):
    """One step of the experiment plan.

    The step's instrument takes fixed ``options`` and every campaign parameter named
    like one of its inputs; ``parameters`` maps other inputs to parameters
    (``{temperature: anneal_temperature}``: the furnace's setpoint is the campaign
    parameter ``anneal_temperature``).
    """

    action: Literal["synthesize", "transfer", "anneal", "measure"]
    instrument: str = Field(default="", description="The instrument that does the step (or give instruments).")
    instruments: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Interchangeable instruments of one kind, any of which can do the step (lanes): "
        "each experiment gets whichever is free.",
    )
    options: Options = Field(default_factory=dict)
    parameters: dict[str, str] = Field(default_factory=dict, description="instrument input -> campaign parameter")

    @model_validator(mode="after")
    def _one_or_several(self) -> StepSpec:
        if not self.instrument and not self.instruments:
            raise ValueError("a step needs an instrument (or a list of interchangeable instruments)")
        if self.instruments and self.instrument and self.instrument != self.instruments[0]:
            raise ValueError(
                f"give instrument ({self.instrument!r}) or instruments ({', '.join(self.instruments)}), not both"
            )
        dupes = sorted({n for n in self.instruments if self.instruments.count(n) > 1})
        if dupes:
            raise ValueError(f"instruments named twice: {', '.join(dupes)}")
        # one form for every reader: instrument is the first, instruments the whole pool
        object.__setattr__(self, "instrument", self.instrument or self.instruments[0])
        object.__setattr__(self, "instruments", list(self.instruments) or [self.instrument])
        return self


ACTION_KINDS: dict[str, tuple[str, ...]] = {
    "synthesize": ("synthesizer",),
    "transfer": ("robot",),
    "anneal": ("furnace",),
    "measure": ("uvvis", "xrd"),
}


class WorkflowSpec(_Spec):
    """The instruments and the ordered steps of one experiment."""

    instruments: dict[str, InstrumentSpec]
    steps: list[StepSpec] = Field(min_length=1)
    retries: int = Field(default=2, ge=0, le=10, description="Re-runs of an experiment after a transient fault.")
    retry_backoff_s: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds before the first retry of a transient fault; doubled for each further retry.",
    )
    on_interrupted: Literal["rerun", "fail"] = Field(
        default="rerun",
        description="What a resume does with an experiment that was running when its process died: "
        "rerun it as a new attempt of the same experiment, or record it as failed.",
    )
    lanes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Experiments in flight at once (default: the most instruments any step names). "
        "When one ends, the planner proposes the next with the others as pending.",
    )
    park: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+/(\*|[A-Za-z0-9_.-]+)$",
        description="Where the robot leaves each sample after its experiment, failed or not "
        "(e.g. rack/*: the rack's first free slot), so the next experiment finds its slots free.",
    )

    def pool_of(self, station: str) -> tuple[int, list[str]] | None:
        """The step (index, instruments) whose pool of several instruments includes ``station``, if any."""
        for i, s in enumerate(self.steps):
            if len(s.instruments) > 1 and station in s.instruments:
                return i, s.instruments
        return None

    def slot_choices(self, slot: Any) -> list[Any]:
        """Every slot a transfer's ``slot`` can stand for: a pooled instrument's station is each of the pool's."""
        if not isinstance(slot, str) or "/" not in slot:
            return [slot]
        station, rest = slot.split("/", 1)
        pool = self.pool_of(station)
        return [f"{name}/{rest}" for name in pool[1]] if pool is not None else [slot]

    @property
    def n_lanes(self) -> int:
        """How many experiments run at once: ``lanes``, or the most instruments any step can use."""
        return self.lanes if self.lanes is not None else max(len(s.instruments) for s in self.steps)

    @field_validator("instruments")
    @classmethod
    def _names(cls, v: dict[str, InstrumentSpec]) -> dict[str, InstrumentSpec]:
        if not v:
            raise ValueError("at least one instrument is needed")
        for name in v:
            if not NAME_RE.match(name):
                raise ValueError(f"instrument name {name!r} must be an identifier")
        return v

    @model_validator(mode="after")
    def _steps(self) -> WorkflowSpec:
        problems = []
        for i, s in enumerate(self.steps):
            kinds = set()
            for name in s.instruments:
                inst = self.instruments.get(name)
                if inst is None:
                    known = ", ".join(self.instruments)
                    problems.append(f"steps[{i}]: instrument {name!r} is not declared (declared: {known})")
                elif inst.kind not in ACTION_KINDS[s.action]:
                    problems.append(
                        f"steps[{i}]: {s.action!r} needs a {' or '.join(ACTION_KINDS[s.action])}, "
                        f"but {name!r} is a {inst.kind}"
                    )
                else:
                    kinds.add(inst.kind)
            if len(kinds) > 1:
                problems.append(
                    f"steps[{i}]: interchangeable instruments must be of one kind, not {' and '.join(sorted(kinds))}"
                )
            if s.action == "transfer" and not {"from", "to"} <= set(s.options):
                problems.append(f"steps[{i}]: a transfer needs options 'from' and 'to' (slots such as furnace/boat1)")
        if self.park is not None and not any(i.kind == "robot" for i in self.instruments.values()):
            problems.append(f"park: {self.park!r} needs a robot among the instruments")
        if not any(s.action == "measure" for s in self.steps):
            problems.append("steps: the workflow never measures anything, so no objective can be computed")
        if problems:
            raise ValueError("; ".join(problems))
        return self


ACCELERATION_RANGE = (1e-3, 1e12)
"""Simulated seconds per wall-clock second a simulated lab may run at (or infinitely fast)."""


class SimulationSpec(_Spec):
    """The simulated lab that ``driver: sim`` instruments live in."""

    landscape: str = Field(default="perovskite-nanocrystal", description="Ground-truth materials landscape.")
    acceleration: float = Field(
        default=1000.0,
        allow_inf_nan=True,
        description="Simulated seconds per wall-clock second, from 0.001 to 1e12; .inf never sleeps.",
    )
    noise: float = Field(default=1.0, ge=0, description="Scale of every measurement noise (0: noiseless).")
    fault_rate: float = Field(default=0.0, ge=0, le=1, description="Probability of a transient fault per action.")
    world: SafePath | None = Field(
        default=None,
        description="SQLite file of the simulated samples, shared with instrument servers and IOCs "
        "in other processes (default: in memory).",
    )

    @field_validator("acceleration")
    @classmethod
    def _acceleration(cls, v: float) -> float:
        if v == math.inf:
            return v
        if not (ACCELERATION_RANGE[0] <= v <= ACCELERATION_RANGE[1]):  # NaN fails this too
            low, high = ACCELERATION_RANGE
            raise ValueError(f"acceleration ({v}) must lie between {low:g} and {high:g}, or be .inf")
        return v

    def resolved(self, base: Path) -> SimulationSpec:
        """The spec with a relative ``world`` path taken relative to ``base``."""
        if self.world is None or self.world.is_absolute():
            return self
        return self.model_copy(update={"world": base / self.world})


class Campaign(_Spec):
    """A closed-loop campaign: the file a scientist writes."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    description: str = ""
    seed: int = Field(default=0, ge=0, lt=2**32)
    priority: int = Field(
        default=0,
        ge=-100,
        le=100,
        description="Where the campaign's requests for shared instruments queue: higher first, "
        "then the earliest request (campaigns of equal priority take turns).",
    )
    space: SearchSpace
    constraints: list[LinearConstraint] = Field(
        default_factory=list, description='Linear constraints on numeric parameters, e.g. "CsPbCl3 + CsPbI3 <= 0.6".'
    )
    objectives: list[Objective] = Field(min_length=1)
    budget: Budget
    planner: PlannerSpec = Field(default_factory=PlannerSpec)
    workflow: WorkflowSpec
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    data_dir: SafePath = Field(default=Path("labos-data"), description="Where the store and plots go.")

    @field_validator("objectives")
    @classmethod
    def _unique_objectives(cls, v: list[Objective]) -> list[Objective]:
        names = [o.name for o in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"objective names must be unique: {', '.join(dupes)}")
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints_name_parameters(cls, v: list[LinearConstraint], info: ValidationInfo) -> list[LinearConstraint]:
        """Each constraint names numeric parameters of the space (the error at the constraint's own line)."""
        space = info.data.get("space")
        if space is None or not v:
            return v
        errors = []
        for i, c in enumerate(v):
            for msg in space.constraint_problems([c]):
                text = msg.removeprefix("constraints[0]: ")
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError("constraint", "{problem}", {"problem": text}), loc=(i,), input=str(c)
                    )
                )
        if errors:
            raise ValidationError.from_exception_data("constraints", errors)
        return v

    @model_validator(mode="after")
    def _constraints(self) -> Campaign:
        if self.constraints:
            # the space carries them to planners and checks; a copy, so a space object
            # shared with another campaign never gains this one's constraints
            object.__setattr__(self, "space", self.space.with_constraints(self.constraints))
        return self

    @property
    def primary(self) -> Objective:
        """The first objective, used for 'best so far'."""
        return self.objectives[0]

    def as_json(self) -> dict[str, Any]:
        """Strict-JSON form (what the store records and Prefect shows); infinities become "Infinity"."""
        data: dict[str, Any] = json.loads(self.model_dump_json())
        return data
