"""The uniform cubic B-spline smoother (``smoother=bspline``): its basis against a literal
Cox-de Boor recursion, partition of unity, exact cubic polynomials, a slow wobble fitted far
better than the Gaussian smoother can, and the wrapper, problem, support and plugin checks of the
Gaussian smoother repeated with it (finite differences of states and predictions), ending with a
scan-varying refinement of the small wedge."""

from __future__ import annotations

import numpy as np
import pytest

import xrefine
from xrefine.config import Config
from xrefine.models import ExperimentList
from xrefine.problem import Observations, RefinementProblem

from xrefine_rotation import RotationPredictor, predict_all
from xrefine_smoother import BSplineSmoother, GaussianSmoother, ScanVaryingWrapper, check_sample_support, plugin, sample_support, with_supported_intervals
from smoother_cases import frames_for

KINDS = ("beam", "orientation", "unit_cell", "goniometer", "detector", "detector_groups")


# ---------------------------------------------------------------------------- the basis
def cox_de_boor(knots, j: int, degree: int, z: float) -> float:
    """B-spline basis function j of `degree` on `knots` at z (half-open intervals), by the
    textbook recursion."""
    if degree == 0:
        return 1.0 if knots[j] <= z < knots[j + 1] else 0.0
    out = 0.0
    if knots[j + degree] > knots[j]:
        out += (z - knots[j]) / (knots[j + degree] - knots[j]) * cox_de_boor(knots, j, degree - 1, z)
    if knots[j + degree + 1] > knots[j + 1]:
        out += (knots[j + degree + 1] - z) / (knots[j + degree + 1] - knots[j + 1]) * cox_de_boor(knots, j + 1, degree - 1, z)
    return out


def test_construction():
    s = BSplineSmoother((1, 100), 5)
    assert s.num_values == 8 and s.num_average == 4
    assert s.spacing == pytest.approx(19.8)
    assert np.array_equal(s.positions, np.arange(-1.0, 7.0))
    assert np.allclose(s.sample_frames(), 1 + 19.8 * np.arange(-1.0, 7.0))
    one = BSplineSmoother((0, 10), 1)
    assert one.num_values == 4 and np.array_equal(one.positions, [-1.0, 0.0, 1.0, 2.0])


def test_invalid_construction():
    for args in [((0, 10), 0), ((0, 10), 1.5), ((5, 5), 2), ((6, 5), 2)]:
        with pytest.raises(ValueError):
            BSplineSmoother(*args)
    with pytest.raises(ValueError, match="expected 8 sample values"):
        BSplineSmoother((0, 10), 5).value([1.0], np.zeros(7))


@pytest.mark.parametrize("n", [1, 2, 5, 20])
def test_matches_cox_de_boor_inside_the_range(n):
    s = BSplineSmoother((1, 100), n)
    knots = np.arange(-3, n + 4, dtype=float)  # basis j spans knots j .. j + 4, i.e. z in [j - 3, j + 1]
    z = np.concatenate([np.arange(0, n + 0.5, 0.5), np.random.default_rng(n).uniform(0, n, 40)])
    z = z[z < n]  # the recursion's half-open intervals leave z = n out
    dense = s.dense_weights(1 + z * s.spacing)
    expect = np.array([[cox_de_boor(knots, j, 3, zr) for j in range(s.num_values)] for zr in z])
    assert np.allclose(dense, expect, rtol=0, atol=1e-14)
    # and the curve's value at the end of the range is the last interval's cubic at u = 1
    i, w = s.weights([100.0])
    assert np.array_equal(i[0], np.arange(n - 1, n + 3)) and np.allclose(w[0], [0, 1 / 6, 4 / 6, 1 / 6], atol=1e-15)


def test_partition_of_unity_and_weights_are_the_derivatives():
    s = BSplineSmoother((1, 100), 5)
    t = np.linspace(-10, 110, 241)
    indices, w = s.weights(t)
    assert indices.shape == w.shape == (241, 4)
    assert np.allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    inside = (t >= 1) & (t <= 100)
    assert np.all(w[inside] >= 0)
    values = np.random.default_rng(5).normal(size=s.num_values)
    h = 1e-6
    fd = np.stack([(s.value(t, values + h * e) - s.value(t, values - h * e)) / (2 * h) for e in np.eye(s.num_values)], axis=1)
    assert np.allclose(fd, s.dense_weights(t), atol=1e-9)
    # constants stay constant outside the range too (the end cubics continued; far outside the
    # weights grow like z^3 and cancel only to rounding)
    assert np.allclose(s.value([-50, 1, 33.3, 100, 150], np.full(s.num_values, 2.5)), 2.5, rtol=0, atol=1e-13)
    assert np.allclose(s.value([-1e4, 1e4], np.full(s.num_values, 2.5)), 2.5, rtol=0, atol=1e-6)


