"""Built-in simulation presets: realistic experiments with known truth."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Callable

import gemmi
import numpy as np
from xrefine.geometry import rotation_matrices, rotation_matrix
from xrefine.models import (
    Beam,
    Crystal,
    Detector,
    Experiment,
    ExperimentList,
    Goniometer,
    Panel,
    Scan,
    reciprocal_B_from_metric,
)
from xrefine.simulation import Truth

from .cspad import cspad_detector
from .dials_fields import panel_extra
from .node_errors import ERROR_COLUMNS, draw_errors
from .pilatus6m_modules import pilatus6m_modules


@dataclass
class Preset:
    description: str
    build: Callable[[int], Truth]


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed rotation (Shoemake's unit quaternion)."""
    u1, u2, u3 = rng.uniform(size=3)
    a, b = np.sqrt(1 - u1), np.sqrt(u1)
    x, y, z, w = a * np.sin(2 * np.pi * u2), a * np.cos(2 * np.pi * u2), b * np.sin(2 * np.pi * u3), b * np.cos(2 * np.pi * u3)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def make_crystal(cell, space_group: str, U: np.ndarray) -> Crystal:
    """A crystal of the given cell (Angstrom, degrees) and orientation U."""
    uc = gemmi.UnitCell(*cell)
    G_real = np.array(uc.metric_tensor().as_mat33().tolist())
    Gs = np.linalg.inv(G_real)
    g = np.array([Gs[0, 0], Gs[1, 1], Gs[2, 2], Gs[0, 1], Gs[0, 2], Gs[1, 2]])
    B = reciprocal_B_from_metric(g)
    hall = " " + gemmi.find_spacegroup_by_name(space_group).hall.strip()
    return Crystal(real_space=np.linalg.inv(U @ B), space_group_hall_symbol=hall)


def small_rotation(mrad_xyz) -> np.ndarray:
    R = np.eye(3)
    for axis, a in zip(np.eye(3), mrad_xyz):
        R = rotation_matrix(axis, a / 1000.0) @ R
    return R


def pilatus6m_frame(distance_mm: float, beam_centre_px, tilt_mrad) -> tuple:
    """(fast, slow, origin) of a Pilatus 6M (imgCIF: fast +x, slow -y) `distance_mm` from the
    sample, the beam (along -z) meeting it at `beam_centre_px`, tilted by `tilt_mrad` (about lab
    x, y, z) about that point."""
    pixel = 0.172
    R = small_rotation(tilt_mrad)
    fast = R @ np.array([1.0, 0.0, 0.0])
    slow = R @ np.array([0.0, -1.0, 0.0])
    hit = np.array([0.0, 0.0, -distance_mm])
    return fast, slow, hit - fast * beam_centre_px[0] * pixel - slow * beam_centre_px[1] * pixel


def pilatus6m_panel(distance_mm: float, beam_centre_px, tilt_mrad, mu_per_mm: float) -> Panel:
    """A Pilatus-6M-like single panel (pilatus6m_frame), parallax-corrected."""
    fast, slow, origin = pilatus6m_frame(distance_mm, beam_centre_px, tilt_mrad)
    return Panel(
        name="PAD", local_fast=fast, local_slow=slow, local_origin=origin, image_size=(2463, 2527),
        pixel_size=(0.172, 0.172), thickness=0.32, mu=mu_per_mm, parallax=True, extra=panel_extra(),
    )


def xray_beam(wavelength: float) -> Beam:
    """A monochromatic beam along -z (direction towards the source +z), polarised in the
    horizontal plane, with the fields DIALS writes."""
    return Beam(direction=[0.0, 0.0, 1.0], wavelength=wavelength,
                extra={"divergence": 0.0, "sigma_divergence": 0.0, "polarization_normal": [0.0, 1.0, 0.0],
                       "polarization_fraction": 0.999, "flux": 0.0, "transmission": 1.0, "probe": "x-ray",
                       "sample_to_source_distance": 0.0})


def new_identifier(rng: np.random.Generator) -> str:
    """An experiment identifier (a version-4 UUID) drawn from `rng`."""
    return str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)), version=4))


def rotation_scan(n_images: int, start_deg: float, width_deg: float, exposure_s: float = 0.05) -> Scan:
    return Scan(
        image_range=(1, n_images), oscillation=(start_deg, width_deg),
        properties={"epochs": [i * exposure_s for i in range(n_images)], "exposure_time": [exposure_s] * n_images},
    )


