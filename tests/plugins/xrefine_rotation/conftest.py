"""Simulated rotation experiments for the xrefine_rotation tests (MATH.md 10.2).

Beam along +z (tilted about y by a Gaussian 0.5 degrees), spindle along x, one Pilatus-2M-like
panel ~200 mm downstream perturbed by ~0.5 degrees, a 180-degree scan of 0.1-degree images, and a
crystal whose axes lie within ~0.5 degrees of x, y, z.  Observations are the noise-free
predictions of every reflection to 2 Angstrom that reaches the panel.

Test modules reach these helpers through the `sim` fixture (this module) rather than by
importing `conftest`, a name other test folders use too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest

from xrefine.geometry import rotation_matrix, unit
from xrefine.models import Beam, Crystal, Detector, Experiment, Goniometer, Panel, Scan, reciprocal_B_from_metric
from xrefine.predictor import ExperimentState

from xrefine_rotation import RotationPredictor, predict_all

#: (Hall symbol, cell a, b, c (Angstrom), alpha, beta, gamma (degrees)) per lattice type
LATTICES = {
    "triclinic": (" P 1", (12.3, 13.1, 14.4, 84.0, 96.0, 101.0)),
    "monoclinic": (" P 2y", (12.3, 13.1, 14.4, 90.0, 104.0, 90.0)),
    "orthorhombic": (" P 2 2", (12.3, 13.1, 14.4, 90.0, 90.0, 90.0)),
    "tetragonal": (" P 4", (12.3, 12.3, 14.4, 90.0, 90.0, 90.0)),
    "hexagonal": (" P 6", (12.3, 12.3, 14.4, 90.0, 90.0, 120.0)),
    "rhombohedral": (" P 3*", (12.3, 12.3, 12.3, 82.0, 82.0, 82.0)),
    "cubic": (" P 4 2 3", (13.3, 13.3, 13.3, 90.0, 90.0, 90.0)),
}


def B_from_cell(a, b, c, alpha, beta, gamma) -> np.ndarray:
    """Lower-triangular B (1/Angstrom) of a cell (Angstrom, degrees)."""
    ca, cb, cg = np.cos(np.radians([alpha, beta, gamma]))
    G = np.array([[a * a, a * b * cg, a * c * cb], [a * b * cg, b * b, b * c * ca], [a * c * cb, b * c * ca, c * c]])
    Gs = np.linalg.inv(G)
    return reciprocal_B_from_metric(np.array([Gs[0, 0], Gs[1, 1], Gs[2, 2], Gs[0, 1], Gs[0, 2], Gs[1, 2]]))


def small_rotation(rng, sigma_deg: float = 0.5) -> np.ndarray:
    return rotation_matrix(unit(rng.normal(size=3)), np.radians(rng.normal(0.0, sigma_deg)))


def make_experiment(
    seed: int = 2,
    lattice: str = "triclinic",
    image_range=(1, 1800),
    oscillation=(0.0, 0.1),
    setting_rotation=None,
    fixed_rotation=None,
) -> Experiment:
    """A simulated rotation experiment (see module docstring)."""
    rng = np.random.default_rng(seed)
    wavelength = rng.uniform(0.8, 1.2)
    s0_unit = rotation_matrix([0.0, 1.0, 0.0], np.radians(rng.normal(0.0, 0.5))) @ np.array([0.0, 0.0, 1.0])
    beam = Beam(direction=-s0_unit, wavelength=wavelength)
    gonio = Goniometer(
        rotation_axis=[1.0, 0.0, 0.0],
        fixed_rotation=np.eye(3) if fixed_rotation is None else fixed_rotation,
        setting_rotation=np.eye(3) if setting_rotation is None else setting_rotation,
    )
    hall, cell = LATTICES[lattice]
    A = small_rotation(rng) @ B_from_cell(*cell)
    crystal = Crystal(real_space=np.linalg.inv(A), space_group_hall_symbol=hall)
    npx, pixel = (1475, 1679), 0.172
    Rd = small_rotation(rng)
    fast, slow = Rd @ np.array([1.0, 0.0, 0.0]), Rd @ np.array([0.0, 1.0, 0.0])
    centre = small_rotation(rng) @ np.array([0.0, 0.0, 200.0])
    origin = centre - 0.5 * (npx[0] * pixel * fast + npx[1] * pixel * slow)
    panel = Panel("panel", fast, slow, origin, npx, (pixel, pixel))
    scan = Scan(image_range=image_range, oscillation=oscillation)
    return Experiment(beam=beam, detector=Detector([panel]), goniometer=gonio, scan=scan, crystal=crystal, identifier="sim")


@dataclass
class Observed:
    """Noise-free observations of an experiment: Miller indices, entering flags, (X, Y, phi)."""

    miller_index: np.ndarray
    entering: np.ndarray
    xyz: np.ndarray
    panel: np.ndarray


def observe(experiment: Experiment, d_min: float = 2.0) -> Observed:
    table = predict_all(experiment, d_min)
    return Observed(table["miller_index"], table["entering"], table["xyzcal.mm"], table["panel"])


def predict(experiment: Experiment, obs: Observed, derivatives=()):
    state = ExperimentState.from_experiment(experiment, 0)
    return RotationPredictor().predict(state, obs.miller_index, obs.entering, obs.xyz[:, 2], derivatives)


def central_difference(f, x0, steps) -> np.ndarray:
    """d f / d x_i at x0 for every i by fourth-order central differences, stacked on a new last axis.

    Two central differences, with steps h and 2h, are combined (Richardson) as (4 D_h - D_2h) / 3,
    cancelling the h^2 truncation term.  That lets the steps be large enough for rounding in f
    (amplified by 1/Delta for reflections near the spindle) to stay far below the 1e-6 relative
    tolerance while truncation, now O(h^4), is negligible too.  f(x) typically sets parameters
    to x; it is called with x0 last, which restores them.
    """
    x0 = np.asarray(x0, dtype=float)
    cols = []
    for i, h in enumerate(steps):
        unit_step = np.zeros_like(x0)
        unit_step[i] = 1.0
        d1 = (f(x0 + 0.5 * h * unit_step) - f(x0 - 0.5 * h * unit_step)) / h
        d2 = (f(x0 + h * unit_step) - f(x0 - h * unit_step)) / (2 * h)
        cols.append((4 * np.asarray(d1) - np.asarray(d2)) / 3)
    f(x0)
    return np.stack(cols, axis=-1)


def assert_derivatives_close(fd, analytic, axis_scale, rtol=1e-6, atol=0.0):
    """|fd - analytic| <= rtol * max(|analytic|, scale) + atol element-wise, scale the RMS of
    `analytic` over `axis_scale` (e.g. over reflections, separately for each of X, Y, phi and
    each parameter), so rows whose derivative happens to be near zero are judged on the
    column's typical size.  `atol` only matters for columns that are identically zero (phi does
    not depend on the detector), where the differences see nothing but rounding."""
    scale = np.sqrt(np.mean(analytic**2, axis=axis_scale, keepdims=True))
    bound = rtol * np.maximum(np.abs(analytic), scale) + atol
    diff = np.abs(fd - analytic)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(bound > 0, diff / bound, np.where(diff == 0, 0.0, np.inf))
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 1.0, (
        f"derivative mismatch at {worst}: fd={fd[worst]!r} analytic={analytic[worst]!r} "
        f"(relative {excess[worst] * rtol:.2e})"
    )


_THIS_MODULE = sys.modules[__name__]


@pytest.fixture(scope="session")
def sim():
    """The simulation and finite-difference helpers of this module."""
    return _THIS_MODULE
