"""Ground-truth materials landscapes: what a synthesis recipe really produces.

Only simulated instruments consult these; labos's analysis never sees them, it works
from the simulated measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from labos.core.space import ParamValue
from labos.devices.drivers import InputSpec


@dataclass(frozen=True)
class SampleTruth:
    """The true optical properties of one synthesised sample."""

    band_gap_ev: float
    urbach_ev: float
    """Width of the exponential absorption tail below the gap (disorder)."""
    amplitude: float
    """Absorbance scale above the edge (proportional to yield)."""
    scattering: float
    """Wavelength-dependent scattering background at 400 nm."""


class Landscape(Protocol):
    """Maps an executed recipe to the truth of the resulting sample."""

    name: str

    def inputs(self) -> list[InputSpec]:
        """What a synthesizer making this material accepts."""
        ...

    def sample(self, recipe: Mapping[str, ParamValue], rng: np.random.Generator) -> SampleTruth:
        """The truth of a sample made with ``recipe`` (batch variation drawn from ``rng``)."""
        ...


class PerovskiteNanocrystals:
    """Mixed-halide CsPbX3 nanocrystals from a hot-injection synthesis.

    * The bulk gap follows the halide fractions (Vegard's law with bowing):
      CsPbCl3 3.03 eV, CsPbBr3 2.36 eV, CsPbI3 1.73 eV.
    * Crystals grow with temperature and time (Arrhenius rate, ligand-dependent);
      quantum confinement widens the gap by ``3.0 eV nm^2 / L^2``.
    * Yield rises with time and falls by decomposition above 180 degC; chloride-iodide
      mixtures phase-segregate, which broadens the absorption edge.
    """

    name = "perovskite-nanocrystal"
    GAPS: ClassVar[dict[str, float]] = {"CsPbCl3": 3.03, "CsPbBr3": 2.36, "CsPbI3": 1.73}
    BOWING: ClassVar[dict[tuple[str, str], float]] = {
        ("CsPbCl3", "CsPbBr3"): 0.33,
        ("CsPbBr3", "CsPbI3"): 0.28,
        ("CsPbCl3", "CsPbI3"): 0.80,
    }
    LIGANDS: ClassVar[dict[str, float]] = {"oleylamine": 1.0, "octylamine": 1.8, "dodecylamine": 1.3}

    def inputs(self) -> list[InputSpec]:
        """Three halide precursors, temperature, reaction time and ligand."""
        comps = [
            InputSpec(c, "component", low=0.0, high=1.0, unit="fraction", description=f"{c} precursor")
            for c in self.GAPS
        ]
        return [
            *comps,
            InputSpec("temperature", "real", low=20.0, high=220.0, unit="degC", default=150.0),
            InputSpec("reaction_time", "real", low=1.0, high=3600.0, unit="s", default=60.0),
            InputSpec("ligand", "choice", choices=tuple(self.LIGANDS), default="oleylamine"),
        ]

    def sample(self, recipe: Mapping[str, ParamValue], rng: np.random.Generator) -> SampleTruth:
        """Gap from composition and confinement; edge width and yield from the conditions."""
        amounts = {c: max(float(recipe.get(c, 0.0)), 0.0) for c in self.GAPS}
        total = sum(amounts.values())
        x = {c: a / total for c, a in amounts.items()}
        gap_bulk = sum(x[c] * g for c, g in self.GAPS.items())
        gap_bulk -= sum(b * x[a] * x[c] for (a, c), b in self.BOWING.items())
        temp_c = float(recipe["temperature"])
        t = float(recipe["reaction_time"])
        lig = self.LIGANDS[str(recipe["ligand"])]
        temp_k = temp_c + 273.15
        rate = lig / 60.0 * math.exp(-40e3 / 8.314 * (1.0 / temp_k - 1.0 / 423.15))
        size_final = 6.0 + 0.06 * (temp_c - 100.0)
        size = 2.5 + max(size_final - 2.5, 0.5) * (1.0 - math.exp(-rate * t))
        size *= float(np.exp(rng.normal(0.0, 0.02)))  # batch-to-batch variation
        gap = gap_bulk + 3.0 / size**2
        segregation = 4.0 * x["CsPbCl3"] * x["CsPbI3"]
        urbach = 0.022 + 0.09 * segregation + 0.004 * abs(rng.normal())
        yield_ = 1.0 - math.exp(-t * rate * 3.0)
        if temp_c > 180.0:
            yield_ *= math.exp(-(temp_c - 180.0) / 25.0)
        amplitude = 0.05 + 1.1 * yield_
        scattering = 0.01 + 0.03 * (size / 10.0) ** 2
        return SampleTruth(band_gap_ev=gap, urbach_ev=urbach, amplitude=amplitude, scattering=scattering)


LANDSCAPES: dict[str, type] = {PerovskiteNanocrystals.name: PerovskiteNanocrystals}


def get_landscape(name: str) -> Landscape:
    """The landscape called ``name``; the error lists the known ones."""
    try:
        cls = LANDSCAPES[name]
    except KeyError:
        raise KeyError(f"unknown landscape {name!r}; known: {', '.join(LANDSCAPES)}") from None
    landscape: Landscape = cls()
    return landscape
