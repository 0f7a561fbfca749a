"""How reflections are split into outlier-detection jobs (as dials.refine's outlier options)."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from xrefine.outliers import (
    OutlierDetector,
    analyser_block_size,
    auto_block_widths,
    detect_outliers,
    resolve_block_widths,
    split_jobs,
)


class _Obs(SimpleNamespace):
    def __len__(self):
        return len(self.panel)


def _job():
    rng = np.random.default_rng(0)
    n = 3000
    obs = _Obs(experiment=rng.integers(0, 2, n), panel=rng.integers(0, 3, n),
                          xyz_obs=np.column_stack([rng.normal(size=n), rng.normal(size=n),
                                                   rng.uniform(0, np.radians(36), n)]))
    scan = SimpleNamespace(oscillation_range_rad=(0.0, np.radians(36)))
    experiments = [SimpleNamespace(is_still=False, scan=scan), SimpleNamespace(is_still=False, scan=scan)]
    return obs, experiments


def _keys(obs, jobs):
    return [(set(obs.experiment[j]), set(obs.panel[j]), np.degrees(obs.xyz_obs[j, 2]).min() // 18) for j in jobs]


@pytest.mark.parametrize("separate_experiments, separate_panels, n_jobs", [
    (True, False, 2 * 2), (True, True, 2 * 3 * 2), (False, False, 2), (False, True, 3 * 2)])
def test_jobs(separate_experiments, separate_panels, n_jobs):
    obs, experiments = _job()
    candidates = np.ones(len(obs.panel), dtype=bool)
    candidates[::10] = False
    jobs = split_jobs(obs, candidates, experiments, 18.0, separate_experiments, separate_panels)
    assert len(jobs) == n_jobs
    every = np.sort(np.concatenate(jobs))
    np.testing.assert_array_equal(every, np.flatnonzero(candidates))  # each candidate exactly once
    for experiments_in, panels_in, _ in _keys(obs, jobs):
        assert len(experiments_in) == (1 if separate_experiments else 2)
        assert len(panels_in) == (1 if separate_panels else 3)


class _Shifted(OutlierDetector):
    """Flags rows more than 3 from the job's median in X: a detector that sees per-job offsets."""

    def detect(self, residuals):
        return np.abs(residuals[:, 0] - np.median(residuals[:, 0])) > 3


def test_separate_panels_lets_each_panel_have_its_own_offset():
    """A misplaced panel shifts all its residuals; pooled with the others its reflections look
    like outliers, detected per panel they do not."""
    obs, experiments = _job()
    residuals = obs.xyz_obs.copy()
    residuals[:, 0] += np.where(obs.panel == 2, 5.0, 0.0)
    candidates = np.ones(len(obs.panel), dtype=bool)
    pooled = detect_outliers(_Shifted(), obs, residuals, candidates, experiments, 18.0, 20)
    per_panel = detect_outliers(_Shifted(), obs, residuals, candidates, experiments, 18.0, 20, separate_panels=True)
    assert pooled[obs.panel == 2].mean() > 0.5
    assert per_panel[obs.panel == 2].mean() < 0.02


# --- block edges and widths as dials.refine chooses them -------------------------------------

def _scan_job(phi_deg, panel=None, experiment=None, scan_deg=(0.0, 90.0), still=False, n_experiments=1):
    """Observations at the given phi (degrees) in a scan of `scan_deg`."""
    phi = np.radians(np.asarray(phi_deg, dtype=float))
    n = len(phi)
    obs = _Obs(experiment=np.zeros(n, dtype=int) if experiment is None else np.asarray(experiment),
               panel=np.zeros(n, dtype=int) if panel is None else np.asarray(panel),
               xyz_obs=np.column_stack([np.zeros(n), np.zeros(n), phi]))
    scan = SimpleNamespace(oscillation_range_rad=tuple(np.radians(scan_deg)))
    return obs, [SimpleNamespace(is_still=still, scan=scan) for _ in range(n_experiments)]


def _phi_ranges(obs, jobs):
    return [tuple(np.degrees([obs.xyz_obs[j, 2].min(), obs.xyz_obs[j, 2].max()])) for j in jobs]


def test_blocks_span_the_observed_range_not_the_scan():
    """Observations over 10-50 degrees of a 0-90 degree scan with width 18: round(40 / 18) = 2
    blocks split at 30 degrees (the scan's range would give 5).  The largest phi is in the last
    block and a reflection on the edge goes to the upper block."""
    lo, hi = np.radians(10.0), np.radians(50.0)
    edge = lo + (hi - lo) / 2  # the boundary as computed from the observed range
    phi = np.concatenate([np.linspace(10.0, 50.0, 401), np.degrees([edge])])
    obs, experiments = _scan_job(phi)
    obs.xyz_obs[-1, 2] = edge  # exactly on the boundary (no round trip through degrees)
    jobs = split_jobs(obs, np.ones(len(phi), dtype=bool), experiments, 18.0)
    assert len(jobs) == 2
    below, above = jobs
    assert obs.xyz_obs[below, 2].max() < edge <= obs.xyz_obs[above, 2].min()
    assert len(phi) - 1 in above  # the boundary value
    assert int(np.argmax(obs.xyz_obs[:, 2])) in above  # the largest phi (50 degrees)
    assert np.isclose(np.degrees(obs.xyz_obs[above, 2].min()), 30.0)
    np.testing.assert_array_equal(np.sort(np.concatenate(jobs)), np.arange(len(phi)))


