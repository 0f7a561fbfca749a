"""Detectors and helpers for the detector-parameterisation tests: one panel, a flat 2x2 array,
a two-level hand-made hierarchy, and the 60-module Pilatus 6M of tests/data/p6m-modules-small."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from xrefine.geometry import rotation_matrix
from xrefine.models import Beam, Detector, DetectorGroup, Panel

P6M_EXPT = Path(__file__).resolve().parents[2] / "data" / "p6m-modules-small" / "start.expt"


def _tilt(seed: int, sigma_rad: float = 0.01) -> np.ndarray:
    """A small random rotation, so no test geometry is axis-aligned by accident."""
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    return rotation_matrix(axis, rng.normal(scale=sigma_rad))


def _panel(name, fast, slow, origin, image_size=(487, 195), pixel_size=(0.172, 0.172)) -> Panel:
    return Panel(name, fast, slow, origin, image_size, pixel_size)


def make_beam() -> Beam:
    """Beam along -z (direction points to the source, +z), slightly inclined, 1 Angstrom."""
    return Beam(direction=rotation_matrix([0, 1, 0], 0.004) @ np.array([0.0, 0.0, 1.0]), wavelength=1.0)


def make_single_panel() -> Detector:
    """A Pilatus-2M-like panel ~200 mm downstream, perturbed by ~0.5 degree."""
    R = _tilt(1)
    fast, slow = R @ [1.0, 0.0, 0.0], R @ [0.0, -1.0, 0.0]
    size = np.array([1475 * 0.172, 1679 * 0.172])
    centre = np.array([1.0, -0.5, -199.0])
    origin = centre - 0.5 * (size[0] * fast + size[1] * slow)
    return Detector([_panel("pilatus", fast, slow, origin, (1475, 1679))])


def make_flat_2x2() -> Detector:
    """Four coplanar panels in a 2x2 array under a root with the identity frame at the lab
    origin, as DIALS writes a detector that has no real hierarchy."""
    R = _tilt(2)
    fast, slow = R @ [1.0, 0.0, 0.0], R @ [0.0, -1.0, 0.0]
    w, h = 487 * 0.172, 195 * 0.172
    corner = R @ np.array([-w - 1.0, h + 3.0, -250.0])
    panels = [
        _panel(f"p{i}{j}", fast, slow, corner + (w + 2.0) * i * fast + (h + 6.0) * j * slow)
        for j in range(2)
        for i in range(2)
    ]
    return Detector(panels)


def make_two_level() -> Detector:
    """Root (tilted, ~300 mm away) -> 4 quadrant groups (each slightly tilted and offset) -> 2
    panels each (each slightly tilted): depth 2, 8 panels."""
    w, h = 487 * 0.172, 195 * 0.172
    root_R = _tilt(3)
    panels, groups = [], []
    for q in range(4):
        members = [2 * q, 2 * q + 1]
        for k, index in enumerate(members):
            pR = _tilt(20 + index, 0.002)
            panels.append(_panel(f"q{q}p{k}", pR[:, 0], pR[:, 1], [0.5 * k, k * (h + 4.0), 0.05 * k]))
        qR = _tilt(10 + q, 0.003)
        qorigin = [(q % 2) * (w + 5.0), (q // 2) * (2 * h + 10.0), 0.2 * q]
        groups.append(DetectorGroup(f"quadrant{q}", qR[:, 0], qR[:, 1], qorigin, children=members))
    root = DetectorGroup(
        "root", root_R @ [1.0, 0.0, 0.0], root_R @ [0.0, -1.0, 0.0], root_R @ [-90.0, 75.0, -300.0], children=groups
    )
    return Detector(panels, root)


def make_three_level() -> Detector:
    """An irregular tree of depth 3: root (tilted, ~250 mm away) -> 2 halves -> 2 + 3 sub-groups
    -> 1 to 3 panels each (10 panels); every node has its own small tilt and offset, so no local
    frame is the identity and no two siblings are alike."""
    w, h = 100 * 0.1, 120 * 0.1
    panels, halves = [], []
    layout = [[3, 1], [2, 2, 2]]  # panels per sub-group, per half
    for ih, sizes in enumerate(layout):
        subs = []
        for isub, size in enumerate(sizes):
            members = []
            for k in range(size):
                pR = _tilt(100 + len(panels), 0.003)
                origin = [k * (w + 0.7) + 0.03 * isub, 0.02 * k, 0.04 * k - 0.01 * ih]
                members.append(len(panels))
                panels.append(Panel(f"h{ih}s{isub}p{k}", pR[:, 0], pR[:, 1], origin, (100, 120), (0.1, 0.1)))
            sR = _tilt(200 + 10 * ih + isub, 0.004)
            subs.append(DetectorGroup(f"h{ih}s{isub}", sR[:, 0], sR[:, 1], [0.1 * isub, isub * (h + 1.5), 0.05 * isub], children=members))
        hR = _tilt(300 + ih, 0.005)
        halves.append(DetectorGroup(f"half{ih}", hR[:, 0], hR[:, 1], [ih * (3 * w + 4.0), -0.3 * ih, 0.2 * ih], children=subs))
    R = _tilt(4)
    root = DetectorGroup("root", R @ [1.0, 0.0, 0.0], R @ [0.0, -1.0, 0.0], R @ [-20.0, 25.0, -250.0], children=halves)
    return Detector(panels, root)


def make_cspad_like() -> Detector:
    """A CSPAD-like detector of depth 3: root -> 4 quadrants (each turned by a multiple of 90
    degrees about the beam, with a small tilt) -> 8 sensors -> 2 ASICs of 194 x 185 pixels of
    0.11 mm (64 panels), each node slightly displaced."""
    w, h = 194 * 0.11, 185 * 0.11
    gap = 0.6
    panels, quadrants = [], []
    for q in range(4):
        sensors = []
        for s in range(8):
            asics = []
            for a in range(2):
                aR = _tilt(1000 + len(panels), 0.001)
                asics.append(len(panels))
                panels.append(Panel(f"q{q}s{s}a{a}", aR[:, 0], aR[:, 1], [a * (w + gap) + 0.01 * a, 0.005 * a, 0.002 * a],
                                    (194, 185), (0.11, 0.11)))
            sR = _tilt(2000 + 8 * q + s, 0.002)
            sensors.append(DetectorGroup(f"q{q}s{s}", sR[:, 0], sR[:, 1],
                                         [(s // 4) * (2 * w + 3.0), (s % 4) * (h + 2.0), 0.01 * s], children=asics))
        turn = rotation_matrix([0.0, 0.0, 1.0], 0.5 * np.pi * q) @ _tilt(3000 + q, 0.003)
        corner = rotation_matrix([0.0, 0.0, 1.0], 0.5 * np.pi * q) @ np.array([2.0, 2.0, 0.1 * q])
        quadrants.append(DetectorGroup(f"q{q}", turn[:, 0], turn[:, 1], corner, children=sensors))
    R = _tilt(5)
    root = DetectorGroup("cspad", R @ [1.0, 0.0, 0.0], R @ [0.0, -1.0, 0.0], R @ [0.5, -0.7, -120.0], children=quadrants)
    return Detector(panels, root)


def read_p6m_by_hand() -> tuple:
    """The detector and beam of P6M_EXPT, read directly from the JSON (one root, 60 panels)."""
    data = json.loads(P6M_EXPT.read_text())
    det = data["detector"][0]
    panels = [
        _panel(p["name"], p["fast_axis"], p["slow_axis"], p["origin"], p["image_size"], p["pixel_size"])
        for p in det["panels"]
    ]
    h = det["hierarchy"]
    assert all(set(c) == {"panel"} for c in h["children"]), "the hand reader knows one level only"
    root = DetectorGroup(
        h["name"], h["fast_axis"], h["slow_axis"], h["origin"], children=[c["panel"] for c in h["children"]]
    )
    b = data["beam"][0]
    return Detector(panels, root), Beam(b["direction"], b["wavelength"])


def read_p6m_with_xrefine_io() -> tuple:
    """The detector and beam of P6M_EXPT through xrefine.io.read_experiments."""
    from xrefine.io import read_experiments

    experiments = read_experiments(P6M_EXPT)
    return experiments[0].detector, experiments[0].beam


def local_frames(detector: Detector) -> tuple:
    """Every node's stored local frame, for checking that compose leaves them alone."""
    groups = []

    def walk(g):
        groups.append(np.concatenate([g.local_fast, g.local_slow, g.local_origin]))
        for c in g.children:
            if isinstance(c, DetectorGroup):
                walk(c)

    walk(detector.root)
    panels = np.array([np.concatenate([p.local_fast, p.local_slow, p.local_origin]) for p in detector])
    return np.array(groups), panels


