"""Data: the campaign store, the Bluesky document writer and exports."""

from labos.data.store import CampaignRecord, ExperimentRecord, Store

__all__ = ["CampaignRecord", "ExperimentRecord", "Store"]
