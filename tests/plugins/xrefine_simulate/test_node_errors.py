"""Calibration errors of detector nodes: displaced_frame is the rigid motion it documents."""

import numpy as np
import pytest
from xrefine.geometry import rotation_matrix
from xrefine_simulate.node_errors import ERROR_COLUMNS, displaced_frame, draw_errors


def test_draw_errors_is_seeded_and_of_the_stated_size():
    a = draw_errors(np.random.default_rng(3), 2000, 0.03, 0.02, 0.3)
    b = draw_errors(np.random.default_rng(3), 2000, 0.03, 0.02, 0.3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2000, len(ERROR_COLUMNS))
    np.testing.assert_allclose(a.std(axis=0), [0.03, 0.03, 0.02, 0.3, 0.3, 0.3], rtol=0.08)


def test_displaced_frame_in_the_parent_axes():
    """For a node whose frame is the parent's axes, the error is Rz Ry Rx about the centre
    plus a shift, as tests/data/p6m-modules-small's generator applies it."""
    origin, centre = np.array([10.0, 20.0, 0.0]), np.array([52.0, 36.8, 0.0])
    error = np.array([0.03, -0.02, 0.015, 0.4, -0.2, 0.3])
    fast, slow, moved = displaced_frame([1, 0, 0], [0, 1, 0], origin, centre, error)
    R = rotation_matrix([0, 0, 1], 4e-4) @ rotation_matrix([0, 1, 0], 3e-4) @ rotation_matrix([1, 0, 0], -2e-4)
    np.testing.assert_allclose(fast, R[:, 0], atol=1e-16)
    np.testing.assert_allclose(slow, R[:, 1], atol=1e-16)
    np.testing.assert_allclose(moved, centre + R @ (origin - centre) + error[:3], atol=1e-13)


@pytest.mark.parametrize("turn", [0.0, 0.5 * np.pi, 2.0])
def test_displaced_frame_follows_the_node_axes(turn):
    """The same error on a turned node is the same motion, turned."""
    T = rotation_matrix([0.2, -0.1, 1.0], turn)
    error = np.array([0.03, -0.02, 0.015, 0.4, -0.2, 0.3])
    base = displaced_frame([1, 0, 0], [0, 1, 0], [1.0, 2.0, 0.0], [5.0, 3.0, 0.0], error)
    turned = displaced_frame(T[:, 0], T[:, 1], T @ [1.0, 2.0, 0.0], T @ [5.0, 3.0, 0.0], error)
    for a, b in zip(base, turned):
        np.testing.assert_allclose(b, T @ a, atol=1e-13)
