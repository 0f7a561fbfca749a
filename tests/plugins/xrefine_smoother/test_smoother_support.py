"""Degenerate scans: too few reflections per interval, blank stretches, a scan shorter than one
interval."""

from __future__ import annotations

import numpy as np
import pytest

from xrefine.errors import InputError

from xrefine_smoother import (
    GaussianSmoother,
    ScanVaryingWrapper,
    check_sample_support,
    sample_support,
    supported_num_intervals,
    with_supported_intervals,
)


def orientation_wrapper(cases, n_images=720, oscillation=(0.0, 1.0), width=36.0):
    expt = cases.make_experiment(n_images=n_images, oscillation=oscillation)
    return cases.wrap(cases.static_parameterisation("orientation", expt), expt, interval_width_degrees=width)


def frames_uniform(n_frames, per_frame, lo=0):
    return np.repeat(np.arange(lo, lo + n_frames, dtype=float), per_frame)


def test_support_counts_reflections_by_weight():
    s = GaussianSmoother((0, 720), 20)
    frames = frames_uniform(720, 5)
    support = sample_support(s, frames)
    assert support.sum() == pytest.approx(len(frames))
    # inner samples see one interval of reflections (36 frames x 5); the outer ones, half an
    # interval outside the scan, only about a sixth of that
    assert support[2:-2] == pytest.approx(np.full(18, 180.0), rel=1e-3)
    assert 0.1 * 180 < support[0] < 0.2 * 180 and 0.1 * 180 < support[-1] < 0.2 * 180
    assert np.array_equal(sample_support(s, np.concatenate([frames, [np.nan]])), support)


def test_well_covered_scan_is_fine(cases):
    w = orientation_wrapper(cases)
    report = check_sample_support(w, frames_uniform(720, 5), 20)
    assert report.ok and report.message == "" and report.suggested_num_intervals == 20
    same, _ = with_supported_intervals(w, frames_uniform(720, 5), 20)
    assert same is w


def test_blank_stretch_merges_intervals(cases):
    w = orientation_wrapper(cases)
    frames = frames_uniform(720, 5)
    frames = frames[(frames < 250) | (frames >= 400)]  # 150 degrees without reflections
    report = check_sample_support(w, frames, 20)
    assert not report.ok
    assert set(report.weak) <= set(range(7, 13)) and len(report.weak) >= 2
    n = report.suggested_num_intervals
    assert 1 <= n < 20
    assert np.all(sample_support(GaussianSmoother(w.smoother.x_range, n), frames) >= 20)
    assert not np.all(sample_support(GaussianSmoother(w.smoother.x_range, n + 1), frames) >= 20)
    assert "Crystal1 (crystal.U)" in report.message
    assert f"smoother.absolute_num_intervals={n}" in report.message
    assert "crystal.orientation.force_static=true" in report.message
    merged, _ = with_supported_intervals(w, frames, 20)
    assert isinstance(merged, ScanVaryingWrapper) and merged.smoother.num_intervals == n
    assert merged.static is w.static and merged.scan is w.scan
    assert check_sample_support(merged, frames, 20).ok


def test_too_few_reflections_per_interval(cases):
    w = orientation_wrapper(cases)
    frames = np.linspace(0, 719, 150)  # 150 reflections for 22 samples
    n = supported_num_intervals(w.smoother.x_range, 20, frames, 20)
    assert n is not None and n < 7
    assert check_sample_support(w, frames, 20).suggested_num_intervals == n


def test_not_even_one_interval(cases):
    w = orientation_wrapper(cases)
    frames = np.linspace(0, 719, 25)
    report = check_sample_support(w, frames, 20)
    assert report.suggested_num_intervals is None
    with pytest.raises(InputError, match=r"Crystal1 \(crystal.U\).*crystal.orientation.force_static=true"):
        with_supported_intervals(w, frames, 20)


def test_scan_shorter_than_one_interval(cases):
    expt = cases.make_experiment(n_images=50, oscillation=(0.0, 0.1))  # 5 degrees
    w = cases.wrap(cases.static_parameterisation("orientation", expt), expt, interval_width_degrees=36.0)
    assert w.smoother.num_intervals == 1 and w.smoother.num_values == 2
    assert w.num_free == 6
    assert w.window_frames == 50
    cases.offset_samples(w)
    frames = np.arange(0.0, 51.0)
    w.prepare(frames)
    d = w.derivatives_at(frames, np.arange(w.num_free))
    assert np.all(np.abs(d).reshape(len(frames), 6, -1).max(axis=2) > 0), "both samples act everywhere"
    assert check_sample_support(w, frames_uniform(50, 2), 20).ok
