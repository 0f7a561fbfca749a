"""Small rotation experiments, static parameterisations of every kind to wrap, and
finite-difference helpers for the smoother tests.

Geometry as MATH.md 10.2 (beam along +z tilted about y by ~0.5 degrees, spindle along x, crystal
axes within ~0.5 degrees of x, y, z), but with a short scan of coarse images so that the loops
over frames stay fast: by default 36 images of 1 degree, which the smoother splits into four
9-degree intervals (six samples).
"""

from __future__ import annotations

import numpy as np

from xrefine.geometry import rotation_matrix, unit
from xrefine.models import Beam, Crystal, Detector, DetectorGroup, Experiment, Goniometer, Panel, Scan, reciprocal_B_from_metric

from xrefine_detector import make_detector_parameterisation
from xrefine_rotation import (
    make_beam_parameterisation,
    make_crystal_orientation_parameterisation,
    make_crystal_unit_cell_parameterisation,
    make_goniometer_parameterisation,
)

from xrefine_smoother import GaussianSmoother, ScanVaryingWrapper, num_intervals

KINDS = ("beam", "orientation", "unit_cell", "goniometer", "detector", "detector_groups")

#: (Hall symbol, a, b, c (Angstrom), alpha, beta, gamma (degrees))
TRICLINIC = (" P 1", (12.3, 13.1, 14.4, 84.0, 96.0, 101.0))


def B_from_cell(a, b, c, alpha, beta, gamma) -> np.ndarray:
    ca, cb, cg = np.cos(np.radians([alpha, beta, gamma]))
    G = np.array([[a * a, a * b * cg, a * c * cb], [a * b * cg, b * b, b * c * ca], [a * c * cb, b * c * ca, c * c]])
    Gs = np.linalg.inv(G)
    return reciprocal_B_from_metric(np.array([Gs[0, 0], Gs[1, 1], Gs[2, 2], Gs[0, 1], Gs[0, 2], Gs[1, 2]]))


def _small_rotation(rng, sigma_deg: float = 0.5) -> np.ndarray:
    return rotation_matrix(unit(rng.normal(size=3)), np.radians(rng.normal(0.0, sigma_deg)))


def single_panel(rng) -> Detector:
    npx, pixel = (1475, 1679), 0.172
    Rd = _small_rotation(rng)
    fast, slow = Rd @ np.array([1.0, 0.0, 0.0]), Rd @ np.array([0.0, 1.0, 0.0])
    centre = _small_rotation(rng) @ np.array([0.0, 0.0, 200.0])
    origin = centre - 0.5 * (npx[0] * pixel * fast + npx[1] * pixel * slow)
    return Detector([Panel("panel", fast, slow, origin, npx, (pixel, pixel))])


def two_group_detector(rng) -> Detector:
    """Four 600 x 600-pixel panels in a 2 x 2 array ~200 mm downstream; the hierarchy is
    root -> two groups (left, right columns) -> two panels each, all slightly tilted."""
    size = 600 * 0.172
    gap = 2.0
    panels, groups = [], []
    for g, x in enumerate((-size - gap / 2, gap / 2)):
        members = []
        for j, y in enumerate((-size - gap / 2, gap / 2)):
            R = _small_rotation(rng, 0.2)
            members.append(len(panels))
            panels.append(Panel(f"g{g}p{j}", R[:, 0], R[:, 1], [0.3 * j, y + size + gap / 2, 0.1 * j], (600, 600), (0.172, 0.172)))
        R = _small_rotation(rng, 0.2)
        groups.append(DetectorGroup(f"group{g}", R[:, 0], R[:, 1], [x, -size - gap / 2, 0.5 * g], children=members))
    R = _small_rotation(rng)
    root = DetectorGroup("root", R[:, 0], R[:, 1], R @ np.array([0.0, 0.0, 200.0]), children=groups)
    return Detector(panels, root)


def make_experiment(seed: int = 2, n_images: int = 36, oscillation=(0.0, 1.0), detector: str = "single") -> Experiment:
    rng = np.random.default_rng(seed)
    wavelength = rng.uniform(0.8, 1.2)
    s0_unit = rotation_matrix([0.0, 1.0, 0.0], np.radians(rng.normal(0.0, 0.5))) @ np.array([0.0, 0.0, 1.0])
    beam = Beam(direction=-s0_unit, wavelength=wavelength)
    gonio = Goniometer(rotation_axis=[1.0, 0.0, 0.0], fixed_rotation=np.eye(3), setting_rotation=np.eye(3))
    hall, cell = TRICLINIC
    crystal = Crystal(real_space=np.linalg.inv(_small_rotation(rng) @ B_from_cell(*cell)), space_group_hall_symbol=hall)
    det = single_panel(rng) if detector == "single" else two_group_detector(rng)
    scan = Scan(image_range=(1, n_images), oscillation=oscillation)
    return Experiment(beam=beam, detector=det, goniometer=gonio, scan=scan, crystal=crystal, identifier="sim")


