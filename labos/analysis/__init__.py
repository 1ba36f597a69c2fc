"""Analysis: turn raw measurements into the metrics campaign objectives are built from."""

from labos.analysis.uvvis import TaucResult, tauc_band_gap

__all__ = ["TaucResult", "tauc_band_gap"]
