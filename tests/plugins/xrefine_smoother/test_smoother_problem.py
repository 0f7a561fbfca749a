"""Scan-varying parameterisations inside `xrefine.problem.RefinementProblem` with the rotation
predictor: the Jacobian with respect to the sample values against central differences of the
predictions, for every kind of model smoothed."""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.models import ExperimentList
from xrefine.problem import Observations, RefinementProblem

from xrefine_rotation import RotationPredictor, predict_all

KINDS = ("beam", "orientation", "unit_cell", "goniometer", "detector", "detector_groups")


def problem_for(cases, kind: str, compose_per: str = "image"):
    """(problem, wrapper): noise-free observations of a small experiment to 1.6 Angstrom, one
    model of `kind` smoothed (samples moved off the flat start), composed per image or per
    three-image block."""
    expt = cases.make_experiment(detector="groups" if kind == "detector_groups" else "single")
    table = predict_all(expt, 1.6)
    n = len(table["miller_index"])
    obs = Observations.build(
        np.arange(n), np.zeros(n, dtype=int), np.asarray(table["panel"]), np.asarray(table["miller_index"]),
        np.asarray(table["entering"]), np.asarray(table["xyzcal.mm"], dtype=float), np.ones((n, 3)),
    )
    z = expt.scan.frame_from_angle(obs.xyz_obs[:, 2])
    lo, hi = expt.scan.array_range
    frame = np.floor(z) if compose_per == "image" else np.floor(z / 3) * 3 + 1
    obs.frame = np.clip(frame, lo, hi - 1)
    wrapper = cases.wrap(cases.static_parameterisation(kind, expt), expt)
    cases.offset_samples(wrapper)
    return RefinementProblem(ExperimentList([expt]), obs, [wrapper], [RotationPredictor()]), wrapper


def assert_jacobian_close(fd, analytic, rtol=1e-6, atol=1e-9):
    """Per residual dimension and column: |fd - analytic| <= rtol * max(|analytic|, RMS of the
    column) + atol, so rows whose derivative happens to be near zero are judged on the
    column's size; `atol` (mm or rad per unit) covers the rounding the differences see where
    a derivative is exactly zero (a sample outside the row's window)."""
    scale = np.sqrt(np.mean(analytic**2, axis=0, keepdims=True))
    bound = rtol * np.maximum(np.abs(analytic), scale) + atol
    excess = np.abs(fd - analytic) - bound
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 0, (
        f"row {worst[0]}, dimension {worst[1]}, column {worst[2]}: fd={fd[worst]!r} analytic={analytic[worst]!r}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_prediction_derivatives_wrt_samples(cases, kind):
    # a detector is composed at every frame, which is slow: compose it per 3-image block, and
    # plain central differences suffice for its nearly linear effect on X and Y
    detector = kind.startswith("detector")
    problem, wrapper = problem_for(cases, kind, compose_per="block" if detector else "image")
    x = problem.get_x()
    m = int(problem.obs.active.sum())
    assert m > 300
    analytic = problem.jacobian(x).toarray().reshape(m, 3, -1)
    fd = cases.central_difference(lambda y: problem.residual_vector(y).reshape(m, 3), x, 1e-3, richardson=not detector)
    fd = np.moveaxis(fd, 1, 2)  # (rows, dimension, column)
    assert_jacobian_close(fd, analytic)
    # the sparsity the problem relies on: every row has at most three samples of a parameter
    nz = np.abs(analytic).max(axis=1) > 0
    k_of, _ = wrapper.free_samples()
    per_param = np.stack([nz[:, k_of == k].sum(axis=1) for k in range(wrapper.num_sets)], axis=1)
    assert per_param.max() <= 3


def test_block_composition_and_blocks_split_at_windows(cases):
    problem, wrapper = problem_for(cases, "orientation", compose_per="block")
    frames = problem.obs.frame
    for e, panel, a, b in problem.blocks:
        f = frames[a:b]
        assert np.floor(f.min() / wrapper.window_frames) == np.floor(f.max() / wrapper.window_frames)
    x = problem.get_x()
    m = int(problem.obs.active.sum())
    analytic = problem.jacobian(x).toarray().reshape(m, 3, -1)
    fd = cases.central_difference(lambda y: problem.residual_vector(y).reshape(m, 3), x, 1e-3, richardson=True)
    assert_jacobian_close(np.moveaxis(fd, 1, 2), analytic)


def test_normal_equations_match_the_sparse_jacobian(cases):
    problem, _ = problem_for(cases, "unit_cell")
    x = problem.get_x()
    ev = problem.evaluate(x)
    J = problem.jacobian(x)
    r = problem.residual_vector(x)
    assert np.allclose(ev.normal, (J.T @ J).toarray(), rtol=1e-10, atol=1e-10 * np.abs(ev.normal).max())
    assert np.allclose(ev.gradient, J.T @ r, rtol=1e-10, atol=1e-10 * np.abs(ev.gradient).max())
