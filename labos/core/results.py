"""What flows between planner, lab and store: proposals and observations."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from labos.core.space import ParamValue


class Proposal(BaseModel):
    """A point the planner asks to be measured."""

    model_config = ConfigDict(frozen=True)

    experiment_id: str
    seq: int = Field(ge=1, description="1-based experiment number within the campaign.")
    params: dict[str, ParamValue]
    planner: str


class Observation(BaseModel):
    """The outcome of one experiment, as told to the planner.

    ``objectives`` is empty when the experiment failed; failures are still told so that
    planners can learn where experiments fail.
    """

    model_config = ConfigDict(frozen=True)

    params: dict[str, ParamValue]
    objectives: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the experiment succeeded."""
        return self.status == "ok"
