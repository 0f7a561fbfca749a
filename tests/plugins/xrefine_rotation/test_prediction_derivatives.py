"""d(X, Y, phi)/dp from RotationPredictor against finite differences, for every parameter of
every parameterisation and for every element of the panel matrix d, at non-zero parameter
values.

Tolerance: |fd - analytic| <= 1e-6 * max(|analytic|, scale), scale = RMS of that Jacobian column
for that coordinate over all reflections (see `assert_derivatives_close`).  The differences are
fourth-order central differences (`central_difference`) with steps of 0.1 mrad for angles,
1e-4 1/Angstrom for the wavenumber, 1e-3 of the value for cell parameters and 1e-3 (mm or
unitless) for panel-matrix elements.  An absolute floor of 1e-12 (mm or rad per parameter
unit) covers the identically-zero d(phi)/d(detector) columns, whose differences are pure
rounding of the re-composed models.
"""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.geometry import rotation_matrix, unit
from xrefine.predictor import ExperimentState, StateDerivative

from xrefine_rotation import (
    BeamParameterisation,
    CrystalOrientationParameterisation,
    CrystalUnitCellParameterisation,
    GoniometerParameterisation,
    RotationPredictor,
)

LATTICES = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "hexagonal", "rhombohedral", "cubic")
ANGLE_STEP = 0.1
NU_STEP = 1e-4
CELL_RELATIVE_STEP = 1e-3
PANEL_STEP = 1e-3


def experiment_with(sim, goniometer_rotations: bool, lattice="triclinic"):
    if not goniometer_rotations:
        return sim.make_experiment(lattice=lattice)
    S = rotation_matrix(unit([0.2, 0.5, 0.8]), np.radians(12.0))
    F = rotation_matrix(unit([-1.0, 1.0, 2.0]), np.radians(40.0))
    return sim.make_experiment(lattice=lattice, setting_rotation=S, fixed_rotation=F)


def check_prediction_derivatives(sim, experiment, params, steps):
    """Analytic Jacobian for all `params` at once (columns in order) against differences."""
    obs = sim.observe(experiment)
    assert len(obs.miller_index) > 500
    derivs = [StateDerivative(p.kind, p.state_derivatives()) for p in params]
    block = sim.predict(experiment, obs, derivs)
    assert block.valid.all()
    np.testing.assert_allclose(block.xyz, obs.xyz, rtol=0, atol=1e-9)

    sizes = [p.num_free for p in params]
    x0 = np.concatenate([p.get_free_values() for p in params])
    split = np.cumsum(sizes)[:-1]

    def f(x):
        # re-compose only what changed, so untouched models are bit-for-bit unchanged
        for p, xp in zip(params, np.split(x, split)):
            if not np.array_equal(xp, p.get_free_values()):
                p.set_free_values(xp)
        return sim.predict(experiment, obs).xyz

    fd = sim.central_difference(f, x0, steps)
    assert block.jacobian.shape == fd.shape == (len(obs.miller_index), 3, sum(sizes))
    sim.assert_derivatives_close(fd, block.jacobian, axis_scale=0, atol=1e-12)


@pytest.mark.parametrize("goniometer_rotations", [False, True])
def test_beam(sim, goniometer_rotations):
    e = experiment_with(sim, goniometer_rotations)
    param = BeamParameterisation(e.beam, e.goniometer, [0])
    param.set_free_values([3.0, -2.0, param.parameters[2].value * 1.002])
    check_prediction_derivatives(sim, e, [param], [ANGLE_STEP, ANGLE_STEP, NU_STEP])


@pytest.mark.parametrize("goniometer_rotations", [False, True])
def test_crystal_orientation(sim, goniometer_rotations):
    e = experiment_with(sim, goniometer_rotations)
    param = CrystalOrientationParameterisation(e.crystal, [0])
    param.set_free_values([2.0, -3.0, 1.5])
    check_prediction_derivatives(sim, e, [param], [ANGLE_STEP] * 3)


