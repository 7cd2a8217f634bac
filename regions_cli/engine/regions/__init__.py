"""The region types, one module each, over a shared base (`base.BaseRegion`)."""

from __future__ import annotations

from collections.abc import Mapping

from regions_cli.engine.regions.base import BaseRegion, Entry, Outcome, RegionContext
from regions_cli.engine.regions.broadcast import BroadcastRegion
from regions_cli.engine.regions.listener import ListenerRegion
from regions_cli.engine.regions.llm import FeedForwardRegion, Region
from regions_cli.engine.regions.rag import RAGRegion
from regions_cli.engine.regions.router import RouterRegion
from regions_cli.engine.regions.workflow import WorkflowRegion
from regions_cli.model import RegionConfig

#: Region type name (as in the YAML) -> class.
REGION_CLASSES: Mapping[str, type[BaseRegion]] = {
    cls.type_name: cls
    for cls in (
        Region,
        FeedForwardRegion,
        RAGRegion,
        BroadcastRegion,
        ListenerRegion,
        RouterRegion,
        WorkflowRegion,
    )
}


def make_region(config: RegionConfig, context: RegionContext | None = None) -> BaseRegion:
    """Instantiate the class `config.type` names."""
    try:
        cls = REGION_CLASSES[config.type]
    except KeyError:
        raise ValueError(
            f"regions.{config.name}.type: unknown region type {config.type!r}"
        ) from None
    return cls(config, context)


__all__ = [
    "REGION_CLASSES",
    "BaseRegion",
    "BroadcastRegion",
    "Entry",
    "FeedForwardRegion",
    "ListenerRegion",
    "Outcome",
    "RAGRegion",
    "Region",
    "RegionContext",
    "RouterRegion",
    "WorkflowRegion",
    "make_region",
]
