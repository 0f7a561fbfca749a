"""Registers the rotation predictor, the beam/crystal/goniometer parameterisations and their
options."""

from xrefine.config import Option
from xrefine.hookspecs import hookimpl

from .beam import make_beam_parameterisation
from .goniometer import make_goniometer_parameterisation
from .orientation import make_crystal_orientation_parameterisation
from .predictor import RotationPredictor
from .unit_cell import make_crystal_unit_cell_parameterisation


@hookimpl
def xrefine_config_options():
    return [
        Option("beam.fix", ["in_spindle_plane", "wavelength"], "list",
               "beam parameters to fix: all, in_spindle_plane (Mu1), out_spindle_plane (Mu2), wavelength (nu), or names"),
        Option("crystal.orientation.fix", [], "list", "crystal orientation parameters to fix: all, or Phi1..Phi3"),
        Option("crystal.unit_cell.fix", [], "list", "unit-cell parameters to fix: all, or g_param_N"),
        Option("goniometer.fix", ["all"], "list",
               "goniometer parameters to fix: all, in_beam_plane (Gamma1), out_beam_plane (Gamma2), or names; none to refine both"),
    ]


def _fix(config, key):
    words = config[key]
    return [] if words in (["none"], ["None"]) else words


def _models(experiments, kind):
    """(n, model, experiment ids) for every distinct model of a kind used by a rotation scan."""
    out = []
    for model in experiments.unique(kind):
        ids = [i for i in experiments.indices_using(model) if not experiments[i].is_still]
        if ids:
            out.append((len(out) + 1, model, ids))
    return out


def _keep_free(params):
    return [p for p in params if p.num_free]


def build_beams(experiments, config):
    return _keep_free([
        make_beam_parameterisation(beam, experiments[ids[0]].goniometer, ids, f"Beam{n}", _fix(config, "beam.fix"))
        for n, beam, ids in _models(experiments, "beam")
    ])


def build_orientations(experiments, config):
    return _keep_free([
        make_crystal_orientation_parameterisation(c, ids, f"Crystal{n}", _fix(config, "crystal.orientation.fix"))
        for n, c, ids in _models(experiments, "crystal")
    ])


def build_unit_cells(experiments, config):
    return _keep_free([
        make_crystal_unit_cell_parameterisation(c, ids, f"Crystal{n}", _fix(config, "crystal.unit_cell.fix"))
        for n, c, ids in _models(experiments, "crystal")
    ])


def build_goniometers(experiments, config):
    return _keep_free([
        make_goniometer_parameterisation(g, experiments[ids[0]].beam, ids, f"Goniometer{n}", _fix(config, "goniometer.fix"))
        for n, g, ids in _models(experiments, "goniometer")
    ])


@hookimpl
def xrefine_parameterisations():
    return {
        "beam": build_beams,
        "crystal.orientation": build_orientations,
        "crystal.unit_cell": build_unit_cells,
        "goniometer": build_goniometers,
    }


@hookimpl
def xrefine_predictors():
    return {"rotation": RotationPredictor()}
