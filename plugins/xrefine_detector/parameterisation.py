"""A detector parameterisation made of rigid blocks at one or more depths of the hierarchy.

The blocks at one refined depth cover every panel once.  With several depths (MATH.md 4.5
[rec]) a block rides on the blocks above it: a panel under blocks b_0 (root side) ... b_m is at

    M_0(M_1(... M_m(x0) ...))

where x0 is its frame at setup and M_j the motion of b_j written in setup coordinates
(rigid_motion.py).  A parent therefore carries its children rigidly, their bases, pivots and
parameter axes included, and a child's parameters are its motion relative to its parent:

    d x / d p_j = R_0 ... R_(j-1) . d M_j(M_(j+1)(... M_m(x0) ...)) / d p_j.

Note that a parent's six motions are also combinations of its children's, so refining a node
and all of its children at once leaves six directions per parent that no data determine; fix
one child per parent (``detector.fix_groups``) or restrain them.
"""

from __future__ import annotations

import numpy as np
from xrefine.geometry import unit
from xrefine.models import Detector, DetectorGroup
from xrefine.parameters import Parameter, Parameterisation

from .rigid_group import PARAMETER_UNITS, RigidGroup
from .rigid_motion import block_motion_derivatives, block_motions

__all__ = ["DetectorParameterisation"]


def _frame(fast, slow, origin) -> np.ndarray:
    return np.column_stack([fast, slow, origin])


def _parent_frame(detector: Detector, node) -> np.ndarray:
    """Laboratory [fast | slow | origin] of the node's parent (identity at zero for the root)."""
    parent = detector.parent_of(node)
    if parent is None:
        return _frame([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0])
    return _frame(parent.fast, parent.slow, parent.origin)


