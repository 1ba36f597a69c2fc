"""The campaign's convergence picture, and the warnings around the pictures and the run catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from labos.core.campaign import Objective
from labos.data.report import convergence_plot

pytestmark = pytest.mark.unit


def test_a_campaign_without_results_still_gets_its_picture_and_no_warning(tmp_path: Path) -> None:
    # warnings are errors under pytest: matplotlib's "No artists with labels" failed a CI run
    # whose campaign stopped at its first experiment
    path = convergence_plot([], Objective(name="gap"), tmp_path / "convergence.png", "nothing yet")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_starlettes_httpx_notice_is_not_an_error_outside_quiet() -> None:
    # tiled's in-process client imports starlette.testclient, which warns once per process with
    # a StarletteDeprecationWarning (a UserWarning). labos.data.tiled_app.quiet() hides it, but
    # another thread leaving its own catch_warnings can restore the filters under it: the test
    # configuration must not turn the notice into an error either (it failed a CI run's write)
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    warnings.warn(
        "Using `httpx` with `starlette.testclient` is deprecated; install `httpx2` instead.",
        StarletteDeprecationWarning,
        stacklevel=1,
    )
