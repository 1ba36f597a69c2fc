"""labos: an autonomous-laboratory framework.

Ophyd devices wrap instruments (with simulated twins), planners propose experiments,
Bluesky runs them, Prefect closes the loop, and every document, proposal, failure and
decision lands in the campaign store.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("labos")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "load", "results", "resume", "run"]


def __getattr__(name: str) -> object:
    """``labos.load``, ``labos.run``, ``labos.resume``, ``labos.results`` (:mod:`labos.api`), imported on first use."""
    if name in ("load", "run", "resume", "results"):
        import importlib  # on first use: ``import labos`` (the CLI's --version) stays light

        return getattr(importlib.import_module("labos.api"), name)
    raise AttributeError(f"module 'labos' has no attribute {name!r}")
