"""The Pilatus 6M as 60 modules in a two-level hierarchy, as dxtbx describes a multi-panel
Pilatus: a root group carrying the detector frame, and below it one panel per module (5 columns
x 12 rows of 487 x 195 pixels of 0.172 mm, 7-pixel gaps between columns and 17-pixel gaps
between rows), each with its local frame in the root's coordinates."""

from __future__ import annotations

import numpy as np
from xrefine.models import Detector, DetectorGroup, Panel

from .dials_fields import group_extra, panel_extra
from .node_errors import displaced_frame

__all__ = ["MODULE_SIZE_PX", "GAP_PX", "GRID", "PIXEL_MM", "pilatus6m_modules"]

MODULE_SIZE_PX = (487, 195)  # fast, slow
GAP_PX = (7, 17)  # between columns, between rows
GRID = (5, 12)  # columns, rows
PIXEL_MM = 0.172

def pilatus6m_modules(fast, slow, origin, mu_per_mm: float, thickness_mm: float = 0.32, errors=None) -> Detector:
    """A Pilatus 6M whose whole-detector frame is (fast, slow, origin) (lab, origin at the corner
    of pixel (0, 0) of module row 0, column 0), as 60 parallax-corrected module panels
    'row-RR_col-CC', row by row.  `errors` (60, 6), if given, displaces each module from the
    ideal grid in its own frame (node_errors.py)."""
    width, height = MODULE_SIZE_PX
    n_col, n_row = GRID
    panels = []
    for row in range(n_row):
        for col in range(n_col):
            offset_px = (col * (width + GAP_PX[0]), row * (height + GAP_PX[1]))
            local = (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([offset_px[0] * PIXEL_MM, offset_px[1] * PIXEL_MM, 0.0]))
            if errors is not None:
                centre = local[2] + 0.5 * PIXEL_MM * np.array([width, height, 0.0])
                local = displaced_frame(*local, centre, errors[len(panels)])
            panels.append(Panel(
                name=f"row-{row:02d}_col-{col:02d}", local_fast=local[0], local_slow=local[1], local_origin=local[2],
                image_size=MODULE_SIZE_PX, pixel_size=(PIXEL_MM, PIXEL_MM), thickness=thickness_mm, mu=mu_per_mm,
                parallax=True,
                extra=panel_extra(offset_px),
            ))
    root = DetectorGroup("P6M", fast, slow, origin, children=list(range(len(panels))), extra=group_extra())
    return Detector(panels, root)
