"""The fields DIALS writes for detector panels and groups that xrefine keeps but does not
interpret, so that simulated detectors are written as dxtbx would write them."""

from __future__ import annotations

__all__ = ["panel_extra", "group_extra"]


def panel_extra(raw_image_offset=(0, 0), trusted_range=(-1.0, 1048575.0)) -> dict:
    """A silicon pixel-array sensor's uninterpreted fields."""
    return {"type": "SENSOR_PAD", "raw_image_offset": list(raw_image_offset), "trusted_range": list(trusted_range),
            "material": "Si", "identifier": "", "mask": [], "gain": 1.0, "pedestal": 0.0}


def group_extra() -> dict:
    """A hierarchy group's uninterpreted fields (dxtbx stores a group as a panel-like node)."""
    return {"type": "", "raw_image_offset": [0, 0], "image_size": [0, 0], "pixel_size": [0.0, 0.0],
            "trusted_range": [0.0, 0.0], "thickness": 0.0, "material": "", "mu": 0.0, "identifier": "",
            "mask": [], "gain": 1.0, "pedestal": 0.0, "px_mm_strategy": {"type": "SimplePxMmStrategy"}}
