"""Ground-truth materials landscapes: what a synthesis recipe really produces.

Only simulated instruments consult these; labos's analysis never sees them, it works
from the simulated measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol

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


@dataclass(frozen=True)
class PhaseTruth:
    """The true crystalline make-up of a solid sample."""

    fractions: dict[str, float]
    """Phase fractions (cation basis), summing to 1 over the crystalline phases."""
    crystallite_nm: float
    """Mean crystallite size (sets the diffraction peak width by Scherrer's equation)."""


class Landscape(Protocol):
    """Maps what is done to a sample to the truth of the resulting material.

    A sample's material state is a JSON-able mapping, so that it can live in a sample
    book shared by several processes.
    """

    name: str

    def inputs(self) -> list[InputSpec]:
        """What a synthesizer making this material accepts."""
        ...

    def make(self, recipe: Mapping[str, ParamValue], rng: np.random.Generator) -> dict[str, Any]:
        """The state of a sample made with ``recipe`` (batch variation drawn from ``rng``)."""
        ...

    def optical(self, state: Mapping[str, Any]) -> SampleTruth:
        """What a UV-vis spectrometer sees."""
        ...

    def anneal(self, state: Mapping[str, Any], program: Mapping[str, float]) -> dict[str, Any]:
        """The state after a heat treatment (``temperature_c``, ``dwell_min``, ``ramp_k_per_min``).

        Raises ``ValueError`` if such samples cannot be annealed.
        """
        ...

    def phases(self, state: Mapping[str, Any]) -> PhaseTruth:
        """What a diffractometer sees; ``ValueError`` if the sample has no crystalline phases to show."""
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

    def make(self, recipe: Mapping[str, ParamValue], rng: np.random.Generator) -> dict[str, Any]:
        """A colloid: its optical truth is fixed at synthesis."""
        return asdict(self.truth(recipe, rng))

    def optical(self, state: Mapping[str, Any]) -> SampleTruth:
        """The optical truth fixed at synthesis."""
        return SampleTruth(**state)

    def anneal(self, state: Mapping[str, Any], program: Mapping[str, float]) -> dict[str, Any]:
        """Colloidal nanocrystals are not annealed."""
        raise ValueError("a colloidal nanocrystal dispersion cannot go into a furnace")

    def phases(self, state: Mapping[str, Any]) -> PhaseTruth:
        """No diffraction model for colloids in this simulator."""
        raise ValueError("a colloidal dispersion in a cuvette gives no powder pattern")

    def truth(self, recipe: Mapping[str, ParamValue], rng: np.random.Generator) -> SampleTruth:
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


class BariumTitanateSolidState:
    """BaTiO3 by solid-state reaction of BaCO3 and TiO2 powders (milled, then annealed).

    * The powder's Ba/(Ba+Ti) ratio ``x`` comes from the dosed precursor fractions;
      milling sets how intimately the powders mix (a diffusion distance).
    * Reaction ``BaCO3 + TiO2 -> BaTiO3 + CO2`` advances with an Arrhenius rate
      (Ea = 300 kJ/mol, carbonate decomposition needs > 700 degC) integrated over every
      anneal's ramp and dwell; Ba2TiO4 forms as an intermediate on the way.
    * At completion off-stoichiometry leaves Ba2TiO4 (Ba-rich) or TiO2 / BaTi2O5
      (Ti-rich, BaTi2O5 above 1150 degC); above 1300 degC BaO evaporates, shifting the
      powder Ti-rich. Crystallites grow with temperature and time.
    """

    name = "batio3-solid-state"
    PRECURSORS: ClassVar[tuple[str, str]] = ("BaCO3", "TiO2")
    GAPS_EV: ClassVar[dict[str, float]] = {"BaTiO3": 3.2, "TiO2_rutile": 3.0, "BaTi2O5": 3.5, "Ba2TiO4": 4.4}

    def inputs(self) -> list[InputSpec]:
        """Two precursor powders (molar fractions) and the milling time."""
        return [
            *(
                InputSpec(c, "component", low=0.0, high=1.0, unit="fraction", description=f"{c} powder")
                for c in self.PRECURSORS
            ),
            InputSpec("milling_time", "real", low=0.0, high=240.0, unit="min", default=30.0),
        ]

    def make(self, recipe: Mapping[str, ParamValue], rng: np.random.Generator) -> dict[str, Any]:
        """A milled green powder: composition, mixing, no reaction yet."""
        ba, ti = (max(float(recipe.get(c, 0.0)), 0.0) for c in self.PRECURSORS)
        mixing = 1.0 - math.exp(-float(recipe.get("milling_time", 30.0)) / 30.0)
        return {
            "x_ba": ba / (ba + ti),
            "mixing": 0.15 + 0.85 * mixing,
            "progress": 0.0,
            "growth": 0.0,
            "ba_loss": 0.0,
            "max_temperature_c": 25.0,
            "orientation": float(rng.normal(0.0, 0.1)),
        }

    @staticmethod
    def _rate(temp_c: float, ea: float, t_ref_c: float) -> float:
        t = temp_c + 273.15
        return math.exp(-ea / 8.314 * (1.0 / t - 1.0 / (t_ref_c + 273.15)))

    def anneal(self, state: Mapping[str, Any], program: Mapping[str, float]) -> dict[str, Any]:
        """Integrate reaction, grain growth and BaO loss over the ramp and the dwell."""
        s = dict(state)
        t_set = float(program["temperature_c"])
        ramp = float(program["ramp_k_per_min"])
        dwell_h = float(program["dwell_min"]) / 60.0
        # ramp: sample the rate at 50 steps on the way up (time at each step in hours)
        steps = np.linspace(25.0, t_set, 50)
        dt_ramp_h = (t_set - 25.0) / ramp / 60.0 / len(steps)
        segments = [(float(tc), dt_ramp_h) for tc in steps] + [(t_set, dwell_h)]
        for temp_c, hours in segments:
            if temp_c < 700.0:
                continue
            s["progress"] += 0.9 * s["mixing"] * self._rate(temp_c, 300e3, 1000.0) * hours
            s["growth"] += 0.5 * self._rate(temp_c, 250e3, 1150.0) * hours
            if temp_c > 1300.0:
                s["ba_loss"] += 0.02 * self._rate(temp_c, 400e3, 1350.0) * hours
        s["max_temperature_c"] = max(float(s["max_temperature_c"]), t_set)
        return s

    def phases(self, state: Mapping[str, Any]) -> PhaseTruth:
        """Phase fractions (cation basis) and crystallite size."""
        x = min(max(float(state["x_ba"]) - float(state["ba_loss"]), 0.0), 1.0)
        alpha = 1.0 - math.exp(-float(state["progress"]))
        hot = float(state["max_temperature_c"]) >= 1150.0
        # equilibrium products of full reaction
        if x >= 0.5:
            full = {"BaTiO3": max(2.0 - 3.0 * x, 0.0) if x < 2 / 3 else 0.0, "Ba2TiO4": min(2.0 * x - 1.0, 1.0)}
            if x > 2 / 3:
                full["BaCO3"] = 3.0 * x - 2.0
        elif hot:
            full = {"BaTiO3": max(3.0 * x - 1.0, 0.0), "BaTi2O5": 1.0 - 2.0 * x}
            if x < 1 / 3:
                full["TiO2_rutile"] = 1.0 - 3.0 * x
        else:
            full = {"BaTiO3": 2.0 * x, "TiO2_rutile": 1.0 - 2.0 * x}
        inter = 1.6 * alpha * (1.0 - alpha) * min(x, 1.0 - x)  # Ba2TiO4 on the way
        fractions: dict[str, float] = {
            "BaCO3": (1.0 - alpha) * x,
            "TiO2_rutile": (1.0 - alpha) * (1.0 - x),
        }
        for k, v in full.items():
            fractions[k] = fractions.get(k, 0.0) + alpha * v
        fractions["Ba2TiO4"] = fractions.get("Ba2TiO4", 0.0) + inter
        fractions["BaTiO3"] = max(fractions.get("BaTiO3", 0.0) - inter, 0.0)
        total = sum(fractions.values())
        clean = {k: v / total for k, v in fractions.items() if v / total > 1e-4}
        crystallite = 25.0 + 175.0 * (1.0 - math.exp(-float(state["growth"])))
        return PhaseTruth(fractions=clean, crystallite_nm=crystallite)

    def optical(self, state: Mapping[str, Any]) -> SampleTruth:
        """Diffuse reflectance of the powder: the edge of the lowest-gap phase present above 5%."""
        fr = self.phases(state).fractions
        present = [(self.GAPS_EV[p], f) for p, f in fr.items() if p in self.GAPS_EV and f > 0.05]
        gap, frac = min(present) if present else (4.4, 0.1)
        return SampleTruth(band_gap_ev=gap, urbach_ev=0.05, amplitude=0.3 + 1.2 * frac, scattering=0.3)


LANDSCAPES: dict[str, type] = {
    PerovskiteNanocrystals.name: PerovskiteNanocrystals,
    BariumTitanateSolidState.name: BariumTitanateSolidState,
}


def get_landscape(name: str) -> Landscape:
    """The landscape called ``name``; the error lists the known ones."""
    try:
        cls = LANDSCAPES[name]
    except KeyError:
        raise KeyError(f"unknown landscape {name!r}; known: {', '.join(LANDSCAPES)}") from None
    landscape: Landscape = cls()
    return landscape
