"""A detector parameterisation made of rigid blocks, each moving one node of the hierarchy."""

from __future__ import annotations

import numpy as np
from xrefine.models import Detector
from xrefine.parameters import Parameter, Parameterisation

from .rigid_group import PARAMETER_UNITS, RigidGroup

__all__ = ["DetectorParameterisation"]


def _node_frame(detector: Detector, node) -> np.ndarray:
    return np.column_stack(detector.lab_frame(node))


class DetectorParameterisation(Parameterisation):
    """State kind ``detector.d``: the [fast | slow | origin] frames of every panel.

    Holds one or more RigidGroup blocks over disjoint sets of panels; the parameter list is the
    blocks' six parameters each, in block order.  `compose` moves each block's node with
    `Detector.set_lab_frame`, so a group's panels keep their local frames and the written file
    keeps the module layout.  Every panel of the detector must belong to exactly one block.
    """

    kind = "detector.d"

    def __init__(self, detector: Detector, groups, experiment_ids, name: str = "Detector1"):
        super().__init__(detector, experiment_ids, name)
        self.groups: list[RigidGroup] = list(groups)
        owner = np.full(len(detector), -1)
        for ig, g in enumerate(self.groups):
            if np.any(owner[g.panels] >= 0):
                raise ValueError(f"{name}: panel(s) {g.panels[owner[g.panels] >= 0].tolist()} are in two blocks")
            owner[g.panels] = ig
        if np.any(owner < 0):
            raise ValueError(f"{name}: panel(s) {np.flatnonzero(owner < 0).tolist()} are in no block")
        self._owner = owner
        self._reset_reference()
        self.parameters = [
            Parameter(n, float(v), u)
            for g in self.groups
            for n, v, u in zip(g.names, g.initial_values(), PARAMETER_UNITS)
        ]

    def _reset_reference(self) -> None:
        # the frames every block's motion is applied to: the detector as it is now
        self._frames0 = self.state()
        self._node_frames0 = [_node_frame(self.model, g.node) for g in self.groups]

    def _group_values(self, ig: int) -> np.ndarray:
        return np.array([p.value for p in self.parameters[6 * ig : 6 * ig + 6]])

    # --- state
    def compose(self) -> None:
        """Move every block's node to the frame its current parameter values give."""
        for ig, g in enumerate(self.groups):
            fast, slow, origin = g.moved(self._group_values(ig), self._node_frames0[ig][None])[0].T
            self.model.set_lab_frame(g.node, fast, slow, origin)

    def state(self) -> np.ndarray:
        """The panel frames (n_panels, 3, 3), columns [fast | slow | origin], lab frame, mm,
        exactly as the Detector has composed them."""
        return np.stack([p.d for p in self.model.panels])

    def state_derivatives(self) -> np.ndarray:
        """d(panel frames)/dp (k, n_panels, 3, 3) for the k free parameters; a parameter is
        non-zero only on the panels of its own block."""
        fixed = np.array([p.fixed for p in self.parameters], dtype=bool)
        out = np.zeros((len(self.parameters), len(self.model), 3, 3))
        for ig, g in enumerate(self.groups):
            rows = slice(6 * ig, 6 * ig + 6)
            if fixed[rows].all():
                continue
            out[rows, g.panels] = g.moved_derivatives(self._group_values(ig), self._frames0[g.panels])
        return out[~fixed]

    def panel_columns(self, panel: int) -> np.ndarray:
        """Indices into the free parameters of the block that moves `panel`."""
        fixed = np.array([p.fixed for p in self.parameters], dtype=bool)
        free_position = np.cumsum(~fixed) - 1
        rows = np.arange(6 * self._owner[panel], 6 * self._owner[panel] + 6)
        return free_position[rows[~fixed[rows]]]

    def rebase(self) -> None:
        """Make the current position every block's reference: the basis and pivot move with the
        block, Dist/Shift1/Shift2 are re-derived and the angles return to zero.  The detector is
        not touched, so the state is unchanged."""
        self.groups = [g.rebased(self._group_values(ig)) for ig, g in enumerate(self.groups)]
        for ig, g in enumerate(self.groups):
            for p, v in zip(self.parameters[6 * ig : 6 * ig + 6], g.initial_values()):
                p.value = float(v)
                p.esd = None
        self._reset_reference()
