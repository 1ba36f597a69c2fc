"""The simulated world shared by the simulated instruments of one lab.

It holds the clock, the ground-truth landscape, the physical samples made so far and
an injected random state, so that a synthesizer and a spectrometer see the same
samples, and a seeded campaign is reproducible.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labos.core.errors import DeviceFault
from simulators.clock import SimClock
from simulators.landscapes import Landscape, SampleTruth, get_landscape


@dataclass
class SimWorld:
    """Everything simulated instruments share."""

    landscape: Landscape
    clock: SimClock
    rng: np.random.Generator
    noise: float = 1.0
    fault_rate: float = 0.0
    samples: dict[str, SampleTruth] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_simulation(cls, simulation: Mapping[str, Any], seed: int) -> SimWorld:
        """Build a world from a campaign's ``simulation`` section."""
        return cls(
            landscape=get_landscape(str(simulation.get("landscape", "perovskite-nanocrystal"))),
            clock=SimClock(float(simulation.get("acceleration", 1000.0))),
            rng=np.random.default_rng(seed),
            noise=float(simulation.get("noise", 1.0)),
            fault_rate=float(simulation.get("fault_rate", 0.0)),
        )

    def child_rng(self) -> np.random.Generator:
        """An independent random stream for one instrument."""
        with self.lock:
            return np.random.default_rng(self.rng.integers(2**63))

    def maybe_fault(self, device: str, rng: np.random.Generator, what: str) -> None:
        """Raise a transient :class:`DeviceFault` with probability ``fault_rate``."""
        if self.fault_rate > 0 and rng.random() < self.fault_rate:
            raise DeviceFault(device, f"{what} (simulated transient fault)", transient=True)
