"""Experimental models: beam, goniometer, scan, crystal, detector panels and their hierarchy.

Each model stores the quantities DIALS stores (so a read -> write round trip is lossless) and
derives what refinement needs (s0, U, B, panel matrices) from them.  Keys of a DIALS model that
xrefine does not interpret are kept in `extra`, in file order, and written back untouched.

Models are shared between experiments by identity, exactly as in a DIALS experiment list: two
experiments whose `beam` is the same object share one beam, and refinement parameterises it once.
Frames and sign conventions are described in docs/conventions.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

import numpy as np

from .geometry import rotation_matrix, unit

__all__ = [
    "Beam",
    "Goniometer",
    "Scan",
    "Crystal",
    "Panel",
    "DetectorGroup",
    "Detector",
    "Experiment",
    "ExperimentList",
    "reciprocal_B_from_metric",
    "cell_parameters",
    "clear_scan_points",
]


# ----------------------------------------------------------------------------------- beam
@dataclass(eq=False)
class Beam:
    """Monochromatic beam: `direction` is the unit vector from the sample towards the source."""

    direction: np.ndarray
    wavelength: float
    extra: dict = field(default_factory=dict)
    s0_at_scan_points: Optional[np.ndarray] = None  # (n, 3) 1/Angstrom

    def __post_init__(self):
        self.direction = np.asarray(self.direction, dtype=float)
        self.wavelength = float(self.wavelength)

    @property
    def s0(self) -> np.ndarray:
        """Incident wave vector (1/Angstrom): -direction / wavelength."""
        return -unit(self.direction) / self.wavelength

    def set_s0(self, s0: np.ndarray) -> None:
        s0 = np.asarray(s0, dtype=float)
        k = np.linalg.norm(s0)
        self.direction = -s0 / k
        # keep the stored wavelength when only the direction changed (a fixed wavelength must
        # not drift in its last digits through 1/|s0|)
        if not np.isclose(1.0 / k, self.wavelength, rtol=1e-14, atol=0.0):
            self.wavelength = 1.0 / k


# ----------------------------------------------------------------------------- goniometer
@dataclass(eq=False)
class Goniometer:
    """Goniometer: datum axis e_d, fixed rotation F, setting rotation S (lab axis = S e_d).

    A multi-axis goniometer keeps `axes` (innermost first), `angles` (degrees), `names` and
    `scan_axis`; F, S and the datum axis are then derived from them (docs/conventions.md).
    """

    rotation_axis: np.ndarray
    fixed_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    setting_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    axes: Optional[np.ndarray] = None
    angles: Optional[np.ndarray] = None
    names: Optional[list] = None
    scan_axis: Optional[int] = None
    extra: dict = field(default_factory=dict)
    setting_rotation_at_scan_points: Optional[np.ndarray] = None  # (n, 3, 3)

    def __post_init__(self):
        self.rotation_axis = np.asarray(self.rotation_axis, dtype=float)
        self.fixed_rotation = np.asarray(self.fixed_rotation, dtype=float).reshape(3, 3)
        self.setting_rotation = np.asarray(self.setting_rotation, dtype=float).reshape(3, 3)

    @classmethod
    def multi_axis(cls, axes, angles_deg, names, scan_axis: int, extra=None) -> "Goniometer":
        """Build from a multi-axis description (axes listed innermost first)."""
        axes = np.asarray(axes, dtype=float).reshape(-1, 3)
        angles = np.asarray(angles_deg, dtype=float)
        F = np.eye(3)
        for k in range(scan_axis):
            F = rotation_matrix(axes[k], np.radians(angles[k])) @ F
        S = np.eye(3)
        for k in range(scan_axis + 1, len(axes)):
            S = rotation_matrix(axes[k], np.radians(angles[k])) @ S
        return cls(
            rotation_axis=axes[scan_axis].copy(),
            fixed_rotation=F,
            setting_rotation=S,
            axes=axes,
            angles=angles,
            names=list(names),
            scan_axis=int(scan_axis),
            extra=dict(extra or {}),
        )

    @property
    def is_multi_axis(self) -> bool:
        return self.axes is not None

    @property
    def rotation_axis_lab(self) -> np.ndarray:
        """The scan axis in the laboratory frame, S e_d (unit)."""
        return unit(self.setting_rotation @ self.rotation_axis)


# ----------------------------------------------------------------------------------- scan
@dataclass(eq=False)
class Scan:
    """A rotation scan: images `image_range` (1-based, inclusive), each `oscillation[1]` degrees
    wide, the first starting at `oscillation[0]` degrees.  `properties` holds DIALS's per-image
    columns (epochs, exposure_time, ...) other than `oscillation`, which is regenerated."""

    image_range: tuple
    oscillation: tuple  # (start_deg, width_deg)
    batch_offset: int = 0
    properties: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    # Set by xrefine.io: the `oscillation` (and `oscillation_width`) columns exactly as read, with
    # the image_range and oscillation they gave.  DIALS's per-image angles carry rounding that
    # (start, width) cannot regenerate bit for bit, so they are written back while unchanged.
    _oscillation_as_read: Optional[tuple] = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.image_range = (int(self.image_range[0]), int(self.image_range[1]))
        self.oscillation = (float(self.oscillation[0]), float(self.oscillation[1]))

    @property
    def num_images(self) -> int:
        return self.image_range[1] - self.image_range[0] + 1

    @property
    def array_range(self) -> tuple:
        """(first - 1, last): the range of the continuous frame coordinate z."""
        return (self.image_range[0] - 1, self.image_range[1])

    @property
    def oscillation_rad(self) -> tuple:
        return (np.radians(self.oscillation[0]), np.radians(self.oscillation[1]))

    @property
    def oscillation_range_rad(self) -> tuple:
        """(phi at the start of the first image, phi at the end of the last), radians."""
        start, width = self.oscillation_rad
        return (start, start + width * self.num_images)

    def angle_from_frame(self, z: np.ndarray) -> np.ndarray:
        """phi (rad) at frame coordinate z."""
        start, width = self.oscillation_rad
        return start + (np.asarray(z, dtype=float) - self.array_range[0]) * width

    def frame_from_angle(self, phi_rad: np.ndarray) -> np.ndarray:
        """Frame coordinate z at phi (rad)."""
        start, width = self.oscillation_rad
        return self.array_range[0] + (np.asarray(phi_rad, dtype=float) - start) / width


# -------------------------------------------------------------------------------- crystal
def reciprocal_B_from_metric(g: np.ndarray) -> np.ndarray:
    """The lower-triangular B with positive diagonal and B^T B = G*.

    `g` holds the six distinct elements (g00, g11, g22, g01, g02, g12) of G* (1/Angstrom^2).
    """
    g00, g11, g22, g01, g02, g12 = g
    csz = np.sqrt(g22)
    bsz = g12 / csz
    asz = g02 / csz
    bsy = np.sqrt(g11 - bsz * bsz)
    asy = (g01 - asz * bsz) / bsy
    asx = np.sqrt(g00 - asy * asy - asz * asz)
    return np.array([[asx, 0.0, 0.0], [asy, bsy, 0.0], [asz, bsz, csz]])


def metric_elements(B: np.ndarray) -> np.ndarray:
    """(g00, g11, g22, g01, g02, g12) of G* = B^T B."""
    G = B.T @ B
    return np.array([G[0, 0], G[1, 1], G[2, 2], G[0, 1], G[0, 2], G[1, 2]])


def cell_parameters(real_space: np.ndarray) -> np.ndarray:
    """(a, b, c, alpha, beta, gamma) in Angstrom and degrees from rows a, b, c."""
    a, b, c = np.asarray(real_space, dtype=float)
    la, lb, lc = (np.linalg.norm(v) for v in (a, b, c))
    alpha = np.degrees(np.arccos(np.clip(b @ c / (lb * lc), -1, 1)))
    beta = np.degrees(np.arccos(np.clip(a @ c / (la * lc), -1, 1)))
    gamma = np.degrees(np.arccos(np.clip(a @ b / (la * lb), -1, 1)))
    return np.array([la, lb, lc, alpha, beta, gamma])


@dataclass(eq=False)
class Crystal:
    """A crystal lattice: `real_space` rows are a, b, c (Angstrom, laboratory frame at phi = 0).

    A = UB = inverse of the matrix whose rows are a, b, c; B is lower triangular (cctbx/PDB
    convention), U a proper rotation.
    """

    real_space: np.ndarray
    space_group_hall_symbol: str = " P 1"
    extra: dict = field(default_factory=dict)
    A_at_scan_points: Optional[np.ndarray] = None  # (n, 3, 3)
    B_covariance: Optional[np.ndarray] = None  # (9, 9)

    def __post_init__(self):
        self.real_space = np.asarray(self.real_space, dtype=float).reshape(3, 3)

    @property
    def A(self) -> np.ndarray:
        return np.linalg.inv(self.real_space)

    @property
    def B(self) -> np.ndarray:
        return reciprocal_B_from_metric(metric_elements_from_A(self.A))

    @property
    def U(self) -> np.ndarray:
        return self.A @ np.linalg.inv(self.B)

    def set_A(self, A: np.ndarray) -> None:
        self.real_space = np.linalg.inv(np.asarray(A, dtype=float))

    def set_UB(self, U: np.ndarray, B: np.ndarray) -> None:
        self.set_A(U @ B)

    @property
    def unit_cell(self) -> np.ndarray:
        """(a, b, c, alpha, beta, gamma), Angstrom and degrees."""
        return cell_parameters(self.real_space)


def metric_elements_from_A(A: np.ndarray) -> np.ndarray:
    G = A.T @ A
    return np.array([G[0, 0], G[1, 1], G[2, 2], G[0, 1], G[0, 2], G[1, 2]])


# ------------------------------------------------------------------------------- detector
@dataclass(eq=False)
class Panel:
    """One detector panel.  `local_*` is the frame relative to the parent group (what DIALS
    stores); `fast`, `slow`, `origin` are the laboratory frame, kept composed by the Detector."""

    name: str
    local_fast: np.ndarray
    local_slow: np.ndarray
    local_origin: np.ndarray
    image_size: tuple  # (fast, slow) pixels
    pixel_size: tuple  # (fast, slow) mm
    thickness: float = 0.0
    mu: float = 0.0
    parallax: bool = False  # ParallaxCorrectedPxMmStrategy
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.local_fast = np.asarray(self.local_fast, dtype=float)
        self.local_slow = np.asarray(self.local_slow, dtype=float)
        self.local_origin = np.asarray(self.local_origin, dtype=float)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        self.pixel_size = (float(self.pixel_size[0]), float(self.pixel_size[1]))
        # laboratory frame: identical to the local one until a Detector composes it
        self.fast = self.local_fast.copy()
        self.slow = self.local_slow.copy()
        self.origin = self.local_origin.copy()

    @property
    def d(self) -> np.ndarray:
        """Panel matrix [fast | slow | origin] (columns, laboratory frame)."""
        return np.column_stack([self.fast, self.slow, self.origin])

    @property
    def D(self) -> np.ndarray:
        return np.linalg.inv(self.d)

    @property
    def normal(self) -> np.ndarray:
        return unit(np.cross(self.fast, self.slow))

    @property
    def size_mm(self) -> tuple:
        return (self.image_size[0] * self.pixel_size[0], self.image_size[1] * self.pixel_size[1])

    def valid_extent_mm(self) -> np.ndarray:
        """(width, height) mm within which a point is on the panel, as dxtbx judges it: the far
        corner pixel (image_size) converted to millimetres, parallax correction included."""
        return np.abs(self.px_to_mm(np.asarray(self.image_size, dtype=float))[0])

    def corners_mm(self) -> np.ndarray:
        """The four corner pixels (0, 0), (nx, 0), (0, ny), (nx, ny) in panel millimetres (4, 2),
        parallax correction included (dxtbx's resolution at the corners uses these)."""
        nx, ny = (float(v) for v in self.image_size)
        return self.px_to_mm(np.array([[0.0, 0.0], [nx, 0.0], [0.0, ny], [nx, ny]]))

    def _parallax_offset(self, xy_mm: np.ndarray) -> np.ndarray:
        """The parallax shift (mm, fast and slow) of points xy_mm (n, 2) on this panel."""
        xy_mm = np.atleast_2d(xy_mm)
        if not self.parallax or self.mu <= 0.0 or self.thickness <= 0.0:
            return np.zeros_like(xy_mm)
        s = self.origin + xy_mm[:, :1] * self.fast + xy_mm[:, 1:2] * self.slow
        s = s / np.linalg.norm(s, axis=1, keepdims=True)
        n = np.cross(self.fast, self.slow)
        if self.origin @ n < 0:
            n = -n
        n = n / np.linalg.norm(n)
        t = self.thickness / (s @ n)
        o = 1.0 / self.mu - (t + 1.0 / self.mu) * np.exp(-self.mu * t)
        return np.column_stack([(s @ self.fast) * o, (s @ self.slow) * o])

    def mm_to_px(self, xy_mm: np.ndarray) -> np.ndarray:
        """Panel millimetres (n, 2) to pixels, with DIALS's parallax correction if enabled."""
        xy_mm = np.atleast_2d(np.asarray(xy_mm, dtype=float))
        corrected = xy_mm + self._parallax_offset(xy_mm)
        return corrected / np.asarray(self.pixel_size)

    def px_to_mm(self, xy_px: np.ndarray) -> np.ndarray:
        """Pixels (n, 2) to panel millimetres, DIALS's approximate inverse of mm_to_px."""
        xy = np.atleast_2d(np.asarray(xy_px, dtype=float)) * np.asarray(self.pixel_size)
        return xy - self._parallax_offset(xy)


@dataclass(eq=False)
class DetectorGroup:
    """A node of the detector hierarchy: a local frame relative to its parent, and children that
    are groups or panel indices."""

    name: str = ""
    local_fast: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))
    local_slow: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    local_origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    children: list = field(default_factory=list)  # DetectorGroup | int
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.local_fast = np.asarray(self.local_fast, dtype=float)
        self.local_slow = np.asarray(self.local_slow, dtype=float)
        self.local_origin = np.asarray(self.local_origin, dtype=float)
        self.fast = self.local_fast.copy()
        self.slow = self.local_slow.copy()
        self.origin = self.local_origin.copy()

    def panel_indices(self) -> list:
        """Indices of every panel below this group, in tree order."""
        out = []
        for c in self.children:
            out.extend(c.panel_indices() if isinstance(c, DetectorGroup) else [c])
        return out


