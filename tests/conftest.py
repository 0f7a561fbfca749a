"""Shared test helpers: small simulated scenarios with known truth."""

import copy

import numpy as np
import pytest

from xrefine.simulation import observe, perturb


def small_truth(seed=0, n_images=150, d_min=2.7, outlier_fraction=0.0):
    """A 15-degree thaumatin wedge (about 9 000 reflections) from the built-in preset."""
    from xrefine_simulate.presets import thaumatin_sweep

    truth = thaumatin_sweep(seed)
    scan = truth.experiments[0].scan
    scan.image_range = (1, n_images)
    scan.properties = {k: v[:n_images] for k, v in scan.properties.items()}
    truth.d_min = d_min
    truth.outlier_fraction = outlier_fraction
    return truth


def predicted_for(truth):
    """What the simulator observes: the predictions without systematic absences."""
    from xrefine.predict import predict_experiments
    from xrefine.refine import build_predictors
    from xrefine.simulation import drop_systematic_absences

    predicted = predict_experiments(truth.experiments, build_predictors(truth.experiments), truth.d_min)
    return drop_systematic_absences(truth.experiments, predicted)


def start_for(truth, seed=0):
    start = copy.deepcopy(truth.experiments)
    perturb(start, truth, np.random.default_rng([seed, 2]))
    return start


def noisy(truth, predicted, seed, noise=1.0, outlier_fraction=0.0):
    """Observations with `noise` x the preset's sigmas (0: exact centroids, weights kept)."""
    t = copy.copy(truth)
    t.outlier_fraction = outlier_fraction
    return observe(t, predicted, np.random.default_rng([seed, 1]), noise_scale=noise)


@pytest.fixture(scope="session")
def wedge():
    """(truth, predicted reflections, start experiments) of the small wedge, built once."""
    truth = small_truth()
    return truth, predicted_for(truth), start_for(truth)


class _Helpers:
    small_truth = staticmethod(small_truth)
    predicted_for = staticmethod(predicted_for)
    start_for = staticmethod(start_for)
    noisy = staticmethod(noisy)


@pytest.fixture(scope="session")
def sim():
    """The simulation helpers of this module, for tests in any folder."""
    return _Helpers