@pytest.mark.parametrize("lattice", LATTICES)
def test_unit_cell(sim, lattice):
    e = experiment_with(sim, lattice == "monoclinic", lattice)
    param = CrystalUnitCellParameterisation(e.crystal, [0])
    x = param.get_free_values() * (1.0 + 0.004 * np.arange(1, param.num_free + 1))
    param.set_free_values(x)
    check_prediction_derivatives(sim, e, [param], CELL_RELATIVE_STEP * np.abs(x))


@pytest.mark.parametrize("goniometer_rotations", [False, True])
def test_goniometer(sim, goniometer_rotations):
    e = experiment_with(sim, goniometer_rotations)
    param = GoniometerParameterisation(e.goniometer, e.beam, [0])
    param.set_free_values([2.0, -1.5])
    check_prediction_derivatives(sim, e, [param], [ANGLE_STEP] * 2)


class PanelMatrixElements:
    """A stand-in 'parameterisation' whose nine parameters are the elements of the panel matrix
    d = [fast | slow | origin] themselves (the detector plugin owns the real ones), so every
    element of detector.d is checked."""

    kind = "detector.d"
    num_free = 9

    def __init__(self, panel):
        self.panel = panel

    def get_free_values(self):
        return self.panel.d.ravel().copy()

    def set_free_values(self, x):
        d = np.asarray(x).reshape(3, 3)
        self.panel.fast, self.panel.slow, self.panel.origin = d[:, 0].copy(), d[:, 1].copy(), d[:, 2].copy()

    def state_derivatives(self):
        return np.eye(9).reshape(9, 3, 3)


def test_panel_matrix(sim):
    e = sim.make_experiment()
    check_prediction_derivatives(sim, e, [PanelMatrixElements(e.detector[0])], [PANEL_STEP] * 9)


def test_all_kinds_together_in_order(sim):
    """Every state kind in one call: the Jacobian columns follow the order of the groups."""
    e = experiment_with(sim, True, "hexagonal")
    params = [
        PanelMatrixElements(e.detector[0]),
        BeamParameterisation(e.beam, e.goniometer, [0]),
        CrystalOrientationParameterisation(e.crystal, [0]),
        CrystalUnitCellParameterisation(e.crystal, [0]),
        GoniometerParameterisation(e.goniometer, e.beam, [0]),
    ]
    params[1].set_free_values([1.0, -2.0, params[1].parameters[2].value * 0.999])
    params[2].set_free_values([2.0, -3.0, 1.5])
    params[3].set_free_values(params[3].get_free_values() * 1.002)
    params[4].set_free_values([-1.0, 2.5])
    steps = [PANEL_STEP] * 9 + [ANGLE_STEP, ANGLE_STEP, NU_STEP] + [ANGLE_STEP] * 3
    steps += list(CELL_RELATIVE_STEP * np.abs(params[3].get_free_values())) + [ANGLE_STEP] * 2
    check_prediction_derivatives(sim, e, params, steps)


def test_derivative_of_static_state_with_per_row_values(sim):
    """A derivative given per reflection ((n, k, ...)) equals the same derivative given once."""
    e = sim.make_experiment()
    obs = sim.observe(e)
    n = len(obs.miller_index)
    param = CrystalOrientationParameterisation(e.crystal, [0])
    dU = param.state_derivatives()
    static = sim.predict(e, obs, [StateDerivative("crystal.U", dU)])
    per_row = sim.predict(e, obs, [StateDerivative("crystal.U", np.broadcast_to(dU, (n,) + dU.shape))])
    np.testing.assert_allclose(per_row.jacobian, static.jacobian, rtol=1e-12, atol=1e-15)


def test_unknown_state_kind_is_refused(sim):
    e = sim.make_experiment()
    obs = sim.observe(e)
    state = ExperimentState.from_experiment(e, 0)
    with pytest.raises(ValueError, match="crystal.Q"):
        RotationPredictor().predict(
            state, obs.miller_index, obs.entering, obs.xyz[:, 2], [StateDerivative("crystal.Q", np.zeros((1, 3, 3)))]
        )
