"""The pair of rotation axes that beam and goniometer parameterisations tilt about."""

from __future__ import annotations

from typing import Optional

import numpy as np

from xrefine.geometry import unit

__all__ = ["plane_axes", "perpendicular"]


def perpendicular(v: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to v, chosen deterministically (crossed with the coordinate
    axis on which v has the smallest component, which is never close to parallel)."""
    v = np.asarray(v, dtype=float)
    e = np.zeros(3)
    e[int(np.argmin(np.abs(v)))] = 1.0
    return unit(np.cross(e, v))


def plane_axes(primary: np.ndarray, secondary: Optional[np.ndarray] = None) -> tuple:
    """(in_plane, normal) unit axes, both perpendicular to `primary`.

    normal = unit(primary x secondary) is perpendicular to the plane of the two vectors and
    in_plane = unit(normal x primary) lies in it.  Without a usable `secondary` (None, or
    parallel to `primary`), in_plane is any perpendicular of `primary` and
    normal = unit(primary x in_plane), which is the same right-handed construction.
    """
    primary = np.asarray(primary, dtype=float)
    if secondary is not None:
        n = np.cross(primary, np.asarray(secondary, dtype=float))
        if np.linalg.norm(n) > 1e-12 * np.linalg.norm(primary) * np.linalg.norm(secondary):
            normal = unit(n)
            return unit(np.cross(normal, primary)), normal
    in_plane = perpendicular(primary)
    return in_plane, unit(np.cross(primary, in_plane))
