"""Unit-cell parameters and their derivatives with respect to B (MATH.md §9.1)."""

from __future__ import annotations

import numpy as np

__all__ = ["cell_gradients"]


def cell_gradients(B: np.ndarray, dB: np.ndarray) -> np.ndarray:
    """d(a, b, c, alpha, beta, gamma)/dp (Angstrom, degrees) for each dB/dp in dB (k, 3, 3).

    The direct vectors are the columns of O = (Bᵀ)⁻¹, so dO = −O dBᵀ O.
    """
    O = np.linalg.inv(B.T)
    dO = -np.einsum("ij,kjl,lm->kim", O, np.transpose(dB, (0, 2, 1)), O)
    vec = [O[:, i] for i in range(3)]
    dvec = [dO[:, :, i] for i in range(3)]
    lengths = [np.linalg.norm(v) for v in vec]
    units = [v / l for v, l in zip(vec, lengths)]
    out = np.empty((dB.shape[0], 6))
    for i in range(3):
        out[:, i] = dvec[i] @ units[i]
    # alpha between b and c, beta between a and c, gamma between a and b
    for col, (i, j) in zip((3, 4, 5), ((1, 2), (0, 2), (0, 1))):
        cos = units[i] @ units[j]
        sin = np.sqrt(max(1.0 - cos * cos, 1e-300))
        gi = (cos * units[i] - units[j]) / (lengths[i] * sin)
        gj = (cos * units[j] - units[i]) / (lengths[j] * sin)
        out[:, col] = np.degrees(dvec[i] @ gi + dvec[j] @ gj)
    return out