Node = Union[DetectorGroup, int]


def _basis(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    f, s = unit(fast), unit(slow)
    return np.column_stack([f, s, np.cross(f, s)])


class Detector:
    """Panels and the hierarchy of groups above them.

    Every node stores its local frame; `compose()` recomputes the laboratory frames top-down
    (fast = P fast_local, slow = P slow_local, origin = o + P origin_local with P = [f s n] of
    the parent).  Use `set_lab_frame` to move a panel or group: it writes the local frame that
    gives the requested laboratory frame, and every descendant follows rigidly.
    """

    def __init__(self, panels: list, root: Optional[DetectorGroup] = None, extra: Optional[dict] = None):
        self.panels = list(panels)
        self.root = root if root is not None else DetectorGroup(children=list(range(len(panels))))
        self.extra = dict(extra or {})
        self._parent: dict = {}
        self._index_tree()
        self.compose()

    def __len__(self) -> int:
        return len(self.panels)

    def __iter__(self) -> Iterator[Panel]:
        return iter(self.panels)

    def __getitem__(self, i: int) -> Panel:
        return self.panels[i]

    def _index_tree(self) -> None:
        self._parent = {}

        def walk(group):
            for c in group.children:
                key = ("panel", c) if not isinstance(c, DetectorGroup) else ("group", id(c))
                self._parent[key] = group
                if isinstance(c, DetectorGroup):
                    walk(c)

        walk(self.root)

    def groups_at_level(self, level: int) -> list:
        """Nodes at depth `level` (0 = root); panels at that depth are returned as indices."""
        nodes: list = [self.root]
        for _ in range(level):
            nodes = [c for n in nodes if isinstance(n, DetectorGroup) for c in n.children]
        return nodes

    def depth(self) -> int:
        def d(node):
            if not isinstance(node, DetectorGroup) or not node.children:
                return 0
            return 1 + max(d(c) for c in node.children)

        return d(self.root)

    def parent_of(self, node: Node) -> Optional[DetectorGroup]:
        if isinstance(node, DetectorGroup):
            return self._parent.get(("group", id(node)))
        return self._parent.get(("panel", node))

    def _parent_frame(self, node: Node):
        parent = self.parent_of(node)
        if parent is None:
            return np.eye(3), np.zeros(3)
        return _basis(parent.fast, parent.slow), parent.origin

    def compose(self) -> None:
        """Recompute laboratory frames of all nodes from the local frames."""

        def walk(group, P, o):
            group.fast = P @ group.local_fast
            group.slow = P @ group.local_slow
            group.origin = o + P @ group.local_origin
            Pg = _basis(group.fast, group.slow)
            for c in group.children:
                if isinstance(c, DetectorGroup):
                    walk(c, Pg, group.origin)
                else:
                    p = self.panels[c]
                    p.fast = Pg @ p.local_fast
                    p.slow = Pg @ p.local_slow
                    p.origin = group.origin + Pg @ p.local_origin

        walk(self.root, np.eye(3), np.zeros(3))

    def set_lab_frame(self, node: Node, fast, slow, origin) -> None:
        """Move `node` (a group or a panel index) to the given laboratory frame."""
        P, o = self._parent_frame(node)
        obj = node if isinstance(node, DetectorGroup) else self.panels[node]
        # P is orthonormal only to the precision of the parent's axes, so invert it rather
        # than transpose it: the node must land exactly on the requested frame.
        local = np.linalg.solve(
            P,
            np.column_stack(
                [
                    np.asarray(fast, dtype=float),
                    np.asarray(slow, dtype=float),
                    np.asarray(origin, dtype=float) - o,
                ]
            ),
        )
        obj.local_fast, obj.local_slow, obj.local_origin = local[:, 0], local[:, 1], local[:, 2]
        self.compose()

    def lab_frame(self, node: Node):
        """(fast, slow, origin) of a group or panel index, laboratory frame."""
        obj = node if isinstance(node, DetectorGroup) else self.panels[node]
        return obj.fast.copy(), obj.slow.copy(), obj.origin.copy()


# ----------------------------------------------------------------------------- experiment
@dataclass(eq=False)
class Experiment:
    """One experiment: references to (possibly shared) models, and its identifier."""

    beam: Optional[Beam] = None
    detector: Optional[Detector] = None
    goniometer: Optional[Goniometer] = None
    scan: Optional[Scan] = None
    crystal: Optional[Crystal] = None
    identifier: str = ""
    imageset: Any = None  # index into the list's imagesets, kept opaque
    profile: Any = None
    scaling_model: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def is_still(self) -> bool:
        return self.goniometer is None or self.scan is None or self.scan.oscillation[1] == 0.0


def clear_scan_points(model) -> None:
    """Remove a model's models at scan points (crystal A_at_scan_points and its
    B_covariance_at_scan_points, beam s0_at_scan_points, goniometer
    setting_rotation_at_scan_points), leaving its static state."""
    if model is None:
        return
    for attr in ("A_at_scan_points", "s0_at_scan_points", "setting_rotation_at_scan_points"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    getattr(model, "extra", {}).pop("B_covariance_at_scan_points", None)


class ExperimentList(list):
    """A list of Experiment; `extra` keeps top-level keys xrefine does not interpret
    (imageset, profile, scaling_model lists, history) for the writer."""

    def __init__(self, experiments=(), extra: Optional[dict] = None):
        super().__init__(experiments)
        self.extra = dict(extra or {})

    def unique(self, kind: str) -> list:
        """The distinct model objects of one kind ('beam', 'detector', ...), in first-use order."""
        seen, out = set(), []
        for e in self:
            m = getattr(e, kind)
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                out.append(m)
        return out

    def indices_using(self, model) -> list:
        """Indices of experiments that use this model object."""
        return [
            i
            for i, e in enumerate(self)
            if model is e.beam or model is e.detector or model is e.goniometer or model is e.scan or model is e.crystal
        ]