#: thaumatin presets: where the beam meets the Pilatus 6M (pixels) and its small misalignment
#: (mrad about lab x, y, z); Si attenuation (1/mm) at their 0.9763 Angstrom (cctbx table value,
#: as DIALS's format classes use)
THAUMATIN_BEAM_CENTRE_PX = (1231.7, 1263.9)
THAUMATIN_TILT_MRAD = (0.6, -1.1, 0.8)
SI_MU_0_9763 = 3.9225


def thaumatin_sweep(seed: int) -> Truth:
    """Thaumatin P 41 21 2 on a Pilatus-6M-like panel, 90 degrees at 0.1 degrees per image."""
    rng = np.random.default_rng([seed, 0])
    beam = xray_beam(0.9763)
    panel = pilatus6m_panel(450.0, THAUMATIN_BEAM_CENTRE_PX, THAUMATIN_TILT_MRAD, mu_per_mm=SI_MU_0_9763)
    detector = Detector([panel])
    goniometer = Goniometer(rotation_axis=[1.0, 0.0, 0.0])
    scan = rotation_scan(900, 0.0, 0.1)
    crystal = make_crystal((57.8, 57.8, 150.2, 90, 90, 90), "P 41 21 2", random_rotation(rng))
    expt = Experiment(beam=beam, detector=detector, goniometer=goniometer, scan=scan, crystal=crystal,
                      identifier=new_identifier(rng))
    return Truth(experiments=ExperimentList([expt]), d_min=2.7)


def thaumatin_wedge(seed: int) -> Truth:
    """The thaumatin sweep's first 15 degrees (about 9 000 reflections): a quick example."""
    return truncate_scan(thaumatin_sweep(seed), 150)


def truncate_scan(truth: Truth, n_images: int) -> Truth:
    """Keep the first `n_images` images of every experiment's scan (in place; returns `truth`):
    the per-image scan properties and the models' scan points (one per image boundary) are cut
    to match."""
    for expt in truth.experiments:
        scan = expt.scan
        scan.image_range = (scan.image_range[0], scan.image_range[0] + n_images - 1)
        scan.properties = {k: v[:n_images] for k, v in scan.properties.items()}
    for model, attr in [(c, "A_at_scan_points") for c in truth.experiments.unique("crystal")] + \
            [(b, "s0_at_scan_points") for b in truth.experiments.unique("beam")] + \
            [(g, "setting_rotation_at_scan_points") for g in truth.experiments.unique("goniometer")]:
        points = getattr(model, attr, None)
        if points is not None:
            setattr(model, attr, np.array(points[: n_images + 1]))
    return truth


#: thaumatin-720-drift: relative growth of the cell edges a (= b) and c over the whole scan
DRIFT_CELL_GROWTH = {"a": 0.003, "c": 0.002}
#: thaumatin-720-drift: orientation wobble terms (amplitude mrad, cycles over the scan, lab axis)
DRIFT_WOBBLE = (
    (2.0, 1.0, (0.0, 1.0, 0.0)),  # about y, perpendicular to the spindle and the beam
    (1.5, 1.5, (0.0, 0.0, 1.0)),  # about the beam
    (1.0, 0.75, (1.0, 0.0, 0.0)),  # about the spindle
)


def drift_cell(x: np.ndarray, a0: float, c0: float) -> tuple:
    """(a, c) in Angstrom at scan fractions x in [0, 1]: a grows by DRIFT_CELL_GROWTH['a'] along
    a saturating exponential (fast early, as radiation damage), c by DRIFT_CELL_GROWTH['c']
    along a smoothstep; both start at (a0, c0) with zero drift at x = 0."""
    x = np.asarray(x, dtype=float)
    g_a = (1.0 - np.exp(-2.0 * x)) / (1.0 - np.exp(-2.0))
    g_c = x * x * (3.0 - 2.0 * x)
    return a0 * (1.0 + DRIFT_CELL_GROWTH["a"] * g_a), c0 * (1.0 + DRIFT_CELL_GROWTH["c"] * g_c)


