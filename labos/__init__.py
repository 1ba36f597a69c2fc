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

__all__ = ["__version__"]
