"""Goniometer parameterisation: two small rotations of the setting matrix S (MATH.md 4.6)."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np

from xrefine.geometry import rotation_matrix, rotation_matrix_derivative, unit
from xrefine.models import Beam, Goniometer
from xrefine.parameters import Parameter, Parameterisation

from .fixing import apply_fix
from .plane_axes import plane_axes

__all__ = ["GoniometerParameterisation", "make_goniometer_parameterisation", "GONIOMETER_FIX_WORDS"]

#: DIALS `goniometer.fix` words and the parameters each fixes
GONIOMETER_FIX_WORDS = {
    "in_beam_plane": ("Gamma1",),
    "out_beam_plane": ("Gamma2",),
}


class GoniometerParameterisation(Parameterisation):
    """S = G2 G1 S0, G_i a rotation by ``Gamma<i>`` / 1000 rad about axis w_i.

    w2 = unit(e x s0_unit) is normal to the spindle-beam plane and w1 = unit(w2 x e) lies in it
    (e the laboratory spindle S e_d at construction), so ``Gamma1`` (mrad) tilts the spindle out
    of the spindle-beam plane and ``Gamma2`` (mrad) turns it within the plane.  Without a beam
    w1 is an arbitrary perpendicular of e.  The fixed rotation F is never parameterised.
    """

    kind = "goniometer.S"

    def __init__(
        self,
        goniometer: Goniometer,
        beam: Optional[Beam] = None,
        experiment_ids: Sequence[int] = (0,),
        name: str = "Goniometer1",
    ):
        super().__init__(goniometer, experiment_ids, name)
        self.beam = beam
        self.parameters = [Parameter("Gamma1", 0.0, "mrad"), Parameter("Gamma2", 0.0, "mrad")]
        self._set_reference()

    def _set_reference(self) -> None:
        self.S0 = np.array(self.model.setting_rotation, dtype=float)
        s0_unit = unit(self.beam.s0) if self.beam is not None else None
        self.axes = plane_axes(self.model.rotation_axis_lab, s0_unit)  # (w1, w2)

    def _rotations(self) -> tuple:
        g1, g2 = (p.value / 1000.0 for p in self.parameters)
        w1, w2 = self.axes
        return (
            rotation_matrix(w1, g1),
            rotation_matrix(w2, g2),
            rotation_matrix_derivative(w1, g1),
            rotation_matrix_derivative(w2, g2),
        )

    def state(self) -> np.ndarray:
        """S (3, 3)."""
        G1, G2, _, _ = self._rotations()
        return G2 @ G1 @ self.S0

    def state_derivatives(self) -> np.ndarray:
        """dS / dGamma_i (k, 3, 3), per mrad."""
        G1, G2, dG1, dG2 = self._rotations()
        full = [G2 @ dG1 @ self.S0, dG2 @ G1 @ self.S0]
        return np.array([d / 1000.0 for d, p in zip(full, self.parameters) if not p.fixed]).reshape(-1, 3, 3)

    def compose(self) -> None:
        self.model.setting_rotation = self.state()

    def rebase(self) -> None:
        """S0 = current S, angles back to zero, axes rebuilt from the current spindle and beam."""
        self.compose()
        for p in self.parameters:
            p.value = 0.0
        self._set_reference()


def make_goniometer_parameterisation(
    goniometer: Goniometer,
    beam: Optional[Beam],
    experiment_ids: Sequence[int],
    name: str = "Goniometer1",
    fix: Optional[Union[str, Iterable]] = ("all",),
) -> GoniometerParameterisation:
    """Parameterise a goniometer's setting rotation (shared by `experiment_ids`).

    beam: the beam of the goniometer's first experiment (defines the spindle-beam plane), or None.
    fix: entries of DIALS's ``goniometer.fix`` and ``fix_list``: ``all`` (the default, as in
    DIALS); ``in_beam_plane`` (fixes Gamma1, so the spindle only turns within the spindle-beam
    plane); ``out_beam_plane`` (fixes Gamma2); parameter names (Gamma1, Gamma2, matched
    case-insensitively) or 0-based indices.  Pass None or () to refine both angles.
    """
    param = GoniometerParameterisation(goniometer, beam, experiment_ids, name)
    apply_fix(param, fix, GONIOMETER_FIX_WORDS, "goniometer.fix")
    return param
