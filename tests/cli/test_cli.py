"""The command line: outputs, and one clear line with exit status 2 for every user error."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest

from xrefine.io import read_experiments, read_reflections, write_reflections
from xrefine.reflections import Flags

DATA = Path(__file__).resolve().parents[1] / "data" / "lysozyme-eiger"


def run(args, cwd):
    return subprocess.run([sys.executable, "-m", "xrefine.cli", *args], cwd=cwd, capture_output=True, text=True)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    r = run(["simulate", "thaumatin-wedge", "-o", str(d), "seed=3"], d)
    assert r.returncode == 0, r.stderr
    return d


def test_simulate_is_deterministic(simulated, tmp_path):
    r = run(["simulate", "thaumatin-wedge", "-o", str(tmp_path), "seed=3"], tmp_path)
    assert r.returncode == 0
    for f in ("truth.expt", "start.expt", "observed.refl"):
        assert digest(simulated / f) == digest(tmp_path / f)
    facts = json.loads((tmp_path / "simulation.json").read_text())
    assert facts["seed"] == 3 and len(facts["gross_outlier_rows"]) > 0


def test_simulate_noise_draw_keeps_truth_and_start(simulated, tmp_path):
    """noise=N draws new centroid errors for the same truth and starting model."""
    r = run(["simulate", "thaumatin-wedge", "-o", str(tmp_path), "seed=3", "noise=2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "noise draw 2" in r.stdout
    for f in ("truth.expt", "start.expt"):
        assert digest(simulated / f) == digest(tmp_path / f)
    a = read_reflections(str(simulated / "observed.refl"))
    b = read_reflections(str(tmp_path / "observed.refl"))
    assert a.nrows == b.nrows  # the same reflections are observed ...
    assert not np.allclose(a["xyzobs.mm.value"], b["xyzobs.mm.value"])  # ... with other errors
    assert json.loads((tmp_path / "simulation.json").read_text())["noise"] == 2
    for bad in ("noise=-1", "noise=x", "nosie=1"):
        r = run(["simulate", "thaumatin-wedge", "-o", str(tmp_path / "x"), bad], tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)


def test_refine_writes_everything(simulated, tmp_path):
    for f in ("start.expt", "observed.refl"):
        shutil.copy(simulated / f, tmp_path / f)
    before = {f: digest(tmp_path / f) for f in ("start.expt", "observed.refl")}
    r = run(["refine", "start.expt", "observed.refl"], tmp_path)
    assert r.returncode == 0, r.stderr
    for f in ("refined.expt", "refined.refl", "xrefine.log", "xrefine.json"):
        assert (tmp_path / f).exists()
    assert before == {f: digest(tmp_path / f) for f in before}  # inputs untouched
    refl = read_reflections(str(tmp_path / "refined.refl"))
    inp = read_reflections(str(tmp_path / "observed.refl"))
    assert refl.nrows == inp.nrows
    for col in ("xyzcal.mm", "xyzcal.px", "s1"):
        assert col in refl
    used = refl.get_flags(Flags.used_in_refinement)
    outl = refl.get_flags(Flags.centroid_outlier)
    assert used.sum() > 0.9 * refl.nrows and outl.sum() > 0 and not (used & outl).any()
    # calculated centroids of used reflections are close to the observations
    d = refl["xyzcal.px"][used] - refl["xyzobs.px.value"][used]
    assert np.sqrt(np.mean(d[:, 0] ** 2)) < 0.5
    summary = json.loads((tmp_path / "xrefine.json").read_text())
    assert summary["converged"] and summary["stop_reason"]
    names = [p["name"] for p in summary["parameters"] if not p["fixed"]]
    assert "Detector1Group1Dist" in names or "Detector1Dist" in names
    assert all(p["esd"] > 0 for p in summary["parameters"] if not p["fixed"])
    assert read_experiments(str(tmp_path / "refined.expt"))[0].crystal.B_covariance is not None


def test_refine_refuses_to_overwrite_an_input(simulated, tmp_path):
    shutil.copy(simulated / "start.expt", tmp_path / "start.expt")
    shutil.copy(simulated / "observed.refl", tmp_path / "observed.refl")
    r = run(["refine", "start.expt", "observed.refl", "output.experiments=start.expt"], tmp_path)
    assert r.returncode == 2 and "overwrite" in r.stderr


def test_predict_and_plugins_and_show_config(simulated, tmp_path):
    r = run(["predict", str(simulated / "truth.expt"), "d_min=3.0", "output=p.refl"], tmp_path)
    assert r.returncode == 0, r.stderr
    t = read_reflections(str(tmp_path / "p.refl"))
    assert t.nrows > 1000 and "xyzcal.px" in t
    r = run(["plugins"], tmp_path)
    assert r.returncode == 0 and "xrefine_engines" in r.stdout and "scipy-trf" in r.stdout
    r = run(["show-config"], tmp_path)
    assert r.returncode == 0 and "detector.hierarchy_level" in r.stdout and "beam.fix" in r.stdout


def _one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def workdir(simulated, tmp_path):
    for f in ("start.expt", "observed.refl"):
        shutil.copy(simulated / f, tmp_path / f)
    return tmp_path


def test_malformed_json(workdir):
    (workdir / "bad.expt").write_text('{"__id__": "ExperimentList", "experiment": [')
    _one_line_error(run(["refine", "bad.expt", "observed.refl"], workdir), "bad.expt")


def test_missing_model(workdir):
    d = json.loads((workdir / "start.expt").read_text())
    d["crystal"] = []
    (workdir / "nocrystal.expt").write_text(json.dumps(d))
    _one_line_error(run(["refine", "nocrystal.expt", "observed.refl"], workdir), "nocrystal.expt", "crystal")


def test_msgpack_garbage(workdir):
    (workdir / "garbage.refl").write_bytes(os.urandom(2000))
    _one_line_error(run(["refine", "start.expt", "garbage.refl"], workdir), "garbage.refl")
    (workdir / "wrong.refl").write_bytes(msgpack.packb(["not a reflection table", 1, {}]))
    _one_line_error(run(["refine", "start.expt", "wrong.refl"], workdir), "wrong.refl")


def test_experiment_id_without_experiment(workdir):
    t = read_reflections(str(workdir / "observed.refl"))
    ids = t["id"].copy()
    ids[5] = 3
    t["id"] = ids
    write_reflections(t, str(workdir / "ids.refl"))
    _one_line_error(run(["refine", "start.expt", "ids.refl"], workdir), "ids.refl", "id 3")


@pytest.mark.parametrize("name, row, value", [
    ("zerovar", (10, slice(None)), 0.0),  # all three variances zero
    ("negvar", (7, 1), -1e-6),
])
def test_bad_variances(workdir, name, row, value):
    t = read_reflections(str(workdir / "observed.refl"))
    var = t["xyzobs.mm.variance"].copy()
    var[row] = value
    t["xyzobs.mm.variance"] = var
    write_reflections(t, str(workdir / f"{name}.refl"))
    _one_line_error(run(["refine", "start.expt", f"{name}.refl"], workdir), f"{name}.refl", "variance")


def test_one_zero_variance_gives_that_coordinate_zero_weight(workdir):
    """As dials.refine: only a reflection with all three variances zero is refused."""
    t = read_reflections(str(workdir / "observed.refl"))
    var = t["xyzobs.mm.variance"].copy()
    var[::50, 2] = 0.0
    t["xyzobs.mm.variance"] = var
    write_reflections(t, str(workdir / "somezero.refl"))
    r = run(["refine", "start.expt", "somezero.refl"], workdir)
    assert r.returncode == 0, r.stderr
    assert (workdir / "refined.expt").exists()


def test_unknown_config_key(workdir):
    _one_line_error(run(["refine", "start.expt", "observed.refl", "detector.fixx=all"], workdir), "detector.fixx", "detector.fix")
    (workdir / "job.toml").write_text("[outlier]\nalgoritm = 'tukey'\n")
    _one_line_error(run(["refine", "start.expt", "observed.refl", "--config", "job.toml"], workdir), "job.toml", "outlier.algorithm")


def test_missing_file_and_bad_command(workdir):
    _one_line_error(run(["refine", "start.expt", "nothere.refl"], workdir), "nothere.refl")
    r = run(["refin", "start.expt"], workdir)
    assert r.returncode == 2 and "refine" in r.stderr


def test_errors_leave_inputs_untouched(workdir):
    before = {f: digest(workdir / f) for f in ("start.expt", "observed.refl")}
    run(["refine", "start.expt", "observed.refl", "engine=nope"], workdir)
    assert before == {f: digest(workdir / f) for f in before}
    assert not (workdir / "refined.expt").exists()


def test_dials_files_refine(tmp_path):
    """DIALS's own lysozyme files go through and land closer to the truth than dials.refine."""
    r = run(["refine", str(DATA / "start.expt"), str(DATA / "indexed.refl"), "scan_varying=false"], tmp_path)
    assert r.returncode == 0, r.stderr
    refined = read_experiments(str(tmp_path / "refined.expt"))
    truth = read_experiments(str(DATA / "truth.expt"))
    dials = read_experiments(str(DATA / "refined.expt"))
    dU = refined[0].crystal.U @ truth[0].crystal.U.T
    ours = np.arccos(np.clip((np.trace(dU) - 1) / 2, -1, 1)) * 1000
    dU = dials[0].crystal.U @ truth[0].crystal.U.T
    theirs = np.arccos(np.clip((np.trace(dU) - 1) / 2, -1, 1)) * 1000
    assert ours < theirs, (ours, theirs)