def test_windows_change_at_the_knots_and_hold_four_samples():
    s = BSplineSmoother((0, 50), 5)  # knots every 10 frames, 8 values
    i1, i2 = s.window([-3.0, 0.0, 9.99, 10.0, 25.0, 49.0, 50.0, 53.0])
    assert list(zip(i1, i2)) == [(0, 4), (0, 4), (0, 4), (1, 5), (2, 6), (4, 8), (4, 8), (4, 8)]
    dense = s.dense_weights(np.linspace(0, 50, 501))
    assert (np.count_nonzero(dense, axis=1) <= 4).all() and (np.count_nonzero(dense, axis=1) >= 3).all()
    # one evaluation at many frames equals one per frame
    values = np.random.default_rng(3).normal(size=(s.num_values, 2))
    t = np.linspace(0, 50, 101)
    assert np.array_equal(s.value(t, values), np.array([s.value([x], values)[0] for x in t]))


def test_twice_continuously_differentiable_at_the_knots():
    s = BSplineSmoother((0, 60), 6)  # knots every 10 frames
    values = np.random.default_rng(1).normal(size=s.num_values)
    for knot in 10.0 * np.arange(1, 6):
        # the cubics of the two intervals meeting at the knot, each from four points inside it
        left = np.polynomial.Polynomial.fit(knot - np.array([1.0, 3.0, 6.0, 9.0]), s.value(knot - np.array([1.0, 3.0, 6.0, 9.0]), values), 3)
        right = np.polynomial.Polynomial.fit(knot + np.array([1.0, 3.0, 6.0, 9.0]), s.value(knot + np.array([1.0, 3.0, 6.0, 9.0]), values), 3)
        for order in range(3):
            assert left.deriv(order)(knot) == pytest.approx(right.deriv(order)(knot), abs=1e-10), (knot, order)
        assert left.deriv(3)(knot) != pytest.approx(right.deriv(3)(knot), abs=1e-6)  # a genuine knot


def least_squares_misfit(smoother, t, f) -> float:
    """Largest |fit - f| of the least-squares fit of samples to f(t)."""
    W = smoother.dense_weights(t)
    coefficients = np.linalg.lstsq(W, f, rcond=None)[0]
    return float(np.abs(W @ coefficients - f).max())


@pytest.mark.parametrize("n", [1, 4, 20])
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_reproduces_cubic_polynomials_exactly(degree, n):
    s = BSplineSmoother((0, 7200), n)
    t = np.linspace(0, 7200, 2001)
    x = t / 7200
    coefficients = np.random.default_rng(degree).normal(size=degree + 1)
    f = np.polynomial.polynomial.polyval(x, coefficients)
    assert least_squares_misfit(s, t, f) < 1e-12 * max(np.abs(f).max(), 1.0)


def test_a_slow_wobble_is_followed_far_better_than_by_the_gaussian_smoother():
    """1.5 cycles of a sine over 20 intervals (the thaumatin-720-drift wobble about the beam)."""
    t = np.linspace(0, 7200, 7201)
    f = np.sin(2 * np.pi * 1.5 * t / 7200)
    bspline = least_squares_misfit(BSplineSmoother((0, 7200), 20), t, f)
    gaussian = least_squares_misfit(GaussianSmoother((0, 7200), 20), t, f)
    assert bspline < 5e-4  # measured 7e-5
    assert gaussian > 5e-3  # measured 1.8e-2
    # nor does the Gaussian smoother follow a straight line
    line = t / 7200
    assert least_squares_misfit(BSplineSmoother((0, 7200), 20), t, line) < 1e-12
    assert least_squares_misfit(GaussianSmoother((0, 7200), 20), t, line) > 1e-4


# ---------------------------------------------------------------------------- the wrapper
def build(cases, kind, **kw):
    width = kw.pop("interval_width_degrees", 9.0)
    expt = cases.make_experiment(detector="groups" if kind == "detector_groups" else "single", **kw)
    static = cases.static_parameterisation(kind, expt)
    return expt, static, cases.wrap(static, expt, width, smoother_class=BSplineSmoother)