def drift_wobble(x: np.ndarray) -> np.ndarray:
    """Rotation vectors (n, 3) in radians (laboratory frame) of the orientation wobble at scan
    fractions x: a sum of slow sines (DRIFT_WOBBLE), zero at x = 0."""
    x = np.asarray(x, dtype=float)
    omega = np.zeros((len(x), 3))
    for amplitude_mrad, cycles, axis in DRIFT_WOBBLE:
        omega += np.outer(1e-3 * amplitude_mrad * np.sin(2.0 * np.pi * cycles * x), axis)
    return omega


def gauge_fixed_wobble(omega: np.ndarray, phi_rad: np.ndarray, spindle: np.ndarray,
                       beam: np.ndarray) -> np.ndarray:
    """The datum-frame wobble `omega` (n, 3) at rotation angles `phi_rad` with its mean rotation
    about the beam in the laboratory frame removed.

    A rotation of the crystal about the beam that is the same at every angle of the scan turns
    every diffracted ray about the beam, exactly as a rotation of the detector about the beam
    does (and leaves the Ewald condition, hence phi, untouched), so no data can tell them apart.
    A truth with such a component is one of a family of equivalent truths; keeping the crystal's
    mean rotation about the beam at zero picks the member whose detector is the true one.  In
    the datum frame the removed term is a 360-degree pattern, mean * R(phi)^T beam."""
    R = rotation_matrices(spindle, np.asarray(phi_rad, dtype=float))
    e = np.asarray(beam, dtype=float) / np.linalg.norm(beam)
    beam_in_datum = np.einsum("nji,j->ni", R, e)  # R(phi)^T e
    about_beam = np.einsum("ni,ni->n", omega, beam_in_datum)  # e . R(phi) omega
    return omega - about_beam.mean() * beam_in_datum