def test_bench_writes_rows(tmp_path):
    out = tmp_path / "bench.json"
    r = run(["bench", "thaumatin-wedge", "--engines", "lm,gn", "--json", str(out), "seed=1", "scan_varying=false"], tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())
    assert [row["engine"] for row in rows] == ["lm", "gn"]
    keys = {"scenario", "engine", "n_reflections", "n_parameters", "steps", "wall_s", "peak_rss_mb",
            "rmsd_x_px", "rmsd_y_px", "rmsd_z_images", "converged"}
    for row in rows:
        assert keys <= set(row)
        assert row["n_parameters"] == 12 and row["converged"] and row["peak_rss_mb"] > 10
        assert 0.15 < row["rmsd_x_px"] < 0.35


def test_predict_force_static(tmp_path):
    """A crystal with scan points predicts scan-varying; force_static=true uses the static
    models only, exactly as if the scan points were absent."""
    import copy

    from xrefine.io import write_experiments
    from xrefine_simulate.presets import thaumatin_720_drift, truncate_scan

    truth = truncate_scan(thaumatin_720_drift(0), 60)
    experiments = truth.experiments
    # a drift large enough to move spots: the scan points turned by 2 mrad over the wedge
    A = experiments[0].crystal.A_at_scan_points
    turn = np.linspace(0.0, 2e-3, len(A))
    c, s = np.cos(turn), np.sin(turn)
    R = np.zeros((len(A), 3, 3))
    R[:, 0, 0], R[:, 1, 1], R[:, 2, 2] = c, c, 1.0
    R[:, 0, 1], R[:, 1, 0] = -s, s
    experiments[0].crystal.A_at_scan_points = R @ A
    write_experiments(experiments, str(tmp_path / "sv.expt"))
    static = copy.deepcopy(experiments)
    static[0].crystal.A_at_scan_points = None
    write_experiments(static, str(tmp_path / "static.expt"))
    for args in (["sv.expt", "output=a.refl"], ["sv.expt", "force_static=true", "output=b.refl"],
                 ["static.expt", "output=c.refl"]):
        r = run(["predict", *args, "d_min=3.0"], tmp_path)
        assert r.returncode == 0, r.stderr
    a, b, c = (read_reflections(str(tmp_path / f)) for f in ("a.refl", "b.refl", "c.refl"))
    np.testing.assert_array_equal(b["miller_index"], c["miller_index"])
    np.testing.assert_array_equal(b["xyzcal.px"], c["xyzcal.px"])
    assert a.nrows != c.nrows or np.abs(a["xyzcal.px"] - c["xyzcal.px"]).max() > 0.5
