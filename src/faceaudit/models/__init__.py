"""Face model adapters: detect, align, embed. See :mod:`faceaudit.models.base`."""

from faceaudit.models.base import EmbedOutcome, ModelAdapter, load_adapter

__all__ = ["EmbedOutcome", "ModelAdapter", "load_adapter"]