# Natural-sized non-zero offsets (mm, mm, mm, mrad, mrad, mrad), so cross terms such as
# T3 T2' T1 and the rotated shift axes are exercised rather than evaluated at the identity.
OFFSETS = np.array([3.0, -2.0, 4.0, 2.0, -3.0, 1.5])


def move_away_from_start(parameterisation, scale: float = 1.0) -> None:
    """Shift every parameter (fixed or free) by OFFSETS x scale, varied between groups, and compose."""
    values = np.array([p.value for p in parameterisation.parameters])
    shifts = np.resize(OFFSETS, len(values)) * scale * (1.0 + 0.1 * (np.arange(len(values)) // 6))
    for p, v in zip(parameterisation.parameters, values + shifts):
        p.value = float(v)
    parameterisation.compose()



def chain_state(parameterisation) -> np.ndarray:
    """The panel frames the blocks' current values give, composed independently of the
    parameterisation's vectorised code: each panel's frame at setup moved by its block at every
    refined level, deepest first (RigidGroup.motion one block at a time)."""
    frames = parameterisation._frames0.copy()
    values = np.array([p.value for p in parameterisation.parameters]).reshape(-1, 6)
    blocks = list(zip(parameterisation.groups, values))
    by_level = []
    start = 0
    for level in parameterisation.levels:
        by_level.append(blocks[start : start + len(level)])
        start += len(level)
    for level in reversed(by_level):
        for g, v in level:
            R, pivot = g.motion(v)
            for i in g.panels:
                f = frames[i].copy()
                f[:, 2] -= g.reference_point
                frames[i] = R @ f
                frames[i][:, 2] += pivot
    return frames
