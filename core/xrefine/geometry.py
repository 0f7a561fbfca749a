"""Small shared geometry: rotation matrices and their derivatives, vectorised where it matters.

Conventions (right-handed rotations, frames) are stated once in docs/conventions.md.
"""

from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """Unit vector(s) along the last axis."""
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def skew(e: np.ndarray) -> np.ndarray:
    """Cross-product matrix [e]x, so that skew(e) @ v == cross(e, v)."""
    x, y, z = np.asarray(e, dtype=float)
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def rotation_matrix(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Right-handed rotation by `angle_rad` about the (normalised) `axis`."""
    e = unit(axis)
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return c * np.eye(3) + (1.0 - c) * np.outer(e, e) + s * skew(e)


def rotation_matrix_derivative(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """d R(axis, angle) / d angle (per radian)."""
    e = unit(axis)
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return s * (np.outer(e, e) - np.eye(3)) + c * skew(e)


def rotation_matrices(axis: np.ndarray, angles_rad: np.ndarray) -> np.ndarray:
    """Stack of rotations (n, 3, 3) about one axis by n angles."""
    e = unit(axis)
    c = np.cos(angles_rad)[:, None, None]
    s = np.sin(angles_rad)[:, None, None]
    return c * np.eye(3) + (1.0 - c) * np.outer(e, e) + s * skew(e)


def rotate_vectors(axis: np.ndarray, angles_rad: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of vectors v (n, 3) about one axis by angles (n,), without 3x3 stacks."""
    e = unit(axis)
    c = np.cos(angles_rad)[:, None]
    s = np.sin(angles_rad)[:, None]
    return v * c + np.cross(e, v) * s + np.outer(v @ e, e) * (1.0 - c)