def static_parameterisation(kind: str, experiment: Experiment):
    """A static parameterisation of `kind` (one of KINDS) of the experiment, every parameter free."""
    e = experiment
    if kind == "beam":
        return make_beam_parameterisation(e.beam, e.goniometer, [0], fix=None)
    if kind == "orientation":
        return make_crystal_orientation_parameterisation(e.crystal, [0])
    if kind == "unit_cell":
        return make_crystal_unit_cell_parameterisation(e.crystal, [0])
    if kind == "goniometer":
        return make_goniometer_parameterisation(e.goniometer, e.beam, [0], fix=None)
    if kind == "detector":
        return make_detector_parameterisation(e.detector, e.beam, [0])
    if kind == "detector_groups":
        return make_detector_parameterisation(e.detector, e.beam, [0], hierarchy_level=1)
    raise ValueError(kind)


def wrap(static, experiment: Experiment, interval_width_degrees: float = 9.0, smoother_class=GaussianSmoother) -> ScanVaryingWrapper:
    scan = experiment.scan
    return ScanVaryingWrapper(static, 0, scan, smoother_class(scan.array_range, num_intervals(scan, interval_width_degrees)))


def offset_samples(wrapper: ScanVaryingWrapper, seed: int = 7) -> None:
    """Move every sample away from the static value by a natural amount (a few mrad, a few
    mm, 0.2 % of a cell element or of the wavenumber), differently for each sample."""
    rng = np.random.default_rng(seed)
    values = wrapper.get_free_values()
    units = [p.unit for p in wrapper.free_parameters]
    scale = np.array([3.0 if u == "mrad" else 2.0 if u == "mm" else 2e-3 * max(abs(v), 1e-3) for u, v in zip(units, values)])
    wrapper.set_free_values(values + scale * rng.uniform(-1.0, 1.0, size=len(values)))


def central_difference(f, x0, h: float, richardson: bool = False) -> np.ndarray:
    """d f / d x_i at x0 for every i, stacked on a new second axis, by central differences
    (f(x + h/2) - f(x - h/2)) / h, or with `richardson` by (4 D_h - D_2h) / 3 (error O(h^4)
    instead of O(h^2)); f is called with x0 last."""
    x0 = np.asarray(x0, dtype=float)
    cols = []
    for i in range(len(x0)):
        e = np.zeros_like(x0)
        e[i] = 1.0
        d1 = (f(x0 + 0.5 * h * e) - f(x0 - 0.5 * h * e)) / h
        if richardson:
            d2 = (f(x0 + h * e) - f(x0 - h * e)) / (2 * h)
            d1 = (4 * d1 - d2) / 3
        cols.append(d1)
    f(x0)
    return np.stack(cols, axis=1)


def assert_columns_close(fd, analytic, rtol: float = 1e-6, atol: float = 0.0, what: str = "") -> None:
    """|fd - analytic| <= rtol * (largest |analytic| of its column) + atol, column = axis 1."""
    axes = tuple(i for i in range(analytic.ndim) if i != 1)
    scale = np.abs(analytic).max(axis=axes, keepdims=True)
    excess = np.abs(fd - analytic) - (rtol * scale + atol)
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    rel = np.abs(fd - analytic)[worst] / max(scale.reshape(-1)[worst[1]], 1e-300)
    assert excess[worst] <= 0, f"{what}: derivative mismatch at {worst}: fd={fd[worst]!r} analytic={analytic[worst]!r} (relative {rel:.2e})"


def frames_for(wrapper, many: bool = True) -> np.ndarray:
    """Frames at every window boundary (integer normalised coordinate) and sample position,
    beyond both ends of the scan and, if `many`, spread across it."""
    s = wrapper.smoother
    x0, x1 = s.x_range
    z = np.concatenate([np.arange(0, s.num_intervals + 1), s.positions, [0.25, 1.7, s.num_intervals - 0.1]])
    spread = np.linspace(x0, x1, 13) if many else []
    return np.unique(np.concatenate([x0 + z * s.spacing, spread, [x0 - 2.0, x1 + 2.0]]))


def check_per_frame_derivatives(w, what: str = "") -> None:
    """Every per-frame derivative of a scan-varying wrapper against central differences of its
    states (samples offset first), and exactly each panel's own columns move it."""
    offset_samples(w)
    # a detector is composed at every frame, which is slower: fewer frames
    frames = frames_for(w, many=w.kind != "detector.d")
    panels = range(len(w.model)) if w.kind == "detector.d" else [0]
    columns = np.arange(w.num_free)

    def states(x):  # (frames, panels, ...)
        w.set_free_values(x)
        w.prepare(frames)
        return np.stack([w.states_at(frames, panel) for panel in panels], axis=1)

    fd = central_difference(states, w.get_free_values(), 1e-3)
    w.prepare(frames)
    analytic = np.stack([w.derivatives_at(frames, columns, panel) for panel in panels], axis=2)
    assert fd.shape == analytic.shape
    assert_columns_close(fd, analytic, rtol=1e-6, atol=1e-12, what=what)
    for i, panel in enumerate(panels):
        # exactly the panel's own columns move it, each somewhere in the scan
        moves = np.abs(analytic[:, :, i]).reshape(len(frames), len(columns), -1).max(axis=(0, 2)) > 0
        assert np.array_equal(np.flatnonzero(moves), w.panel_columns(panel))
