"""Evaluation sample ids (the window's geometry lives in :mod:`lift.window`)."""

from __future__ import annotations


def sample_id(dataset: str, video_id: str, target_index: int) -> str:
    """Stable id of one evaluation sample; identical across windows and offsets for one target."""
    return f"{dataset}/{video_id}/{target_index:06d}"


__all__ = ["sample_id"]
