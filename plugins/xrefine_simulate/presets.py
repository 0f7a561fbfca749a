"""Built-in simulation presets: realistic experiments with known truth."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

import gemmi
import numpy as np

from xrefine.geometry import rotation_matrix
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


def pilatus6m_panel(distance_mm: float, beam_centre_px, tilt_mrad, mu_per_mm: float) -> Panel:
    """A Pilatus-6M-like single panel (imgCIF: fast +x, slow -y), tilted about the beam centre."""
    pixel = 0.172
    R = small_rotation(tilt_mrad)
    fast = R @ np.array([1.0, 0.0, 0.0])
    slow = R @ np.array([0.0, -1.0, 0.0])
    hit = np.array([0.0, 0.0, -distance_mm])
    origin = hit - fast * beam_centre_px[0] * pixel - slow * beam_centre_px[1] * pixel
    return Panel(
        name="PAD", local_fast=fast, local_slow=slow, local_origin=origin, image_size=(2463, 2527),
        pixel_size=(pixel, pixel), thickness=0.32, mu=mu_per_mm, parallax=True,
        extra={"type": "SENSOR_PAD", "raw_image_offset": [0, 0], "trusted_range": [-1.0, 1048575.0],
               "material": "Si", "identifier": "", "mask": [], "gain": 1.0, "pedestal": 0.0},
    )


def rotation_scan(n_images: int, start_deg: float, width_deg: float, exposure_s: float = 0.05) -> Scan:
    return Scan(
        image_range=(1, n_images), oscillation=(start_deg, width_deg),
        properties={"epochs": [i * exposure_s for i in range(n_images)], "exposure_time": [exposure_s] * n_images},
    )


def thaumatin_sweep(seed: int) -> Truth:
    """Thaumatin P 41 21 2 on a Pilatus-6M-like panel, 90 degrees at 0.1 degrees per image."""
    rng = np.random.default_rng([seed, 0])
    wavelength = 0.9763
    beam = Beam(direction=[0.0, 0.0, 1.0], wavelength=wavelength,
                extra={"divergence": 0.0, "sigma_divergence": 0.0, "polarization_normal": [0.0, 1.0, 0.0],
                       "polarization_fraction": 0.999, "flux": 0.0, "transmission": 1.0, "probe": "x-ray",
                       "sample_to_source_distance": 0.0})
    # Si attenuation at this wavelength (cctbx table value, as DIALS's format classes use)
    panel = pilatus6m_panel(450.0, (1231.7, 1263.9), (0.6, -1.1, 0.8), mu_per_mm=3.9225)
    detector = Detector([panel])
    goniometer = Goniometer(rotation_axis=[1.0, 0.0, 0.0])
    scan = rotation_scan(900, 0.0, 0.1)
    crystal = make_crystal((57.8, 57.8, 150.2, 90, 90, 90), "P 41 21 2", random_rotation(rng))
    ident = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)), version=4))
    expt = Experiment(beam=beam, detector=detector, goniometer=goniometer, scan=scan, crystal=crystal, identifier=ident)
    return Truth(experiments=ExperimentList([expt]), d_min=2.7)


def thaumatin_wedge(seed: int) -> Truth:
    """The thaumatin sweep's first 15 degrees (about 9 000 reflections): a quick example."""
    truth = thaumatin_sweep(seed)
    scan = truth.experiments[0].scan
    scan.image_range = (1, 150)
    scan.properties = {k: v[:150] for k, v in scan.properties.items()}
    return truth


PRESETS = {
    "thaumatin-sweep": Preset("thaumatin P 41 21 2, Pilatus-6M-like panel, 90 deg at 0.1 deg/image", thaumatin_sweep),
    "thaumatin-wedge": Preset("the first 15 deg of thaumatin-sweep, a quick example", thaumatin_wedge),
}