@pytest.mark.parametrize("kind", KINDS)
def test_per_frame_derivatives_match_finite_differences(cases, kind):
    _, static, w = build(cases, kind)
    assert isinstance(w.smoother, BSplineSmoother) and w.smoother.num_values == 7
    cases.check_per_frame_derivatives(w, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_columns_between_cover_the_nonzero_derivatives(cases, kind):
    _, _, w = build(cases, kind)
    cases.offset_samples(w)
    frames = frames_for(w)
    w.prepare(frames)
    panels = range(len(w.model)) if w.kind == "detector.d" else [0]
    k_of, _ = w.free_samples()
    for panel in panels:
        d = w.derivatives_at(frames, np.arange(w.num_free), panel)
        for r, f in enumerate(frames):
            nonzero = np.flatnonzero(np.abs(d[r]).reshape(w.num_free, -1).max(axis=1) > 0)
            assert set(nonzero) <= set(w.columns_between(f, f, panel))
        # a block no longer than window_frames crosses at most one knot: five samples
        x0, x1 = w.smoother.x_range
        for lo in np.linspace(x0 - 1, x1, 25):
            cols = w.columns_between(lo, lo + 0.999 * w.window_frames, panel)
            assert np.bincount(k_of[cols]).max() <= 5


def test_window_frames(cases):
    _, _, w = build(cases, "orientation")
    assert w.window_frames == pytest.approx(0.5 * w.smoother.spacing)
    _, _, one = build(cases, "orientation", interval_width_degrees=36.0)  # one interval: every sample acts everywhere
    assert one.smoother.num_values == 4 and one.window_frames == 36.0


@pytest.mark.parametrize("kind", KINDS)
def test_flat_start_reproduces_the_static_model_and_the_middle_is_the_static_view(cases, kind):
    _, static, w = build(cases, kind)
    reference = np.array(static.state())
    frames = frames_for(w)
    w.prepare(frames)
    panels = range(len(w.model)) if w.kind == "detector.d" else [0]
    for panel in panels:
        expect = reference[panel] if w.kind == "detector.d" else reference
        assert np.allclose(w.states_at(frames, panel), expect, rtol=0, atol=1e-12)
    cases.offset_samples(w)
    mid = w.reference_frame
    w.prepare(np.array([mid]))
    at_mid = np.stack([w.states_at([mid], panel)[0] for panel in panels])
    assert np.allclose(w.state(), at_mid if w.kind == "detector.d" else at_mid[0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("kind, n_intervals", [(k, n) for k in ("beam", "orientation", "unit_cell", "detector") for n in (1, 10)] + [("orientation", 3)])
def test_interpolated_states_and_derivatives_match_exact_ones(cases, kind, n_intervals):
    """Many frames per interval: the wrapper's Chebyshev interpolation between knots agrees
    with composing at every frame."""
    expt = cases.make_experiment(n_images=360)
    static = cases.static_parameterisation(kind, expt)
    w = ScanVaryingWrapper(static, 0, expt.scan, BSplineSmoother(expt.scan.array_range, n_intervals))
    cases.offset_samples(w)
    frames = np.arange(0.0, 361.0)
    pieces = w._pieces(frames)
    assert sum(len(frames[p]) for p, nodes in pieces if nodes is not None) > 0.9 * len(frames)
    exact = ScanVaryingWrapper(static, 0, expt.scan, w.smoother, interpolation_nodes=None)
    exact.set_free_values(w.get_free_values())
    for p in (w, exact):
        p.prepare(frames)
    got = w.states_at(frames)
    assert np.abs(got - exact.states_at(frames)).max() <= 1e-11 * np.abs(got).max()
    d = w.derivatives_at(frames, np.arange(w.num_free))
    de = exact.derivatives_at(frames, np.arange(w.num_free))
    axes = (0,) + tuple(range(2, de.ndim))
    assert (np.abs(d - de) <= 1e-10 * np.abs(de).max(axis=axes, keepdims=True)).all()


# ---------------------------------------------------------------------------- in a problem
def problem_for(cases, kind: str):
    expt = cases.make_experiment()
    table = predict_all(expt, 1.6)
    n = len(table["miller_index"])
    obs = Observations.build(
        np.arange(n), np.zeros(n, dtype=int), np.asarray(table["panel"]), np.asarray(table["miller_index"]),
        np.asarray(table["entering"]), np.asarray(table["xyzcal.mm"], dtype=float), np.ones((n, 3)),
    )
    lo, hi = expt.scan.array_range
    obs.frame = np.clip(np.floor(expt.scan.frame_from_angle(obs.xyz_obs[:, 2])), lo, hi - 1)
    wrapper = cases.wrap(cases.static_parameterisation(kind, expt), expt, smoother_class=BSplineSmoother)
    cases.offset_samples(wrapper)
    return RefinementProblem(ExperimentList([expt]), obs, [wrapper], [RotationPredictor()]), wrapper


@pytest.mark.parametrize("kind", ["orientation", "unit_cell", "beam"])
def test_prediction_derivatives_wrt_coefficients(cases, kind):
    problem, wrapper = problem_for(cases, kind)
    x = problem.get_x()
    m = int(problem.obs.active.sum())
    assert m > 300
    analytic = problem.jacobian(x).toarray().reshape(m, 3, -1)
    fd = np.moveaxis(cases.central_difference(lambda y: problem.residual_vector(y).reshape(m, 3), x, 1e-3, richardson=True), 1, 2)
    scale = np.sqrt(np.mean(analytic**2, axis=0, keepdims=True))
    assert (np.abs(fd - analytic) <= 1e-6 * np.maximum(np.abs(analytic), scale) + 1e-9).all()
    # every row has at most four coefficients of a parameter
    nz = np.abs(analytic).max(axis=1) > 0
    k_of, _ = wrapper.free_samples()
    assert max(nz[:, k_of == k].sum(axis=1).max() for k in range(wrapper.num_sets)) == 4


# ---------------------------------------------------------------------------- support and plugin
def test_support_of_the_end_coefficients_and_merging(cases):
    _, _, w = build(cases, "orientation", n_images=720, interval_width_degrees=36.0)  # 20 intervals of 36 frames
    frames = np.repeat(np.arange(720, dtype=float), 20)  # 720 reflections per interval
    support = sample_support(w.smoother, frames)
    assert support.sum() == pytest.approx(len(frames))
    # coefficients 3 .. 19 act only inside the scan: one interval's reflections each; the end
    # ones, centred an interval outside, only about 1/24 of that
    assert support[3:-3] == pytest.approx(np.full(17, 720.0), rel=1e-3)
    assert support[0] == pytest.approx(720 / 24, rel=0.1) and support[-1] == pytest.approx(720 / 24, rel=0.1)
    assert check_sample_support(w, frames, 20).ok
    # with a quarter of the reflections the end coefficients fall short: intervals are merged,
    # and the merged wrapper is a B-spline again
    sparse = frames[::4]
    merged, report = with_supported_intervals(w, sparse, 20)
    assert not report.ok and set(report.weak) == {0, 22}
    assert isinstance(merged.smoother, BSplineSmoother)
    assert merged.smoother.num_intervals == report.suggested_num_intervals < 20
    assert np.all(sample_support(merged.smoother, sparse) >= 20)
    assert not np.all(sample_support(BSplineSmoother(w.smoother.x_range, merged.smoother.num_intervals + 1), sparse) >= 20)


def config_with(**values):
    options = {o.key: o for o in plugin.xrefine_config_options()}
    cfg = Config(options=options, values={k: o.default for k, o in options.items()})
    for k, v in values.items():
        cfg.set(k.replace("__", "."), v)
    return cfg


def test_factory(cases):
    expt = cases.make_experiment(n_images=720, oscillation=(0.0, 0.5))  # 360 degrees
    static = cases.static_parameterisation("unit_cell", expt)
    w = plugin.make_bspline(static, expt, config_with())
    assert isinstance(w, ScanVaryingWrapper) and isinstance(w.smoother, BSplineSmoother)
    assert w.smoother.x_range == (0.0, 720.0) and w.smoother.num_intervals == 10
    assert w.num_free == static.num_free * 13
    assert plugin.make_bspline(static, expt, config_with(smoother__absolute_num_intervals=3)).smoother.num_values == 6
    assert isinstance(plugin.make_gaussian(static, expt, config_with()).smoother, GaussianSmoother)
    assert plugin.xrefine_smoothers()["bspline"] is plugin.make_bspline


def test_scan_varying_refinement_of_the_wedge(wedge, sim):
    truth, predicted, start = wedge  # 15 degrees: one interval, four coefficients per parameter
    table, _ = sim.noisy(truth, predicted, seed=3)
    res = xrefine.refine(start, table, scan_varying="true", smoother="bspline")
    assert res.converged
    assert sum(p["name"].startswith("Crystal1Phi1_sample") for p in res.parameters) == 4
    assert res.experiments[0].crystal.A_at_scan_points.shape == (151, 3, 3)
    rmsd = res.rmsd_by_experiment[0]
    assert rmsd["rmsd_x_px"] < 0.3 and rmsd["rmsd_y_px"] < 0.3
