"""Load a campaign file and check it completely, reporting every problem with its line."""

from __future__ import annotations

from pathlib import Path

from labos.checks import check_campaign
from labos.core.campaign import Campaign
from labos.core.errors import SpecError
from labos.core.loader import locate, read_model


def load_campaign(path: str | Path, data_dir: str | Path | None = None) -> Campaign:
    """Read, validate and check a campaign file.

    Raises
    ------
    SpecError
        With every problem found (schema first; the deeper checks run once the schema
        is satisfied), each located in the file. Registered instruments are looked up in
        ``data_dir`` (default: the campaign's).
    """
    campaign, lines = read_model(Campaign, path)
    problems = check_campaign(campaign, Path(data_dir) if data_dir is not None else None)
    if problems:
        raise SpecError(locate(problems, lines), str(path))
    return campaign