@pytest.mark.parametrize("width, n_blocks", [(30.0, 3), (10.0, 9), (100.0, 1), (0.0, 1), (None, 1)])
def test_an_explicit_width_is_used(width, n_blocks):
    obs, experiments = _scan_job(np.linspace(0.0, 90.0, 901))
    jobs = split_jobs(obs, np.ones(901, dtype=bool), experiments, width)
    assert len(jobs) == n_blocks
    starts = [r[0] for r in _phi_ranges(obs, jobs)]
    np.testing.assert_allclose(starts, np.arange(n_blocks) * 90.0 / n_blocks, atol=0.1)


def test_each_panel_job_uses_its_own_observed_range():
    """Panel 0 sees 0-36 degrees, panel 1 40-76: each is cut into two blocks at its own middle
    (18 and 58 degrees)."""
    phi = np.concatenate([np.linspace(0.0, 36.0, 361), np.linspace(40.0, 76.0, 361)])
    panel = np.repeat([0, 1], 361)
    obs, experiments = _scan_job(phi, panel=panel)
    jobs = split_jobs(obs, np.ones(len(phi), dtype=bool), experiments, 18.0, separate_panels=True)
    ranges = sorted(_phi_ranges(obs, jobs))
    np.testing.assert_allclose(ranges, [(0, 17.9), (18, 36), (40, 57.9), (58, 76)], atol=1e-6)
    assert all(len(set(obs.panel[j])) == 1 for j in jobs)


def test_stills_and_single_phi_jobs_are_not_split():
    obs, experiments = _scan_job(np.linspace(0.0, 90.0, 91), still=True)
    assert len(split_jobs(obs, np.ones(91, dtype=bool), experiments, 18.0)) == 1
    obs, experiments = _scan_job(np.full(50, 12.0))
    assert len(split_jobs(obs, np.ones(50, dtype=bool), experiments, 1.0)) == 1


def test_per_experiment_widths_and_pooled_experiments():
    """A list gives each experiment its width (None: not split); pooled experiments take the
    largest width of the list."""
    phi = np.tile(np.linspace(0.0, 90.0, 901), 2)
    obs, experiments = _scan_job(phi, experiment=np.repeat([0, 1], 901), n_experiments=2)
    every = np.ones(len(phi), dtype=bool)
    jobs = split_jobs(obs, every, experiments, [30.0, None])
    assert sorted(len(j) for j in jobs) == [300, 300, 301, 901]
    assert [set(obs.experiment[j]) for j in jobs].count({1}) == 1
    assert len(split_jobs(obs, every, experiments, [18.0, 45.0], separate_experiments=False)) == 2
    assert len(split_jobs(obs, every, experiments, [None, None], separate_experiments=False)) == 1


