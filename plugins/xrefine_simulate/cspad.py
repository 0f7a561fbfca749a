"""A CSPAD-like detector: 64 ASIC panels in a four-level hierarchy.

detector (root, centred on the beam) -> 4 quadrants, each turned by a quarter turn about the
detector normal around the central hole -> 8 two-ASIC sensors per quadrant, in four pairs on a
2 x 2 grid whose pairs alternate between lying along the quadrant's fast and slow axes -> 2
ASICs of 194 x 185 pixels of 0.11 mm per sensor, side by side along the sensor's fast axis.

The real CSPAD's double-width pixels between the two ASICs of a sensor are modelled as a 3-pixel
gap, and the quadrant layout is a simplified pinwheel; the hierarchy, panel sizes and the
way nodes are nested are those of the dxtbx CSPAD description.
"""

from __future__ import annotations

import numpy as np
from xrefine.geometry import rotation_matrix
from xrefine.models import Detector, DetectorGroup, Panel

from .dials_fields import group_extra, panel_extra
from .node_errors import displaced_frame

__all__ = ["ASIC_SIZE_PX", "PIXEL_MM", "cspad_detector"]

ASIC_SIZE_PX = (194, 185)  # fast, slow
PIXEL_MM = 0.11
ASIC_GAP_PX = 3  # the double-width central pixels of a sensor
SENSOR_PITCH_PX = 200  # between the two sensors of a pair
CELL_PITCH_PX = 420  # between the pairs of a quadrant
HOLE_MM = 1.0  # half-width of the central hole


def _sensor_size_mm() -> np.ndarray:
    return PIXEL_MM * np.array([2 * ASIC_SIZE_PX[0] + ASIC_GAP_PX, ASIC_SIZE_PX[1], 0.0])


def cspad_detector(fast, slow, origin, thickness_mm: float = 0.5, mu_per_mm: float = 0.0,
                   quadrant_errors=None, sensor_errors=None) -> Detector:
    """A CSPAD-like detector whose root frame is (fast, slow, origin) (lab; origin at the centre
    of the central hole).  Panels are named 'qQ-sS-aA' and numbered quadrant by quadrant, sensor
    by sensor.  `quadrant_errors` (4, 6) and `sensor_errors` (32, 6), if given, displace those
    nodes from the ideal layout in their own frames (node_errors.py); the two ASICs of a sensor
    share one piece of silicon and stay exactly placed."""
    asic_w = PIXEL_MM * ASIC_SIZE_PX[0]
    sensor = _sensor_size_mm()
    quadrant_mm = PIXEL_MM * (CELL_PITCH_PX + 2 * SENSOR_PITCH_PX)
    ex, ey = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    panels, quadrants = [], []
    for q in range(4):
        sensors = []
        for s in range(8):
            cell, k = divmod(s, 2)
            i, j = cell % 2, cell // 2
            corner = PIXEL_MM * CELL_PITCH_PX * np.array([i, j, 0.0])
            if (i + j) % 2 == 0:  # the pair lies along the quadrant's fast axis, stacked along slow
                frame = (ex, ey, corner + PIXEL_MM * SENSOR_PITCH_PX * k * ey)
            else:  # turned a quarter: sensor fast along the quadrant's slow, sensor slow along -fast
                frame = (ey, -ex, corner + (sensor[1] + PIXEL_MM * SENSOR_PITCH_PX * k) * ex)
            if sensor_errors is not None:
                centre = frame[2] + 0.5 * (sensor[0] * frame[0] + sensor[1] * frame[1])
                frame = displaced_frame(*frame, centre, sensor_errors[len(sensors) + 8 * q])
            asics = []
            for a in range(2):
                asics.append(len(panels))
                panels.append(Panel(
                    name=f"q{q}-s{s}-a{a}", local_fast=ex, local_slow=ey,
                    local_origin=[a * (asic_w + PIXEL_MM * ASIC_GAP_PX), 0.0, 0.0],
                    image_size=ASIC_SIZE_PX, pixel_size=(PIXEL_MM, PIXEL_MM), thickness=thickness_mm, mu=mu_per_mm,
                    parallax=False, extra=panel_extra(trusted_range=(-10.0, 65535.0)),
                ))
            sensors.append(DetectorGroup(f"q{q}-s{s}", *frame, children=asics, extra=group_extra()))
        turn = rotation_matrix([0.0, 0.0, 1.0], 0.5 * np.pi * q)
        frame = (turn @ ex, turn @ ey, turn @ np.array([HOLE_MM, HOLE_MM, 0.0]))
        if quadrant_errors is not None:
            frame = displaced_frame(*frame, frame[2] + 0.5 * quadrant_mm * (frame[0] + frame[1]), quadrant_errors[q])
        quadrants.append(DetectorGroup(f"q{q}", *frame, children=sensors, extra=group_extra()))
    root = DetectorGroup("CSPAD", fast, slow, origin, children=quadrants, extra=group_extra())
    return Detector(panels, root)
