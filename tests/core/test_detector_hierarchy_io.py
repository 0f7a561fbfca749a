"""A detector hierarchy several levels deep, written by xrefine, reads back identically; panels
keep their local frames when groups move."""

import json

import numpy as np

from xrefine.io import read_experiments, write_experiments
from xrefine.models import Beam, Detector, DetectorGroup, Experiment, ExperimentList, Panel
from xrefine.geometry import rotation_matrix


def four_level_detector():
    """detector -> 4 quadrants -> 2 sensors -> 2 panels (16 panels), every frame slightly
    rotated and offset so nothing is special."""
    rng = np.random.default_rng(7)
    panels, quads = [], []

    def frame():
        R = rotation_matrix(rng.normal(size=3), rng.normal(0, 0.01))
        return R @ [1.0, 0, 0], R @ [0, 1.0, 0], rng.normal(0, 5.0, 3)

    for q in range(4):
        sensors = []
        for s in range(2):
            kids = []
            for a in range(2):
                f, sl, o = frame()
                panels.append(Panel(name=f"q{q}s{s}a{a}", local_fast=f, local_slow=sl, local_origin=o,
                                    image_size=(194, 185), pixel_size=(0.11, 0.11), extra={"type": "SENSOR_PAD"}))
                kids.append(len(panels) - 1)
            f, sl, o = frame()
            sensors.append(DetectorGroup(name=f"q{q}s{s}", local_fast=f, local_slow=sl, local_origin=o, children=kids))
        f, sl, o = frame()
        quads.append(DetectorGroup(name=f"q{q}", local_fast=f, local_slow=sl, local_origin=o + [0, 0, 0], children=sensors))
    root = DetectorGroup(name="CSPAD", local_fast=[1.0, 0, 0], local_slow=[0, -1.0, 0], local_origin=[-20.0, 20.0, -100.0],
                         children=quads)
    return Detector(panels, root)


def test_deep_hierarchy_round_trip(tmp_path):
    det = four_level_detector()
    el = ExperimentList([Experiment(beam=Beam([0, 0, 1.0], 1.3), detector=det, identifier="x")])
    write_experiments(el, str(tmp_path / "a.expt"))
    back = read_experiments(str(tmp_path / "a.expt"))
    d2 = back[0].detector
    assert d2.depth() == det.depth() == 3
    for p1, p2 in zip(det.panels, d2.panels):
        for attr in ("local_fast", "local_slow", "local_origin", "fast", "slow", "origin"):
            assert np.allclose(getattr(p1, attr), getattr(p2, attr), atol=1e-12), attr
    write_experiments(back, str(tmp_path / "b.expt"))
    assert json.loads((tmp_path / "a.expt").read_text()) == json.loads((tmp_path / "b.expt").read_text())


def test_moving_a_group_keeps_descendant_local_frames(tmp_path):
    det = four_level_detector()
    before = [(p.local_fast.copy(), p.local_slow.copy(), p.local_origin.copy()) for p in det.panels]
    quad = det.root.children[2]
    R = rotation_matrix([0.3, 0.2, 1.0], 0.002)
    f, s, o = det.lab_frame(quad)
    det.set_lab_frame(quad, R @ f, R @ s, o + [0.05, -0.02, 0.01])
    el = ExperimentList([Experiment(beam=Beam([0, 0, 1.0], 1.3), detector=det, identifier="x")])
    write_experiments(el, str(tmp_path / "moved.expt"))
    d2 = read_experiments(str(tmp_path / "moved.expt"))[0].detector
    for (lf, ls, lo), p in zip(before, d2.panels):
        assert np.allclose(p.local_fast, lf, atol=1e-12) and np.allclose(p.local_slow, ls, atol=1e-12)
        assert np.allclose(p.local_origin, lo, atol=1e-12)
    moved = set(quad.panel_indices())
    for i, (p_old, p_new) in enumerate(zip(four_level_detector().panels, d2.panels)):
        assert (not np.allclose(p_old.origin, p_new.origin)) == (i in moved)
