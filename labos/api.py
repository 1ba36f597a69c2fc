"""The Python API: load, run, resume and read campaigns from a script or a notebook.

>>> import labos
>>> campaign = labos.load("examples/demo.yaml")          # doctest: +SKIP
>>> summary = labos.run(campaign, "labos-data")          # doctest: +SKIP
>>> table = labos.results(summary.campaign_id, "labos-data")  # doctest: +SKIP

Each function does what the command of the same name does, with the same checks and
records. Prefect is configured before it is first imported: its home inside the data
directory, its logs in ``<data_dir>/labos.log`` (not the notebook), no telemetry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from labos.core.campaign import Campaign
from labos.core.errors import LabosError
from labos.validate import load_campaign

if TYPE_CHECKING:
    import pandas as pd

    from flows.campaign import CampaignSummary

__all__ = ["load", "results", "resume", "run"]


def load(path: str | Path, data_dir: str | Path | None = None) -> Campaign:
    """Read and check a campaign file, as ``labos validate`` does.

    Raises
    ------
    labos.core.errors.SpecError
        With every problem, each located in the file (``str()`` of it reads like the CLI's output).
    """
    return load_campaign(path, data_dir)


def _campaign(campaign: Campaign | dict[str, Any] | str | Path) -> tuple[Campaign, str | None]:
    if isinstance(campaign, Campaign):
        return campaign, None
    if isinstance(campaign, dict):
        return Campaign.model_validate(campaign), None
    return load(campaign), str(campaign)


def _prefect(data_dir: Path) -> None:
    """Quiet Prefect with its home in the data directory, before it is imported; its logs to labos.log."""
    from flows.settings import configure_prefect, route_logs, wait_for_api
    from labos.core.settings import Settings

    data_dir.mkdir(parents=True, exist_ok=True)
    configure_prefect(data_dir / "prefect", keep_alive=Settings().prefect_keep_alive)
    import flows.campaign  # noqa: F401 - Prefect sets up its logging on import: route it afterwards

    route_logs(data_dir / "labos.log", streams=False)
    wait_for_api()


def run(
    campaign: Campaign | dict[str, Any] | str | Path,
    data_dir: str | Path | None = None,
    *,
    max_experiments: int | None = None,
    seed: int | None = None,
    plot: bool = True,
) -> CampaignSummary:
    """Run a campaign to the end, as ``labos run`` does; its summary.

    Parameters
    ----------
    campaign
        A :class:`~labos.core.campaign.Campaign`, its dict form, or a campaign file.
    data_dir
        Where the store, the raw data and the plots go (default: the campaign's ``data_dir``).
    max_experiments, seed
        Overrides of the campaign's budget and seed.
    plot
        Write the convergence plot.

    Returns
    -------
    flows.campaign.CampaignSummary
        Status, counts, the best result, where everything is (``campaign_id`` for :func:`results`).
    """
    spec, source = _campaign(campaign)
    changes: dict[str, Any] = {}
    if max_experiments is not None:
        changes["budget"] = {**spec.budget.model_dump(), "max_experiments": max_experiments}
    if seed is not None:
        changes["seed"] = seed
    if changes:
        spec = Campaign.model_validate({**spec.model_dump(mode="json"), **changes})
    where = Path(data_dir) if data_dir is not None else spec.data_dir
    _prefect(where)
    from flows.campaign import run_campaign

    return run_campaign(spec, where, source, plot)


def resume(key: str, data_dir: str | Path = "labos-data", plot: bool = True) -> CampaignSummary:
    """Continue a stopped or interrupted campaign (an id, or the latest of that name), as ``labos resume`` does."""
    _prefect(Path(data_dir))
    from flows.campaign import resume_campaign

    return resume_campaign(data_dir, key, plot)


def results(key: str, data_dir: str | Path = "labos-data") -> pd.DataFrame:
    """One row per experiment of a campaign (an id, or the latest of that name), as a pandas DataFrame.

    Columns: ``seq``, ``experiment_id``, ``status``, ``cause``, ``error``, times,
    ``instrument_time_s``, and ``param.*``, ``metric.*``, ``objective.*`` (as ``labos
    export --format csv`` writes them).

    Raises
    ------
    LabosError
        If there is no store in ``data_dir`` or no such campaign there.
    """
    import pandas as pd

    from labos.data.store import open_store
    from labos.data.tables import experiment_rows

    with open_store(data_dir, read_only=True) as store:
        rec = store.find_campaign(key)
        if rec is None:
            raise LabosError(f"no campaign {key!r} in {store.db.where}")
        return pd.DataFrame(experiment_rows(store.experiments(rec.id)))
