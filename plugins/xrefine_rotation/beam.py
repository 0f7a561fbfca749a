"""Beam parameterisation: two tilt angles of s0 (mrad) and its length, the wavenumber (MATH.md 4.1)."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np

from xrefine.geometry import rotation_matrix, rotation_matrix_derivative, unit
from xrefine.models import Beam, Goniometer
from xrefine.parameters import Parameter, Parameterisation

from .fixing import apply_fix
from .plane_axes import plane_axes

__all__ = ["BeamParameterisation", "make_beam_parameterisation", "BEAM_FIX_WORDS"]

#: DIALS `beam.fix` words and the parameters each fixes
BEAM_FIX_WORDS = {
    "in_spindle_plane": ("Mu1",),
    "out_spindle_plane": ("Mu2",),
    "wavelength": ("nu",),
}


class BeamParameterisation(Parameterisation):
    """s0 = nu * M2 M1 s0_dir0 with M_i a rotation by Mu_i / 1000 rad about axis u_i.

    Parameters, in order: ``Mu1`` (mrad) tilts the beam out of the spindle-beam plane (rotation
    about u1, the in-plane axis perpendicular to s0); ``Mu2`` (mrad) swings it within that plane
    (rotation about u2 = unit(s0 x e), e the laboratory spindle axis); ``nu`` (1/Angstrom) is
    |s0| = 1/wavelength.  The names are DIALS's.  Without a goniometer u1 is an arbitrary
    perpendicular of s0.  The axes and s0_dir0 are taken from the beam at construction (and at
    `rebase`); the angles start at zero.

    A ``polarization_normal`` kept in ``beam.extra`` is rotated with the beam, as DIALS does.
    """

    kind = "beam.s0"

    def __init__(
        self,
        beam: Beam,
        goniometer: Optional[Goniometer] = None,
        experiment_ids: Sequence[int] = (0,),
        name: str = "Beam1",
    ):
        super().__init__(beam, experiment_ids, name)
        self.goniometer = goniometer
        self.parameters = [
            Parameter("Mu1", 0.0, "mrad"),
            Parameter("Mu2", 0.0, "mrad"),
            Parameter("nu", float(np.linalg.norm(beam.s0)), "1/Angstrom"),
        ]
        self._set_reference()

    def _set_reference(self) -> None:
        s0 = self.model.s0
        spindle = self.goniometer.rotation_axis_lab if self.goniometer is not None else None
        self.s0_direction0 = unit(s0)
        self.axes = plane_axes(s0, spindle)  # (u1, u2)
        pn = self.model.extra.get("polarization_normal")
        self._polarization_normal0 = None if pn is None else np.asarray(pn, dtype=float)

    def _rotations(self) -> tuple:
        mu1, mu2 = (self.parameters[0].value / 1000.0, self.parameters[1].value / 1000.0)
        u1, u2 = self.axes
        return (
            rotation_matrix(u1, mu1),
            rotation_matrix(u2, mu2),
            rotation_matrix_derivative(u1, mu1),
            rotation_matrix_derivative(u2, mu2),
        )

    def state(self) -> np.ndarray:
        """s0 (3,), 1/Angstrom."""
        M1, M2, _, _ = self._rotations()
        return self.parameters[2].value * unit(M2 @ M1 @ self.s0_direction0)

    def state_derivatives(self) -> np.ndarray:
        """d s0 / d p (k, 3): per mrad for Mu1, Mu2 and per 1/Angstrom for nu."""
        M1, M2, dM1, dM2 = self._rotations()
        nu = self.parameters[2].value
        s = self.s0_direction0
        full = [nu / 1000.0 * (M2 @ dM1 @ s), nu / 1000.0 * (dM2 @ M1 @ s), unit(M2 @ M1 @ s)]
        return np.array([d for d, p in zip(full, self.parameters) if not p.fixed]).reshape(-1, 3)

    def compose(self) -> None:
        self.model.set_s0(self.state())
        if self._polarization_normal0 is not None:
            M1, M2, _, _ = self._rotations()
            self.model.extra["polarization_normal"] = [float(x) for x in unit(M2 @ M1 @ self._polarization_normal0)]

    def rebase(self) -> None:
        """Take the current beam as the reference: Mu1 = Mu2 = 0, axes rebuilt from the current
        s0 and spindle (what DIALS gets by re-parameterising every macrocycle)."""
        self.compose()
        for p in self.parameters[:2]:
            p.value = 0.0
        self._set_reference()


def make_beam_parameterisation(
    beam: Beam,
    goniometer: Optional[Goniometer],
    experiment_ids: Sequence[int],
    name: str = "Beam1",
    fix: Optional[Union[str, Iterable]] = ("in_spindle_plane", "wavelength"),
) -> BeamParameterisation:
    """Parameterise a beam (shared by `experiment_ids`) and fix parameters DIALS-style.

    goniometer: the goniometer of the beam's first experiment (its spindle defines the
    spindle-beam plane), or None for stills.
    fix: entries of DIALS's ``beam.fix`` and ``beam.fix_list``: ``all``; ``in_spindle_plane``
    (fixes Mu1, keeping the beam in the initial spindle-beam plane); ``out_spindle_plane``
    (fixes Mu2); ``wavelength`` (fixes nu); parameter names (Mu1, Mu2, nu, matched
    case-insensitively) or 0-based indices.  Default as DIALS: in_spindle_plane and wavelength,
    so only Mu2 is refined (nu is fully correlated with the cell volume).
    """
    param = BeamParameterisation(beam, goniometer, experiment_ids, name)
    apply_fix(param, fix, BEAM_FIX_WORDS, "beam.fix")
    return param
