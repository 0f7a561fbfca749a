"""How reflections are split into outlier-detection jobs (as dials.refine's outlier options)."""

from types import SimpleNamespace

import numpy as np
import pytest

from xrefine.outliers import OutlierDetector, detect_outliers, split_jobs


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
