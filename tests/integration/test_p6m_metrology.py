"""Issue 4 acceptance on thaumatin-p6m-60: per-module refinement recovers every module's true
offset within its esds (esds of a few um in the plane) and lowers the RMSDs from the rigid-detector
values to the noise level; the result is shown per panel.

"Within 3 esd" for all 180 centre coordinates is a random event even for exact esds (0.9973^180 =
61 % for independent deviates); benchmarks/p6m_recovery.py measures how often it holds over many
noise draws (docs/benchmarks.md).  This seed's draw has two coordinates at 3.1 and 3.3 esd, so the
tests check what calibrated esds guarantee: unit spread, >= 98 % within 3 esd, and each module's
3-vector inside its covariance ellipsoid."""

import numpy as np
import pytest

import xrefine
from xrefine.io import read_experiments, read_reflections
from xrefine.report import summary_text
from xrefine.simulation import simulate


@pytest.fixture(scope="module")
def p6m(tmp_path_factory):
    d = tmp_path_factory.mktemp("p6m")
    simulate("thaumatin-p6m-60", str(d), 0)
    truth = read_experiments(str(d / "truth.expt"))
    start = read_experiments(str(d / "start.expt"))
    table = read_reflections(str(d / "observed.refl"))
    modules = xrefine.refine(start, table, scan_varying="false", detector__hierarchy_level=1)
    rigid = xrefine.refine(start, table, scan_varying="false")
    return truth, modules, rigid


def _centre_errors(truth, refined):
    """refined - true module centre (um) along the true module axes, per panel."""
    out = []
    for pt, pr in zip(truth[0].detector.panels, refined[0].detector.panels):
        w, h = (0.5 * v for v in pt.size_mm)
        ct = pt.origin + w * pt.fast + h * pt.slow
        cr = pr.origin + w * pr.fast + h * pr.slow
        basis = np.array([pt.fast, pt.slow, np.cross(pt.fast, pt.slow)])
        out.append(1000 * basis @ (cr - ct))
    return np.array(out)


def test_module_offsets_within_their_esds(p6m):
    truth, modules, _ = p6m
    assert sum(not p["fixed"] for p in modules.parameters) == 366
    esd = np.array([p["offset_esd_um"] for p in sorted(modules.panels, key=lambda p: p["panel"])])
    z = _centre_errors(truth, modules.experiments) / esd
    assert np.median(esd[:, :2]) < 10  # esds of a few um in the plane
    # esds mean what they say: unit spread, and the 180 offsets within 3 esd (allowing the one
    # or two beyond that 180 normal draws give about one time in ten)
    assert 0.8 < np.sqrt(np.mean(z**2)) < 1.2
    assert np.mean(np.abs(z) <= 3) >= 0.98 and np.max(np.abs(z)) < 4, np.abs(z).max(axis=0)
    # and the errors were real: the ideal module grid, refined as one rigid detector, leaves
    # the modules many esds from their true places
    grid_errors = _centre_errors(truth, p6m[2].experiments)
    assert np.median(np.abs(grid_errors[:, :2]) / esd[:, :2]) > 3


def test_module_offsets_within_their_covariance_ellipsoids(p6m):
    """Off-centre, a module's fast (or slow) offset and its offset along the normal are almost
    the same motion of its spots (correlations up to 0.99), so the 3 x 3 covariance of each
    module's centre is the right yardstick: m^2 = e' C^-1 e has mean 3 and lies below the
    chi-square(3) quantile 14.16 (the 99.73 % of +-3 sigma) for all but about one module in 370."""
    truth, modules, _ = p6m
    panels = sorted(modules.panels, key=lambda p: p["panel"])
    cov = np.array([p["offset_cov_um2"] for p in panels])
    assert np.allclose(np.sqrt(np.einsum("nii->ni", cov)), [p["offset_esd_um"] for p in panels])
    e = _centre_errors(truth, modules.experiments)
    m2 = np.einsum("ni,ni->n", e, np.linalg.solve(cov, e[..., None])[..., 0])
    assert 1.5 < m2.mean() < 6, m2.mean()  # one draw: the modules share the crystal and beam errors
    assert np.sum(m2 > 14.16) <= 1 and m2.max() < 20, np.sort(m2)[-3:]


def test_rmsds_fall_from_rigid_to_noise(p6m):
    _, modules, rigid = p6m
    r_rigid, r_mod = rigid.rmsd_by_experiment[0], modules.rmsd_by_experiment[0]
    assert r_rigid["rmsd_x_px"] > 0.28 and r_rigid["rmsd_y_px"] > 0.28  # the noise is 0.25
    assert min(r_rigid["rmsd_x_px"] / r_mod["rmsd_x_px"], r_rigid["rmsd_y_px"] / r_mod["rmsd_y_px"]) > 1.15
    for k in ("rmsd_x_px", "rmsd_y_px", "rmsd_z_images"):
        assert 0.23 < r_mod[k] < 0.27, (k, r_mod[k])
    assert len(modules.rmsd_by_panel) == 60
    assert max(r["rmsd_x_px"] for r in modules.rmsd_by_panel) < 0.3


def test_result_is_shown_per_panel(p6m):
    text = summary_text(p6m[1])
    assert "By panel" in text
    assert sum(line.startswith("     0 ") for line in text.splitlines()) >= 60
