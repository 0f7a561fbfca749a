"""Experiment lists: lossless round trips of DIALS's files, model sharing, changed state,
every scan/goniometer/beam form, and one-sentence errors for malformed files."""

import copy
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from xrefine.errors import InputError
from xrefine.geometry import rotation_matrix
from xrefine.io import experiments_from_dict, experiments_to_dict, read_experiments, write_experiments
from xrefine.models import Beam, Crystal, Detector, Experiment, ExperimentList, Goniometer, Panel, Scan

DATA = Path(__file__).resolve().parents[1] / "data"
EXPT_FILES = sorted(DATA.glob("*/*.expt"))
EIGER = DATA / "lysozyme-eiger" / "refined.expt"
P6M = DATA / "p6m-modules-small" / "refined.expt"


def load(path):
    with open(path) as f:
        return json.load(f)


def roundtrip(d):
    return experiments_to_dict(experiments_from_dict(copy.deepcopy(d)))


# ------------------------------------------------------------------------- lossless round trip
def test_there_are_files_to_check():
    assert len(EXPT_FILES) >= 6


@pytest.mark.parametrize("path", EXPT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_read_write_is_lossless(path, tmp_path):
    out = tmp_path / path.name
    write_experiments(read_experiments(path), out)
    assert load(out) == load(path)
    # dxtbx writes json.dumps(indent=2): a file it wrote comes back byte for byte
    assert out.read_bytes() == path.read_bytes()


def test_history_is_kept_exactly(tmp_path):
    experiments = read_experiments(EIGER)
    assert experiments.extra["history"] == load(EIGER)["history"]
    experiments.extra["history"].append("2026-01-01T00:00:00Z|xrefine|v0.1.0")
    write_experiments(experiments, tmp_path / "out.expt")
    assert load(tmp_path / "out.expt")["history"][-1] == "2026-01-01T00:00:00Z|xrefine|v0.1.0"


def test_models_hold_the_file_values():
    d = load(EIGER)
    (e,) = read_experiments(EIGER)
    beam = d["beam"][0]
    assert np.array_equal(e.beam.direction, beam["direction"])
    assert e.beam.wavelength == beam["wavelength"]
    np.testing.assert_allclose(e.beam.s0, -np.array(beam["direction"]) / beam["wavelength"], rtol=1e-15)
    crystal = d["crystal"][0]
    assert np.array_equal(
        e.crystal.real_space, [crystal["real_space_a"], crystal["real_space_b"], crystal["real_space_c"]]
    )
    assert e.crystal.space_group_hall_symbol == " P 4nw 2abw"
    assert np.array_equal(e.crystal.B_covariance.ravel(), crystal["B_covariance"])
    assert e.scan.image_range == (1, 300) and e.scan.oscillation == (0.0, 0.2)
    assert set(e.scan.properties) == {"epochs", "exposure_time"}
    panel = e.detector[0]
    assert panel.parallax and panel.thickness == 0.45 and panel.image_size == (3110, 3269)
    assert panel.extra["material"] == "Si" and list(panel.extra)[0] == "type"
    assert e.identifier == "42e53a9f-7eb1-4df5-86b0-9bde93742d10"


# --------------------------------------------------------------------------- model sharing
def two_experiments(d, second_crystal_index=0):
    d = copy.deepcopy(d)
    e2 = dict(d["experiment"][0], identifier="second", crystal=second_crystal_index)
    d["experiment"].append(e2)
    return d


def test_experiments_naming_one_index_share_one_object():
    experiments = experiments_from_dict(two_experiments(load(EIGER)))
    a, b = experiments
    for kind in ("beam", "detector", "goniometer", "scan", "crystal"):
        assert getattr(a, kind) is getattr(b, kind)
    out = experiments_to_dict(experiments)
    assert len(out["beam"]) == len(out["crystal"]) == 1
    assert [e["crystal"] for e in out["experiment"]] == [0, 0]


def test_writing_dedups_by_identity_not_equality():
    experiments = experiments_from_dict(two_experiments(load(EIGER)))
    experiments[1].crystal = copy.deepcopy(experiments[0].crystal)
    out = experiments_to_dict(experiments)
    assert out["crystal"][0] == out["crystal"][1]
    assert [e["crystal"] for e in out["experiment"]] == [0, 1]
    assert len(out["beam"]) == 1


def test_models_are_numbered_in_order_of_first_use():
    d = two_experiments(load(EIGER), second_crystal_index=1)
    second = copy.deepcopy(d["crystal"][0])
    second["real_space_a"] = [1.0, 2.0, 3.0]
    d["crystal"].append(second)
    d["experiment"].reverse()
    out = roundtrip(d)
    assert out["crystal"][0]["real_space_a"] == [1.0, 2.0, 3.0]
    assert [e["crystal"] for e in out["experiment"]] == [0, 1]


# ------------------------------------------------------------------- changed state is written
def test_changed_beam_crystal_and_detector_are_written(tmp_path):
    experiments = read_experiments(P6M)
    e = experiments[0]
    s0 = e.beam.s0 + np.array([1e-4, -2e-4, 0.0])
    e.beam.set_s0(s0)
    A = e.crystal.A @ rotation_matrix([0.3, 0.2, 0.9], 1e-3)
    e.crystal.set_A(A)
    det = e.detector
    root_frame = det.lab_frame(det.root)
    panel_frames = [det.lab_frame(i) for i in range(len(det))]
    det.set_lab_frame(det.root, root_frame[0], root_frame[1], root_frame[2] + [0.5, -0.25, 1.0])
    f, s, o = det.lab_frame(7)
    det.set_lab_frame(7, rotation_matrix(np.cross(f, s), 2e-3) @ f, rotation_matrix(np.cross(f, s), 2e-3) @ s, o + 0.1)
    write_experiments(experiments, tmp_path / "moved.expt")

    (back,) = read_experiments(tmp_path / "moved.expt")
    np.testing.assert_allclose(back.beam.s0, s0, rtol=1e-14)
    np.testing.assert_allclose(back.crystal.A, A, rtol=1e-12, atol=1e-16)
    for i, (pf, _, po) in enumerate(panel_frames):
        bf, bs, bo = back.detector.lab_frame(i)
        if i == 7:
            np.testing.assert_allclose(bo, o + 0.1, atol=1e-9)
            np.testing.assert_allclose(bf, rotation_matrix(np.cross(f, s), 2e-3) @ f, atol=1e-12)
        else:
            np.testing.assert_allclose(bf, pf, atol=1e-12)
            np.testing.assert_allclose(bo, po + [0.5, -0.25, 1.0], atol=1e-9)
    assert load(tmp_path / "moved.expt")["detector"][0]["panels"][3] == load(P6M)["detector"][0]["panels"][3]


def test_changed_oscillation_regenerates_the_angle_column_as_dxtbx_does():
    d = load(P6M)
    experiments = experiments_from_dict(copy.deepcopy(d))
    scan = experiments[0].scan
    assert scan.oscillation[0] == 90.0 and scan.oscillation[1] == pytest.approx(0.1, abs=1e-12)
    # the file's angles were made by dxtbx from (90, 0.1): the same arithmetic must give them
    scan.oscillation = (90.0, 0.1)
    out = experiments_to_dict(experiments)
    assert out["scan"][0]["properties"]["oscillation"] == d["scan"][0]["properties"]["oscillation"]
    scan.oscillation = (10.0, 0.5)
    column = experiments_to_dict(experiments)["scan"][0]["properties"]["oscillation"]
    np.testing.assert_allclose(column, 10.0 + 0.5 * np.arange(300), atol=1e-12)


def test_changed_image_range_regenerates_angles_and_checks_columns():
    experiments = read_experiments(EIGER)
    scan = experiments[0].scan
    scan.image_range = (1, 10)
    with pytest.raises(ValueError, match="epochs"):
        experiments_to_dict(experiments)
    scan.properties = {k: v[:10] for k, v in scan.properties.items()}
    props = experiments_to_dict(experiments)["scan"][0]["properties"]
    assert list(props) == ["epochs", "exposure_time", "oscillation"]
    np.testing.assert_allclose(props["oscillation"], 0.2 * np.arange(10), atol=1e-13)


# ------------------------------------------------------------------------- unknown keys survive
def test_unknown_keys_everywhere_survive():
    d = load(P6M)
    d["profile"] = [{"__id__": "gaussian_rs", "n_sigma": 3.0, "sigma_b": 0.04, "sigma_m": 0.08}]
    d["scaling_model"] = [{"__id__": "physical", "is_scaled": False}]
    d["imageset"] = [{"__id__": "ImageSequence", "template": "/x/image_#####.cbf", "mask": None}]
    d["somebody_elses_key"] = {"kept": [1, 2, 3]}
    e = d["experiment"][0]
    e.update(profile=0, scaling_model=0, imageset=0, comment="unknown experiment key")
    crystal = d["crystal"][0]
    covariance = crystal.pop("B_covariance")
    crystal["A_at_scan_points"] = [list(np.eye(3).ravel() * 0.01)] * 3
    crystal["B_covariance"] = covariance
    crystal["ML_half_mosaicity_deg"] = 0.021
    crystal["ML_domain_size_ang"] = 1234.5
    d["detector"][0]["panels"][5]["projection_2d"] = [[1, 0, 0, 1], [0, 200]]
    d["detector"][0]["hierarchy"]["a_group_key"] = "kept"
    d["detector"][0]["a_detector_key"] = None
    d["goniometer"][0]["setting_rotation_at_scan_points"] = [list(np.eye(3).ravel())] * 2
    d["beam"][0]["s0_at_scan_points"] = [[0.0, 0.0, -1.02]] * 2
    d["beam"][0]["a_future_beam_key"] = 1.5  # keys dxtbx does not write go after its own
    d["scan"][0]["valid_image_ranges"] = {"abc": [[1, 100], [120, 300]]}
    d["scan"][0]["batch_offset"] = 100
    d["scan"][0]["properties"] = {"a_flag": [True] * 300, **d["scan"][0]["properties"]}
    out = roundtrip(d)
    assert out == d
    assert json.dumps(out, indent=2) == json.dumps(d, indent=2)  # dxtbx's key order too


def test_opaque_references_are_kept():
    d = load(EIGER)
    d["imageset"] = [{"__id__": "ImageSequence", "template": "a"}, {"__id__": "ImageSequence", "template": "b"}]
    d["experiment"][0]["imageset"] = 1
    (e,) = experiments_from_dict(copy.deepcopy(d))
    assert e.imageset == 1
    assert roundtrip(d) == d


def test_explicit_null_references_survive():
    d = load(EIGER)
    d["experiment"][0]["goniometer"] = None
    (e,) = experiments_from_dict(copy.deepcopy(d))
    assert e.goniometer is None and e.is_still
    assert roundtrip(d)["experiment"] == d["experiment"]


# --------------------------------------------------------------------------------- scan forms
def test_old_scan_form_is_read_and_written_in_the_current_form():
    d = load(EIGER)
    d["scan"] = [
        {
            "image_range": [3, 7],
            "oscillation": [10.0, 0.5],
            "exposure_time": [0.1],
            "epochs": [5.0, 5.1],
            "batch_offset": 2,
        }
    ]
    (e,) = experiments_from_dict(copy.deepcopy(d))
    assert e.scan.image_range == (3, 7) and e.scan.oscillation == (10.0, 0.5) and e.scan.batch_offset == 2
    scan = experiments_to_dict(ExperimentList([e]))["scan"][0]
    assert scan == {
        "image_range": [3, 7],
        "batch_offset": 2,
        "properties": {
            "epochs": pytest.approx([5.0, 5.1, 5.2, 5.3, 5.4]),
            "exposure_time": [0.1] * 5,
            "oscillation": pytest.approx([10.0, 10.5, 11.0, 11.5, 12.0], abs=1e-12),
        },
        "valid_image_ranges": {},
    }
    assert list(scan) == ["image_range", "batch_offset", "properties", "valid_image_ranges"]


def test_single_image_scan_keeps_its_width():
    d = load(EIGER)
    d["scan"] = [
        {
            "image_range": [42, 42],
            "batch_offset": 0,
            "properties": {"epochs": [1.0], "exposure_time": [0.1], "oscillation": [12.5], "oscillation_width": [0.25]},
            "valid_image_ranges": {},
        }
    ]
    (e,) = experiments_from_dict(copy.deepcopy(d))
    assert e.scan.oscillation == (12.5, 0.25)
    assert e.scan.frame_from_angle(math.radians(12.5 + 0.125)) == pytest.approx(41.5)
    assert roundtrip(d) == d
    e.scan.oscillation = (13.0, 0.5)
    props = experiments_to_dict(ExperimentList([e]))["scan"][0]["properties"]
    assert props["oscillation"] == [13.0] and props["oscillation_width"] == [0.5]


def test_old_single_image_scan_gains_oscillation_width():
    d = load(EIGER)
    d["scan"] = [{"image_range": [1, 1], "oscillation": [3.0, 0.1], "exposure_time": 0.5, "epochs": []}]
    props = roundtrip(d)["scan"][0]["properties"]
    assert props == {"epochs": [0.0], "exposure_time": [0.5], "oscillation": [3.0], "oscillation_width": [0.1]}


# ---------------------------------------------------------------------------------- goniometer
def multi_axis_dict(scan_axis):
    alpha = math.radians(50.0)
    return {
        "axes": [[1.0, 0.0, 0.0], [math.cos(alpha), math.sin(alpha), 0.0], [1.0, 0.0, 0.0]],
        "angles": [12.0, -35.0, 80.0],
        "names": ["PHI", "KAPPA", "OMEGA"],
        "scan_axis": scan_axis,
    }


@pytest.mark.parametrize("scan_axis", [0, 1, 2])
def test_multi_axis_goniometer_follows_the_formats_page_and_round_trips(scan_axis):
    d = load(EIGER)
    g = multi_axis_dict(scan_axis)
    g["setting_rotation_at_scan_points"] = [list(np.eye(3).ravel())] * 4
    d["goniometer"] = [g]
    (e,) = experiments_from_dict(copy.deepcopy(d))
    gon = e.goniometer
    axes, angles = np.array(g["axes"]), np.radians(g["angles"])
    R = [rotation_matrix(a, t) for a, t in zip(axes, angles, strict=True)]
    F, S = np.eye(3), np.eye(3)
    for k in range(scan_axis):
        F = R[k] @ F
    for k in range(scan_axis + 1, 3):
        S = R[k] @ S
    np.testing.assert_allclose(gon.fixed_rotation, F, atol=1e-15)
    np.testing.assert_allclose(gon.setting_rotation, S, atol=1e-15)
    np.testing.assert_array_equal(gon.rotation_axis, axes[scan_axis])
    assert gon.names == ["PHI", "KAPPA", "OMEGA"] and gon.setting_rotation_at_scan_points.shape == (4, 3, 3)
    out = experiments_to_dict(ExperimentList([e]))["goniometer"][0]
    assert out == g and list(out) == list(g)


def test_multi_axis_goniometer_whose_setting_moved_is_written_as_its_state():
    d = load(EIGER)
    d["goniometer"] = [multi_axis_dict(2)]
    (e,) = experiments_from_dict(d)
    S = rotation_matrix([0, 1, 0], 1e-3) @ e.goniometer.setting_rotation
    e.goniometer.setting_rotation = S
    out = experiments_to_dict(ExperimentList([e]))["goniometer"][0]
    assert "axes" not in out
    (back,) = experiments_from_dict(dict(d, goniometer=[out]))
    np.testing.assert_array_equal(back.goniometer.setting_rotation, S)
    np.testing.assert_array_equal(back.goniometer.fixed_rotation, e.goniometer.fixed_rotation)


# ------------------------------------------------------------------------ beam, crystal, panel
def test_polychromatic_beam_has_no_wavelength_and_keeps_its_range():
    d = load(EIGER)
    beam = {k: v for k, v in d["beam"][0].items() if k != "wavelength"}
    beam.update({"__id__": "polychromatic", "wavelength_range": [0.9, 1.1]})
    d["beam"] = [beam]
    (e,) = experiments_from_dict(copy.deepcopy(d))
    assert math.isnan(e.beam.wavelength)
    assert roundtrip(d) == d


def test_parallax_flag_decides_the_written_strategy():
    experiments = read_experiments(EIGER)
    panel = experiments[0].detector[0]
    panel.parallax = False
    out = experiments_to_dict(experiments)["detector"][0]["panels"][0]
    assert out["px_mm_strategy"] == {"type": "SimplePxMmStrategy"}


def test_new_models_are_written_in_dxtbx_key_order_and_read_back():
    panel = Panel(
        name="p",
        local_fast=[1, 0, 0],
        local_slow=[0, -1, 0],
        local_origin=[-10.0, 10.0, -100.0],
        image_size=(100, 120),
        pixel_size=(0.1, 0.1),
        thickness=0.3,
        mu=3.0,
        parallax=True,
    )
    e = Experiment(
        beam=Beam(direction=[0.0, 0.0, 1.0], wavelength=1.2),
        detector=Detector([panel]),
        goniometer=Goniometer(rotation_axis=[1.0, 0.0, 0.0]),
        scan=Scan(
            image_range=(1, 5), oscillation=(0.0, 0.5), properties={"exposure_time": [0.1] * 5, "epochs": [0.0] * 5}
        ),
        crystal=Crystal(real_space=np.diag([50.0, 60.0, 70.0]), space_group_hall_symbol=" P 2 2 2"),
        identifier="new",
    )
    out = experiments_to_dict(ExperimentList([e]))
    assert list(out) == [
        "__id__",
        "experiment",
        "imageset",
        "beam",
        "detector",
        "goniometer",
        "scan",
        "crystal",
        "profile",
        "scaling_model",
    ]
    assert list(out["experiment"][0]) == ["__id__", "identifier", "beam", "detector", "goniometer", "scan", "crystal"]
    assert list(out["crystal"][0]) == [
        "__id__",
        "real_space_a",
        "real_space_b",
        "real_space_c",
        "space_group_hall_symbol",
    ]
    assert out["crystal"][0]["__id__"] == "crystal"
    assert list(out["goniometer"][0]) == ["rotation_axis", "fixed_rotation", "setting_rotation"]
    assert list(out["scan"][0]["properties"]) == ["epochs", "exposure_time", "oscillation"]
    assert list(out["detector"][0]["panels"][0]) == [
        "name", "fast_axis", "slow_axis", "origin", "image_size", "pixel_size", "thickness", "mu", "px_mm_strategy",
    ]  # fmt: skip
    (back,) = experiments_from_dict(out)
    np.testing.assert_array_equal(back.crystal.real_space, e.crystal.real_space)
    np.testing.assert_array_equal(back.detector[0].origin, panel.origin)
    assert back.detector[0].parallax and back.scan.oscillation == (0.0, 0.5)


def test_local_axes_that_are_not_unit_are_normalised_as_dxtbx_does():
    d = load(P6M)
    hierarchy = d["detector"][0]["hierarchy"]
    hierarchy["fast_axis"] = [2.0 * v for v in hierarchy["fast_axis"]]
    d["detector"][0]["panels"][0]["slow_axis"] = [-3.0 * v for v in d["detector"][0]["panels"][0]["slow_axis"]]
    (e,) = experiments_from_dict(copy.deepcopy(d))
    (reference,) = read_experiments(P6M)
    for i in range(60):
        sign = -1.0 if i == 0 else 1.0
        np.testing.assert_allclose(e.detector[i].fast, reference.detector[i].fast, atol=1e-15)
        np.testing.assert_allclose(e.detector[i].slow, sign * reference.detector[i].slow, atol=1e-15)
        np.testing.assert_allclose(e.detector[i].origin, reference.detector[i].origin, atol=1e-12)
    out = experiments_to_dict(ExperimentList([e]))["detector"][0]
    assert np.linalg.norm(out["hierarchy"]["fast_axis"]) == pytest.approx(1.0, abs=1e-15)


# ------------------------------------------------------------------------------------- writing
def test_write_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.expt"
    target.write_text("old contents")
    os.chmod(target, 0o640)
    write_experiments(read_experiments(EIGER), target)
    assert target.read_bytes() == EIGER.read_bytes()
    assert os.stat(target).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.expt"]


def test_write_to_a_missing_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no_such_dir"):
        write_experiments(read_experiments(EIGER), tmp_path / "no_such_dir" / "out.expt")


# -------------------------------------------------------------------------------------- errors
def corrupt(mutate):
    d = load(EIGER)
    mutate(d)
    return d


def _set(path, value):
    def mutate(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


BAD_DICTS = {
    "top-level list": ([{"__id__": "DataBlock"}], "JSON list"),
    "wrong __id__": ({"__id__": "DataBlock", "experiment": []}, "not a DIALS experiment list"),
    "no experiment list": (corrupt(_delete(["experiment"])), "no list of experiments"),
    "crystal index out of range": (
        corrupt(_set(["experiment", 0, "crystal"], 3)),
        "referring to crystal 3, but the file holds 1 crystal entry",
    ),
    "negative beam index": (corrupt(_set(["experiment", 0, "beam"], -1)), "referring to beam -1"),
    "model by file name": (corrupt(_set(["experiment", 0, "beam"], "beam.json")), "by the file 'beam.json'"),
    "crystal without real_space_a": (
        corrupt(_delete(["crystal", 0, "real_space_a"])),
        "crystal 0 without the required key 'real_space_a'",
    ),
    "crystal without space group": (
        corrupt(_delete(["crystal", 0, "space_group_hall_symbol"])),
        "space_group_hall_symbol",
    ),
    "short real_space_b": (
        corrupt(_set(["crystal", 0, "real_space_b"], [1.0, 2.0])),
        "'real_space_b' is not a list of 3 numbers",
    ),
    "string in a vector": (corrupt(_set(["beam", 0, "direction"], [0, 0, "1"])), "'direction'"),
    "beam without wavelength": (corrupt(_delete(["beam", 0, "wavelength"])), "without the required key 'wavelength'"),
    "beam list not a list": (
        corrupt(_set(["beam"], {"direction": [0, 0, 1]})),
        "has a 'beam' key that is not a list of beam models",
    ),
    "panel without image_size": (
        corrupt(_delete(["detector", 0, "panels", 0, "image_size"])),
        "detector 0 panel 0 without the required key 'image_size'",
    ),
    "panel without origin": (corrupt(_delete(["detector", 0, "panels", 0, "origin"])), "'origin'"),
    "skew panel axes": (
        corrupt(_set(["detector", 0, "panels", 0, "slow_axis"], [0.1, -1.0, 0.0])),
        "not perpendicular",
    ),
    "hierarchy names a missing panel": (
        corrupt(_set(["detector", 0, "hierarchy", "children", 0, "panel"], 4)),
        "naming panel 4",
    ),
    "hierarchy leaves out a panel": (corrupt(_set(["detector", 0, "hierarchy", "children"], [])), "leaves out panel 0"),
    "scan property too short": (
        corrupt(_set(["scan", 0, "properties", "epochs"], [0.0] * 299)),
        "'epochs' holds 299 values for its 300 images",
    ),
    "scan without image_range": (corrupt(_delete(["scan", 0, "image_range"])), "'image_range'"),
    "goniometer without axis": (corrupt(_delete(["goniometer", 0, "rotation_axis"])), "'rotation_axis'"),
    "experiment not an object": (corrupt(_set(["experiment", 0], 7)), "experiment 0 that is not a JSON object"),
    "zero wavelength": (corrupt(_set(["beam", 0, "wavelength"], 0.0)), "wavelength 0.0 is not positive"),
    "zero rotation axis": (
        corrupt(_set(["goniometer", 0, "rotation_axis"], [0, 0, 0])),
        "'rotation_axis' is a zero vector",
    ),
    "flat crystal": (corrupt(_set(["crystal", 0, "real_space_c"], [0.0, 0.0, 0.0])), "span no volume"),
    "zero pixel size": (
        corrupt(_set(["detector", 0, "panels", 0, "pixel_size"], [0.075, 0.0])),
        "not two positive sizes",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DICTS), ids=list(BAD_DICTS))
def test_malformed_experiment_lists_raise_one_clear_sentence(case):
    d, expected = BAD_DICTS[case]
    with pytest.raises(InputError) as info:
        experiments_from_dict(d, source="bad.expt")
    message = str(info.value)
    assert message.startswith("bad.expt ") and expected in message
    assert "\n" not in message and message.endswith(".")
    assert info.value.__cause__ is None


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.expt does not exist; check the path"):
        read_experiments(tmp_path / "nothing.expt")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(InputError, match="is a directory, not a file"):
        read_experiments(tmp_path)


def test_invalid_json_names_line_and_column(tmp_path):
    bad = tmp_path / "bad.expt"
    text = EIGER.read_text()
    at = text.index('"wavelength"')
    bad.write_text(text[:at] + text[at + 1 :])  # an unquoted key
    line, column = text[:at].count("\n") + 1, at - text.rindex("\n", 0, at)
    with pytest.raises(InputError, match=rf"bad\.expt is not valid JSON \(line {line}, column {column}: "):
        read_experiments(bad)


def test_truncated_json(tmp_path):
    bad = tmp_path / "cut.expt"
    bad.write_bytes(EIGER.read_bytes()[:5000])
    with pytest.raises(InputError, match=r"cut\.expt is not valid JSON"):
        read_experiments(bad)


def test_binary_garbage_and_reflection_files_are_recognised(tmp_path):
    garbage = tmp_path / "garbage.expt"
    garbage.write_bytes(bytes(range(128, 256)))
    with pytest.raises(InputError, match="not a text file"):
        read_experiments(garbage)
    with pytest.raises(InputError, match="is a DIALS reflection table, not an experiment list"):
        read_experiments(DATA / "lysozyme-eiger" / "indexed.refl")
