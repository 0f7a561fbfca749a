"""ScanVaryingWrapper around every kind of static parameterisation: states, finite-difference
checks of every per-frame derivative (MATH.md 10.1), columns and windows, the static view."""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.parameters import ScanVaryingParameterisation
from smoother_cases import frames_for

KINDS = ("beam", "orientation", "unit_cell", "goniometer", "detector", "detector_groups")


def build(cases, kind, **kw):
    expt = cases.make_experiment(detector="groups" if kind == "detector_groups" else "single", **kw)
    static = cases.static_parameterisation(kind, expt)
    return expt, static, cases.wrap(static, expt)


@pytest.mark.parametrize("kind", KINDS)
def test_per_frame_derivatives_match_finite_differences(cases, kind):
    _, static, w = build(cases, kind)
    assert isinstance(w, ScanVaryingParameterisation) and w.kind == static.kind
    cases.check_per_frame_derivatives(w, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_columns_between_cover_the_nonzero_derivatives(cases, kind):
    _, _, w = build(cases, kind)
    cases.offset_samples(w)
    frames = frames_for(w)
    w.prepare(frames)
    panels = range(len(w.model)) if w.kind == "detector.d" else [0]
    for panel in panels:
        d = w.derivatives_at(frames, np.arange(w.num_free), panel)
        for r, f in enumerate(frames):
            nonzero = np.flatnonzero(np.abs(d[r]).reshape(w.num_free, -1).max(axis=1) > 0)
            assert set(nonzero) <= set(w.columns_between(f, f, panel))
        # a block no longer than window_frames touches at most four samples per parameter
        x0, x1 = w.smoother.x_range
        for lo in np.linspace(x0 - 1, x1, 25):
            cols = w.columns_between(lo, lo + 0.999 * w.window_frames, panel)
            k_of, _ = w.free_samples()
            per_param = np.bincount(k_of[cols]) if len(cols) else np.zeros(1)
            assert per_param.max() <= 4
        # a detector block only gets the columns of its own group
        if w.kind == "detector.d":
            assert set(w.columns_between(x0, x1, panel)) == set(w.panel_columns(panel))


@pytest.mark.parametrize("kind", KINDS)
def test_flat_start_reproduces_the_static_model(cases, kind):
    _, static, w = build(cases, kind)
    reference = np.array(static.state())
    values = static.get_free_values()
    assert w.num_free == static.num_free * w.smoother.num_values
    frames = frames_for(w)
    w.prepare(frames)
    panels = range(len(w.model)) if w.kind == "detector.d" else [0]
    for panel in panels:
        expect = reference[panel] if w.kind == "detector.d" else reference
        assert np.allclose(w.states_at(frames, panel), expect, rtol=0, atol=1e-12)
    assert np.allclose(static.get_free_values(), values)


@pytest.mark.parametrize("kind", KINDS)
def test_static_view_is_the_middle_of_the_scan(cases, kind):
    _, static, w = build(cases, kind)
    cases.offset_samples(w)
    mid = w.reference_frame
    assert mid == pytest.approx(0.5 * sum(w.scan.array_range))
    w.prepare(np.array([mid]))
    panels = range(len(w.model)) if w.kind == "detector.d" else [0]
    at_mid = np.stack([w.states_at([mid], panel)[0] for panel in panels])
    assert np.allclose(w.state(), at_mid if w.kind == "detector.d" else at_mid[0], rtol=0, atol=1e-13)
    # the model itself holds that state (a detector's panels, a crystal's U or B, ...)
    assert np.allclose(static.state(), w.state(), rtol=0, atol=1e-13)
    analytic = w.state_derivatives()
    assert analytic.shape[0] == w.num_free
    if w.kind == "detector.d":
        for panel in range(len(w.model)):
            assert np.allclose(analytic[:, panel], w.derivatives_at([mid], np.arange(w.num_free), panel)[0], rtol=0, atol=1e-15)
    else:
        assert np.allclose(analytic, w.derivatives_at([mid], np.arange(w.num_free))[0], rtol=0, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_prepare_leaves_static_values_and_model_at_the_reference(cases, kind):
    _, static, w = build(cases, kind)
    cases.offset_samples(w)
    values, state = static.get_free_values(), np.array(static.state())
    w.prepare(frames_for(w))
    w.derivatives_at(frames_for(w), np.arange(w.num_free))
    w.scan_point_states()
    assert np.array_equal(static.get_free_values(), values)
    assert np.array_equal(np.array(static.state()), state)


def test_scan_point_states(cases):
    expt, _, w = build(cases, "orientation")
    cases.offset_samples(w)
    sp = w.scan_point_states()
    x0, x1 = expt.scan.array_range
    assert sp.shape == (x1 - x0 + 1, 3, 3)
    t = np.arange(x0, x1 + 1, dtype=float)
    w.prepare(t)
    assert np.array_equal(sp, w.states_at(t))
    assert np.allclose(sp @ np.transpose(sp, (0, 2, 1)), np.eye(3), atol=1e-12)


def test_names_units_fixing_and_reports(cases):
    _, _, w = build(cases, "orientation")
    nv = w.smoother.num_values
    assert [p.name for p in w.parameters[: nv + 1]] == [f"Phi1_sample{i}" for i in range(nv)] + ["Phi2_sample0"]
    assert {p.unit for p in w.parameters} == {"mrad"}
    w.fix(["Phi2"])
    assert [p.fixed for p in w.parameters] == [False] * nv + [True] * nv + [False] * nv
    w.fix(["Phi3_sample0"])
    assert w.num_free == 2 * nv - 1
    assert w.sample_values().shape == (3, nv)
    assert np.isnan(w.sample_esds()).all()
    assert np.allclose(w.sample_positions(), w.smoother.sample_frames())
    # derivatives and columns follow the free columns after fixing
    frames = np.linspace(*w.smoother.x_range, 7)
    w.prepare(frames)
    assert w.derivatives_at(frames, np.arange(w.num_free)).shape == (7, w.num_free, 3, 3)
    assert w.columns_between(*w.smoother.x_range).max() == w.num_free - 1


def test_fixed_static_parameters_stay_static(cases):
    expt = cases.make_experiment()
    static = cases.static_parameterisation("beam", expt)
    static.fix(["Mu1", "nu"])
    w = cases.wrap(static, expt)
    assert [p.name for p in w.parameters][:: w.smoother.num_values] == ["Mu2_sample0"]
    assert w.set_names == ["Mu2"]


def test_unprepared_frames_are_refused(cases):
    _, _, w = build(cases, "orientation")
    with pytest.raises(RuntimeError, match="prepare"):
        w.states_at([1.0])
    w.prepare(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="not given to prepare"):
        w.states_at([1.5])
    w.set_free_values(w.get_free_values())
    with pytest.raises(RuntimeError, match="prepare"):
        w.states_at([1.0])


def test_state_is_read_without_composing_only_when_it_follows_the_values(cases):
    for kind, direct in [("orientation", True), ("unit_cell", True), ("beam", True), ("goniometer", True), ("detector", False)]:
        _, _, w = build(cases, kind)
        assert w._direct is direct, kind


def interpolated_fraction(wrapper, frames) -> float:
    pieces = wrapper._pieces(frames)
    return sum(len(frames[piece]) for piece, nodes in pieces if nodes is not None) / len(frames)


@pytest.mark.parametrize("kind, n_intervals", [(k, n) for k in KINDS for n in (1, 10)] + [("orientation", 2), ("orientation", 3)])
def test_interpolated_states_and_derivatives_match_exact_ones(cases, kind, n_intervals):
    """Many frames per interval: the static parameterisation is composed at Chebyshev nodes
    only, and the interpolated states and derivatives agree with composing at every frame."""
    expt = cases.make_experiment(n_images=360, detector="groups" if kind == "detector_groups" else "single")
    static = cases.static_parameterisation(kind, expt)
    w = cases.ScanVaryingWrapper(static, 0, expt.scan, cases.GaussianSmoother(expt.scan.array_range, n_intervals))
    cases.offset_samples(w)
    frames = np.arange(0.0, 361.0)
    assert interpolated_fraction(w, frames) > 0.9
    exact = cases.ScanVaryingWrapper(static, 0, expt.scan, w.smoother, interpolation_nodes=None)
    exact.set_free_values(w.get_free_values())
    panels = range(len(w.model)) if w.kind == "detector.d" else [0]
    for p in (w, exact):
        p.prepare(frames)
    for panel in panels:
        got = w.states_at(frames, panel)
        assert np.abs(got - exact.states_at(frames, panel)).max() <= 1e-11 * np.abs(got).max()
        d = w.derivatives_at(frames, np.arange(w.num_free), panel)
        de = exact.derivatives_at(frames, np.arange(w.num_free), panel)
        scale = np.abs(de).max(axis=(0, 2, 3), keepdims=True) if de.ndim == 4 else np.abs(de).max(axis=(0, 2), keepdims=True)
        assert (np.abs(d - de) <= 1e-10 * scale).all()


def test_interpolated_derivatives_match_finite_differences(cases):
    expt = cases.make_experiment(n_images=360)
    static = cases.static_parameterisation("orientation", expt)
    w = cases.wrap(static, expt, interval_width_degrees=120.0)  # 3 intervals of 120 frames
    cases.offset_samples(w)
    frames = np.arange(-3.0, 364.0)
    assert interpolated_fraction(w, frames) > 0.9

    def states(x):
        w.set_free_values(x)
        w.prepare(frames)
        return w.states_at(frames)

    fd = cases.central_difference(states, w.get_free_values(), 1e-3)
    w.prepare(frames)
    cases.assert_columns_close(fd, w.derivatives_at(frames, np.arange(w.num_free)), rtol=1e-6, atol=1e-12, what="orientation")