def _moved(frames: np.ndarray, R: np.ndarray, pivot: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Frames (m, 3, 3) moved by motions (R, pivot) of blocks whose reference points were
    `reference`, one motion per frame."""
    rel = frames.copy()
    rel[..., 2] -= reference
    out = R @ rel
    out[..., 2] += pivot
    return out


class DetectorParameterisation(Parameterisation):
    """State kind ``detector.d``: the [fast | slow | origin] frames of every panel.

    `levels` lists the refined depths, root side first, each as the RigidGroup blocks that move
    its nodes; every panel belongs to exactly one block of each level, and a block lies inside
    one block of each shallower level (blocks of a tree do).  The parameter list is every block's
    six parameters, level by level.  `compose` rewrites the local frames of the moved nodes only
    and lets the Detector compose the tree once, so panels keep their local frames and a written
    file keeps its module layout.
    """

    kind = "detector.d"

    def __init__(self, detector: Detector, levels, experiment_ids, name: str = "Detector1"):
        super().__init__(detector, experiment_ids, name)
        self.levels: list = [list(level) for level in levels]
        if not self.levels or not all(self.levels):
            raise ValueError(f"{name}: a detector parameterisation needs at least one block per level")
        n = len(detector)
        self._owner = np.empty((len(self.levels), n), dtype=int)
        for j, level in enumerate(self.levels):
            owner = np.full(n, -1)
            for ig, g in enumerate(level):
                if np.any(owner[g.panels] >= 0):
                    raise ValueError(f"{name}: panel(s) {g.panels[owner[g.panels] >= 0].tolist()} are in two blocks of level {j}")
                owner[g.panels] = ig
            if np.any(owner < 0):
                raise ValueError(f"{name}: panel(s) {np.flatnonzero(owner < 0).tolist()} are in no block of level {j}")
            self._owner[j] = owner
        # _ancestors[j][i]: the block of level i that holds each block of level j (i < j)
        self._ancestors = []
        for j, level in enumerate(self.levels):
            first = [g.panels[0] for g in level]
            up = [self._owner[i][first] for i in range(j)]
            for i in range(j):
                for ig, g in enumerate(level):
                    if np.any(self._owner[i][g.panels] != up[i][ig]):
                        raise ValueError(f"{name}: block {ig} of level {j} straddles blocks of level {i}")
            self._ancestors.append(up)
        sizes = [len(level) for level in self.levels]
        self._first_block = np.concatenate([[0], np.cumsum(sizes)])
        # rows (into all parameters) of the blocks that move each panel: (n, 6 x levels)
        self._panel_rows = np.concatenate(
            [6 * (self._first_block[j] + self._owner[j])[:, None] + np.arange(6) for j in range(len(self.levels))], axis=1)
        self._reset_reference()
        self.parameters = [
            Parameter(short, float(v), u)
            for g in self.groups
            for short, v, u in zip(g.names, g.initial_values(), PARAMETER_UNITS)
        ]

    @property
    def groups(self) -> list:
        """Every block, in parameter order (level by level, root side first)."""
        return [g for level in self.levels for g in level]

    def _reset_reference(self) -> None:
        # the frames every block's motion is applied to: the detector as it is now
        det = self.model
        self._frames0 = self.state()
        self._bases = [np.stack([g.basis for g in level]) for level in self.levels]
        self._references = [np.stack([g.reference_point for g in level]) for level in self.levels]
        self._node_frames0 = [np.stack([_frame(*det.lab_frame(g.node)) for g in level]) for level in self.levels]
        self._parent_frames0 = [np.stack([_parent_frame(det, g.node) for g in level]) for level in self.levels]

    def _level_values(self) -> list:
        values = np.fromiter((p.value for p in self.parameters), float, len(self.parameters)).reshape(-1, 6)
        return [values[a:b] for a, b in zip(self._first_block[:-1], self._first_block[1:])]

    def _free_positions(self) -> np.ndarray:
        """Index of each parameter among the free ones, -1 where fixed."""
        fixed = np.fromiter((p.fixed for p in self.parameters), bool, len(self.parameters))
        return np.where(fixed, -1, np.cumsum(~fixed) - 1)

    def _carry(self, j: int, motions: list, frames: np.ndarray) -> np.ndarray:
        """Frames (one per block of level j) moved by the blocks above level j."""
        for i in reversed(range(j)):
            a = self._ancestors[j][i]
            R, pivot = motions[i]
            frames = _moved(frames, R[a], pivot[a], self._references[i][a])
        return frames

    # --- state
    def compose(self) -> None:
        """Move every block's node to where its parameters and those of the blocks above it put
        it: write its local frame relative to its (moved) parent and compose the Detector once."""
        motions = [block_motions(B, v) for B, v in zip(self._bases, self._level_values())]
        for j, level in enumerate(self.levels):
            R, pivot = motions[j]
            lab = self._carry(j, motions, _moved(self._node_frames0[j], R, pivot, self._references[j]))
            parent = self._carry(j, motions, self._parent_frames0[j])
            # the parent basis exactly as Detector.compose builds it (unit axes and their cross
            # product), inverted rather than transposed so the node lands on the requested frame
            f, s = unit(parent[..., 0]), unit(parent[..., 1])
            P = np.stack([f, s, np.cross(f, s)], axis=-1)
            rhs = lab.copy()
            rhs[..., 2] -= parent[..., 2]
            local = np.linalg.solve(P, rhs)
            for g, frame in zip(level, local):
                node = g.node if isinstance(g.node, DetectorGroup) else self.model[g.node]
                node.local_fast, node.local_slow, node.local_origin = frame.T.copy()
        self.model.compose()

    def state(self) -> np.ndarray:
        """The panel frames (n_panels, 3, 3), columns [fast | slow | origin], lab frame, mm,
        exactly as the Detector has composed them."""
        return np.array([(p.fast, p.slow, p.origin) for p in self.model.panels]).transpose(0, 2, 1)

    def state_derivatives(self) -> np.ndarray:
        """d(panel frames)/dp (k, n_panels, 3, 3) for the k free parameters; a parameter is
        non-zero only on the panels below its block."""
        free_position = self._free_positions()
        n = len(self.model)
        out = np.zeros((int((free_position >= 0).sum()), n, 3, 3))
        if not len(out):
            return out
        values = self._level_values()
        rotations, local = [None] * len(self.levels), [None] * len(self.levels)
        frames = self._frames0
        # deepest level first: each block's derivative acts on the frames its children made
        for j in reversed(range(len(self.levels))):
            g = self._owner[j]
            R, pivot, dR, d_pivot = block_motion_derivatives(self._bases[j], values[j])
            rel = frames.copy()
            rel[..., 2] -= self._references[j][g]
            d = np.zeros((n, 6, 3, 3))
            d[:, 3:] = np.einsum("nkab,nbc->nkac", dR[g], rel)
            d[..., 2] += d_pivot[g]
            local[j], rotations[j] = d, R[g]
            frames = rotations[j] @ rel
            frames[..., 2] += pivot[g]
        # then carried by the rotations of the blocks above
        above = None
        panel = np.broadcast_to(np.arange(n)[:, None], (n, 6))
        for j in range(len(self.levels)):
            d = local[j] if above is None else np.einsum("nab,nkbc->nkac", above, local[j])
            column = free_position[self._panel_rows[:, 6 * j : 6 * j + 6]]
            free = column >= 0
            out[column[free], panel[free]] = d[free]
            above = rotations[j] if above is None else above @ rotations[j]
        return out

    def panel_columns(self, panel: int) -> np.ndarray:
        """Indices into the free parameters of the blocks that move `panel` (its own block at
        each refined level), ascending."""
        column = self._free_positions()[self._panel_rows[panel]]
        return column[column >= 0]

    def rebase(self) -> None:
        """Make the current position every block's reference: bases and pivots move with the
        block and the blocks above it, Dist/Shift1/Shift2 are re-derived and the angles return
        to zero.  The detector is not touched, so the state is unchanged."""
        motions = [block_motions(B, v) for B, v in zip(self._bases, self._level_values())]
        levels = []
        for j, level in enumerate(self.levels):
            R, pivot = motions[j]
            # a block's basis and pivot, as frames [e1 | e2 | pivot], carried by its ancestors
            frames = self._carry(j, motions, np.concatenate([R @ self._bases[j][..., :2], pivot[..., None]], axis=-1))
            levels.append([RigidGroup(g.node, g.panels, f[:, 0], f[:, 1], f[:, 2], g.prefix) for g, f in zip(level, frames)])
        self.levels = levels
        for p, v in zip(self.parameters, np.concatenate([g.initial_values() for g in self.groups])):
            p.value = float(v)
            p.esd = None
        self._reset_reference()
