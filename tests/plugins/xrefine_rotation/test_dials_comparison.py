"""Agreement with DIALS on a real data set (lysozyme, Eiger single panel with parallax
correction): DIALS's refined models and the predictions dials.refine wrote with them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrefine.io import read_experiments, read_reflections
from xrefine.predictor import ExperimentState
from xrefine.reflections import Flags

from xrefine_rotation import RotationPredictor, predict_all

DATA = Path(__file__).resolve().parents[2] / "data" / "lysozyme-eiger"


@pytest.fixture(scope="module")
def dials():
    experiments = read_experiments(DATA / "refined.expt")
    reflections = read_reflections(DATA / "refined.refl")
    return experiments[0], reflections


def test_predict_reproduces_dials_xyzcal_mm(dials):
    experiment, refl = dials
    used = refl.get_flags(Flags.used_in_refinement)
    assert used.sum() > 10000
    block = RotationPredictor().predict(
        ExperimentState.from_experiment(experiment, 0),
        refl["miller_index"][used],
        refl["entering"][used],
        refl["xyzobs.mm.value"][used, 2],
    )
    assert block.valid.all()
    diff = np.abs(block.xyz - refl["xyzcal.mm"][used])
    assert diff[:, :2].max() <= 1e-6  # mm
    assert diff[:, 2].max() <= 1e-8  # rad
    np.testing.assert_allclose(block.s1, refl["s1"][used], rtol=0, atol=1e-12)


def _keys(hkl, entering) -> np.ndarray:
    hkl = np.asarray(hkl, dtype=np.int64) + 1024
    return ((hkl[:, 0] * 2048 + hkl[:, 1]) * 2048 + hkl[:, 2]) * 2 + np.asarray(entering, dtype=np.int64)


def test_predict_all_reproduces_dials_xyzcal_px(dials):
    experiment, refl = dials
    hkl = refl["miller_index"]
    d = 1.0 / np.linalg.norm(hkl @ experiment.crystal.A.T, axis=1)
    table = predict_all(experiment, d.min() * (1 - 1e-9))

    z0, z1 = experiment.scan.array_range
    inside = (refl["xyzcal.px"][:, 2] >= z0) & (refl["xyzcal.px"][:, 2] <= z1)
    ours = _keys(table["miller_index"], table["entering"])
    assert len(np.unique(ours)) == len(ours)  # a 60-degree scan meets each solution once
    order = np.argsort(ours)
    theirs = _keys(hkl, refl["entering"])
    at = np.minimum(np.searchsorted(ours[order], theirs), len(ours) - 1)
    matched = ours[order][at] == theirs
    assert (matched & inside).sum() >= 0.99 * inside.sum()

    ours_px = table["xyzcal.px"][order[at[matched]]]
    diff = np.abs(ours_px - refl["xyzcal.px"][matched])
    assert diff[:, :2].max() <= 0.01  # pixels, parallax-corrected
    assert diff[:, 2].max() <= 0.001  # frames