def rotation_vector_matrices(omega: np.ndarray) -> np.ndarray:
    """Rotations (n, 3, 3) by |omega| about omega / |omega| (Rodrigues; identity for omega = 0)."""
    omega = np.atleast_2d(np.asarray(omega, dtype=float))
    angle = np.linalg.norm(omega, axis=1)
    e = omega / np.where(angle > 0, angle, 1.0)[:, None]
    K = np.zeros((len(omega), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -e[:, 2], e[:, 1], -e[:, 0]
    K = K - K.transpose(0, 2, 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def thaumatin_720_drift(seed: int) -> Truth:
    """Thaumatin as in thaumatin-sweep (same beam, panel, goniometer and, for a seed, the same
    starting orientation) over 720 degrees at 0.1 degrees per image (7 200 images), with a
    smooth cell drift (a = b +0.3 %, c +0.2 %, `drift_cell`) and an orientation wobble of about
    2 mrad (`drift_wobble`).

    The truth per image is the crystal's A_at_scan_points at the 7 201 image boundaries; the
    static crystal (real_space) is the state at the scan start, scan point 0, where the drift and
    the wobble are zero.  d_min 2.3 Angstrom gives about 680 000 predictions, so that DIALS's
    subsampling of a 2-turn scan (half the reflections) keeps more than 300 000."""
    truth = thaumatin_sweep(seed)
    expt = truth.experiments[0]
    n_images = 7200
    expt.scan = rotation_scan(n_images, 0.0, 0.1)
    crystal = expt.crystal
    U0 = crystal.U
    a0, _, c0 = crystal.unit_cell[:3]
    x = np.arange(n_images + 1) / n_images
    a, c = drift_cell(x, a0, c0)
    # tetragonal, orthogonal axes: B = diag(1/a, 1/a, 1/c) (the cctbx B of this cell)
    B = np.zeros((n_images + 1, 3, 3))
    B[:, 0, 0], B[:, 1, 1], B[:, 2, 2] = 1.0 / a, 1.0 / a, 1.0 / c
    phi = np.deg2rad(expt.scan.oscillation[0] + expt.scan.oscillation[1] * np.arange(n_images + 1))
    omega = gauge_fixed_wobble(drift_wobble(x), phi, np.asarray(expt.goniometer.rotation_axis),
                               np.asarray(expt.beam.direction))
    turns = rotation_vector_matrices(omega)
    A = turns @ U0 @ B
    crystal.set_A(A[0])
    crystal.A_at_scan_points = A
    truth.d_min = 2.3
    wobble = np.arccos(np.clip((np.trace(turns @ turns[0].T, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0))
    truth.extra = {
        "static_model": "scan start (scan point 0)",
        "cell_growth_relative": dict(DRIFT_CELL_GROWTH),
        "wobble_mrad_max": round(float(1e3 * wobble.max()), 4),
    }
    return truth


#: thaumatin-p6m-60 and cspad-64: sigmas of the true calibration errors of detector nodes
#: (node_errors.py: in-plane shift mm, shift along the normal mm, each rotation mrad)
P6M_MODULE_ERROR = {"inplane_mm": 0.030, "normal_mm": 0.020, "tilt_mrad": 0.3}
CSPAD_QUADRANT_ERROR = {"inplane_mm": 0.100, "normal_mm": 0.050, "tilt_mrad": 0.5}
CSPAD_SENSOR_ERROR = {"inplane_mm": 0.020, "normal_mm": 0.020, "tilt_mrad": 0.3}


def _errors_record(errors: np.ndarray, sigma: dict, frame: str) -> dict:
    return {"columns": list(ERROR_COLUMNS), "sigma": dict(sigma),
            "note": f"one row per {frame}, in its ideal local frame; rotations about its centre, applied as "
                    "R(normal) R(slow) R(fast) (xrefine_simulate/node_errors.py)",
            "values": errors.tolist()}


def with_ideal_start(truth: Truth, ideal_detector: Detector) -> Truth:
    """Give `truth` starting experiments that are the truth with `ideal_detector` (the detector
    as described, without the calibration errors) in place of every experiment's detector;
    the simulator perturbs these to make the start."""
    start = copy.deepcopy(truth.experiments)
    for expt in start:
        expt.detector = ideal_detector
    truth.start_experiments = start
    return truth


def thaumatin_p6m_60(seed: int) -> Truth:
    """Thaumatin as in thaumatin-sweep (same beam, crystal and, for a seed, orientation) over
    720 degrees at 0.1 degrees per image, on the Pilatus 6M as 60 modules (pilatus6m_modules.py)
    600 mm from the sample, each module displaced by a calibration error drawn from the seed
    (P6M_MODULE_ERROR; recorded in extra['true_module_errors']).

    At 600 mm the 2.2 Angstrom limit reaches the corner modules: every module holds more than
    1 000 observations, and the core's subsampling of the 2-turn scan (half of about 460 000)
    keeps about 230 000 (at thaumatin-sweep's 450 mm the corners need 2.0 Angstrom and twice the
    data).  The starting experiments have the ideal module grid; the simulator moves it along
    the default (whole-detector) parameters."""
    truth = thaumatin_sweep(seed)
    expt = truth.experiments[0]
    frame = pilatus6m_frame(600.0, THAUMATIN_BEAM_CENTRE_PX, THAUMATIN_TILT_MRAD)
    errors = draw_errors(np.random.default_rng([seed, 10]), 60, **P6M_MODULE_ERROR)
    expt.detector = pilatus6m_modules(*frame, SI_MU_0_9763, errors=errors)
    expt.scan = rotation_scan(7200, 0.0, 0.1)
    truth.d_min = 2.2
    truth.extra = {"true_module_errors": _errors_record(errors, P6M_MODULE_ERROR, "module (panel index)")}
    return with_ideal_start(truth, pilatus6m_modules(*frame, SI_MU_0_9763))


#: polyhedrin-5sweeps: (lattices, first image's start angle in degrees, width in degrees) per sweep
POLYHEDRIN_SWEEPS = ((4, 0.0, 3.0), (3, 40.0, 4.0), (3, 95.0, 5.0), (3, 150.0, 3.0), (3, 220.0, 4.0))


def polyhedrin_5sweeps(seed: int) -> Truth:
    """Polyhedrin microcrystals, cubic I 2 3 with a = 103 Angstrom: 5 sweeps of 3-5 degrees at
    0.1 degrees per image (POLYHEDRIN_SWEEPS) holding 16 lattices of random orientation, one
    experiment per lattice.  All 16 share one beam and one Pilatus-6M-like panel; the lattices of
    a sweep share its scan and goniometer (one object each per sweep)."""
    rng = np.random.default_rng([seed, 0])
    beam = xray_beam(0.9795)
    detector = Detector([pilatus6m_panel(300.0, (1228.3, 1270.6), (-0.7, 0.9, 0.4), mu_per_mm=3.9604)])
    experiments = ExperimentList()
    for n_lattices, start_deg, width_deg in POLYHEDRIN_SWEEPS:
        goniometer = Goniometer(rotation_axis=[1.0, 0.0, 0.0])
        scan = rotation_scan(round(width_deg / 0.1), start_deg, 0.1)
        for _ in range(n_lattices):
            crystal = make_crystal((103.0, 103.0, 103.0, 90, 90, 90), "I 2 3", random_rotation(rng))
            experiments.append(Experiment(beam=beam, detector=detector, goniometer=goniometer, scan=scan,
                                          crystal=crystal, identifier=new_identifier(rng)))
    return Truth(experiments=experiments, d_min=2.0,
                 extra={"lattices_per_sweep": [s[0] for s in POLYHEDRIN_SWEEPS],
                        "sweep_widths_deg": [s[2] for s in POLYHEDRIN_SWEEPS]})


def cspad_64(seed: int) -> Truth:
    """Lysozyme (P 43 21 2) at 1.3 Angstrom on a CSPAD-like detector 100 mm away (cspad.py: 64
    ASIC panels, detector -> quadrants -> sensors -> ASICs), 20 degrees at 0.1 degrees per
    image.  A rotation scan for now; stills come later.  Quadrants and sensors are displaced by
    calibration errors drawn from the seed (CSPAD_QUADRANT_ERROR, CSPAD_SENSOR_ERROR; recorded
    in extra); the starting experiments have the ideal layout."""
    rng = np.random.default_rng([seed, 0])
    errors_rng = np.random.default_rng([seed, 10])
    quadrant_errors = draw_errors(errors_rng, 4, **CSPAD_QUADRANT_ERROR)
    sensor_errors = draw_errors(errors_rng, 32, **CSPAD_SENSOR_ERROR)
    R = small_rotation((0.9, -0.6, 1.2))
    frame = (R @ np.array([1.0, 0.0, 0.0]), R @ np.array([0.0, -1.0, 0.0]), np.array([0.3, -0.2, -100.0]))
    # Si at 9.5 keV; CSPAD data are processed without a parallax correction
    detector = cspad_detector(*frame, thickness_mm=0.5, mu_per_mm=9.2,
                              quadrant_errors=quadrant_errors, sensor_errors=sensor_errors)
    crystal = make_crystal((79.1, 79.1, 37.9, 90, 90, 90), "P 43 21 2", random_rotation(rng))
    expt = Experiment(beam=xray_beam(1.3), detector=detector, goniometer=Goniometer(rotation_axis=[1.0, 0.0, 0.0]),
                      scan=rotation_scan(200, 0.0, 0.1), crystal=crystal, identifier=new_identifier(rng))
    truth = Truth(experiments=ExperimentList([expt]), d_min=1.6, extra={
        "true_quadrant_errors": _errors_record(quadrant_errors, CSPAD_QUADRANT_ERROR, "quadrant"),
        "true_sensor_errors": _errors_record(sensor_errors, CSPAD_SENSOR_ERROR, "sensor (quadrant-major)"),
    })
    return with_ideal_start(truth, cspad_detector(*frame, thickness_mm=0.5, mu_per_mm=9.2))


PRESETS = {
    "thaumatin-sweep": Preset("thaumatin P 41 21 2, Pilatus-6M-like panel, 90 deg at 0.1 deg/image", thaumatin_sweep),
    "thaumatin-wedge": Preset("the first 15 deg of thaumatin-sweep, a quick example", thaumatin_wedge),
    "thaumatin-720-drift": Preset(
        "thaumatin, Pilatus-6M-like panel, 720 deg at 0.1 deg/image, cell drift (~0.3 %) and ~2 mrad wobble "
        "stored per image (A_at_scan_points)",
        thaumatin_720_drift,
    ),
    "thaumatin-p6m-60": Preset(
        "thaumatin, Pilatus 6M as 60 modules (two-level hierarchy) with true module calibration errors, "
        "720 deg at 0.1 deg/image; start: the ideal module grid",
        thaumatin_p6m_60,
    ),
    "polyhedrin-5sweeps": Preset(
        "cubic I 2 3 (a = 103 A): 5 sweeps of 3-5 deg holding 16 lattices, sharing one beam and one detector",
        polyhedrin_5sweeps,
    ),
    "cspad-64": Preset(
        "lysozyme on a CSPAD-like 64-panel four-level detector with quadrant and sensor errors, 20 deg rotation",
        cspad_64,
    ),
}