def _naive_block_size(phi_deg):
    """The centroid-analysis rule, one block at a time with boolean masks (reference)."""
    lo, hi = min(phi_deg), max(phi_deg)
    width, target, previous = hi - lo, 1.0, 0
    while True:
        n = int(width // target)
        n = max(n - 1 if n == previous else n, 1)
        size = width / n
        counts = []
        for i in range(n):
            start = lo + i * size
            inside = (phi_deg >= start) & ((phi_deg < start + size) if i < n - 1 else (phi_deg <= hi))
            counts.append(int(inside.sum()))
        if n == 1 or min(counts) >= 50:
            return size
        target *= 2 if min(counts) < 5 else 50 / min(counts)
        previous = n


def test_auto_width_dense_data_is_18_degrees():
    """100 reflections per degree: 1-degree blocks already hold 100 each, so the block size is
    1 degree and the width max(18, 1) = 18."""
    obs, experiments = _scan_job(np.linspace(0.0, 90.0, 9001))
    assert analyser_block_size(np.degrees(obs.xyz_obs[:, 2])) == pytest.approx(1.0)
    assert auto_block_widths(obs, np.ones(9001, dtype=bool), experiments) == [18.0]


def test_auto_width_sparse_data_is_the_analysers_block_size():
    """Two reflections per degree (at 0.25, 0.75, ..., 89.75): 89 blocks hold 1-2 each (< 5:
    target 2), 44 blocks 4 each (< 5: target 4), 22 blocks 8-9 each (target x 50/8 or 50/9),
    then 4 blocks of about 45 (< 50) or directly 3 blocks of about 60 (>= 50): 89.5 / 3 degrees.
    The scan is then cut into 3 blocks."""
    phi = 0.25 + 0.5 * np.arange(180)
    obs, experiments = _scan_job(phi)
    every = np.ones(len(phi), dtype=bool)
    assert analyser_block_size(phi) == pytest.approx(89.5 / 3)
    widths = auto_block_widths(obs, every, experiments)
    assert widths == [pytest.approx(89.5 / 3)] and widths[0] > 18
    assert resolve_block_widths(None, obs, every, experiments) == widths
    assert len(split_jobs(obs, every, experiments, widths)) == 3
    # only the rows given count: the first half alone (44.75 degrees, 90 reflections) is too
    # sparse for two blocks of 50
    half = phi < 45
    assert auto_block_widths(obs, half, experiments) == [pytest.approx(44.5)]


def test_analyser_counts_a_reflection_on_a_block_edge_in_the_upper_block():
    """One reflection at 0, then 45 at i + 0.5 and 5 at i + 1 for i = 0..3 (range 0-4).  Four
    1-degree blocks hold 46, 50, 50, 50 (the 5 at each integer belong to the block above), so the
    target grows by 50/46 to 1.087: three blocks of 4/3 degree hold 51, 95, 55 and the search
    stops there.  Counting the edge in the lower block would give 51 and stop at 1 degree."""
    phi = np.concatenate([[0.0]] + [np.repeat([i + 0.5, i + 1.0], [45, 5]) for i in range(4)])
    assert analyser_block_size(phi) == 4 / 3


def test_auto_width_single_block_and_empty_experiments():
    """Everything within less than one block: one block of the whole range, width 18; an
    experiment without rows or a still gets no width (not split)."""
    obs, experiments = _scan_job(np.linspace(10.0, 10.5, 300), experiment=np.zeros(300, dtype=int), n_experiments=2)
    assert analyser_block_size(np.degrees(obs.xyz_obs[:, 2])) == pytest.approx(0.5)
    assert auto_block_widths(obs, np.ones(300, dtype=bool), experiments) == [18.0, None]
    assert analyser_block_size(np.zeros(0)) is None
    obs, experiments = _scan_job(np.linspace(0.0, 90.0, 91), still=True)
    assert auto_block_widths(obs, np.ones(91, dtype=bool), experiments) == [None]


@pytest.mark.parametrize("seed", range(40))
def test_analyser_matches_the_rule_on_random_scans(seed):
    """From 0.01 to 1000 reflections per degree, some piled on integer degrees."""
    rng = np.random.default_rng(seed)
    width = rng.uniform(1, 360)
    n = max(2, int(width * 10 ** rng.uniform(-2, 3)))
    phi_deg = np.degrees(rng.uniform(0, np.radians(width), n))
    phi_deg[: n // 10] = np.round(phi_deg[: n // 10])  # values on likely block edges
    assert analyser_block_size(phi_deg) == _naive_block_size(phi_deg)


def test_block_width_option_defaults_to_auto():
    from xrefine.config import build_config

    assert build_config(None, [], {})["outlier.block_width"] is None
    assert build_config(None, ["outlier.block_width=Auto"], {})["outlier.block_width"] is None
    assert build_config(None, ["outlier.block_width=25"], {})["outlier.block_width"] == 25.0
    assert resolve_block_widths(25.0, None, None, None) == 25.0


def test_refine_resolves_auto_widths_once_on_the_starting_model(sim, monkeypatch):
    """A sparse 90-degree scan (about 200 reflections): the default width is the analyser's
    block size (> 18) from the rows with a prediction on the starting model, and the re-detection
    on the converged model reuses the same widths."""
    import xrefine
    from xrefine import outliers

    truth = sim.small_truth(n_images=900, d_min=5.0)
    table, _ = sim.noisy(truth, sim.predicted_for(truth), seed=3)
    table = table.select(np.arange(table.nrows) % 40 == 0)
    calls = []
    real = outliers.split_jobs

    def recording(obs, candidates, experiments, block_width_deg, *args):
        jobs = real(obs, candidates, experiments, block_width_deg, *args)
        calls.append((block_width_deg, obs.xyz_obs[candidates, 2].copy(), len(jobs)))
        return jobs

    resolved = []
    real_resolve = outliers.resolve_block_widths

    def counting(*args):
        resolved.append(real_resolve(*args))
        return resolved[-1]

    monkeypatch.setattr(outliers, "split_jobs", recording)
    monkeypatch.setattr(sys.modules["xrefine.refine"], "resolve_block_widths", counting)
    res = xrefine.refine(sim.start_for(truth), table, scan_varying="false")
    assert res.outliers["cycles"]  # detected again on the converged model
    assert len(calls) >= 2 and len(resolved) == 1
    widths, phi_start, n_jobs = calls[0]
    assert widths == [max(18.0, analyser_block_size(phi_start * (180.0 / np.pi)))] and widths[0] > 18
    assert n_jobs == max(1, round(np.degrees(np.ptp(phi_start)) / widths[0])) > 1
    assert all(later is widths for later, _, _ in calls[1:])
