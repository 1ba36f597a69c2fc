"""Process-wide settings, read from ``LABOS_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class Settings(BaseSettings):
    """Settings for one labos process.

    Every field can be set with an environment variable: ``LABOS_THREADS=2``.
    """

    model_config = SettingsConfigDict(env_prefix="LABOS_", extra="ignore")

    threads: int = Field(
        default=1,
        ge=1,
        description="Threads for torch and BLAS. One is fastest on small shared machines (see STACK.md).",
    )
    data_dir: Path | None = Field(default=None, description="Overrides every campaign's data_dir.")
    store_url: str | None = Field(
        default=None,
        description="The campaign store as a database URL (postgresql://user:password@host:port/db); "
        "default: labos.sqlite in the data directory.",
    )
    tiled_url: str | None = Field(
        default=None,
        description="A tiled server for the Bluesky runs (http://host:port/api/v1); each campaign is a container "
        "in it. Default: an embedded catalog per campaign in <data_dir>/tiled/.",
    )
    tiled_api_key: str | None = Field(default=None, description="The API key for ``tiled_url``.")
    prefect_home: Path | None = Field(
        default=None, description="Prefect's home; defaults to <data_dir>/prefect so nothing leaks to ~/.prefect."
    )
    lease_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a campaign's ownership and its instrument reservations last without renewal "
        "(renewed every third of that, at most every 2 s, while the process lives): how soon a dead process's "
        "instruments are free again.",
    )
    prefect_keep_alive: float = Field(
        default=600.0,
        ge=0,
        description="Seconds the Prefect API server that a run starts stays up after the last process using it "
        "ends, for the next run to reuse (0: it stops with the run).",
    )


def apply_thread_limits(threads: int) -> None:
    """Cap BLAS/OpenMP/torch thread pools at ``threads``.

    Environment variables only take effect for libraries not loaded yet; already loaded
    pools are capped through threadpoolctl (and torch, if imported).
    """
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
