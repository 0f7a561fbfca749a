"""Registers the detector parameterisations and their options."""

from xrefine.config import Option
from xrefine.hookspecs import hookimpl

from .factory import PANEL_MODES, make_detector_parameterisation


@hookimpl
def xrefine_config_options():
    return [
        Option("detector.fix", [], "list", "detector parameters to fix: all, position, orientation, distance, or (parts of) names such as Tau1 or Group2"),
        Option("detector.hierarchy_level", 0, "int", "depth of the detector hierarchy whose groups refine as independent rigid blocks (0: whole detector)"),
        Option("detector.panels", "automatic", "choice", "how a multi-panel detector is split into rigid blocks", choices=PANEL_MODES),
    ]


def build(experiments, config):
    out = []
    for n, detector in enumerate(experiments.unique("detector"), start=1):
        ids = experiments.indices_using(detector)
        p = make_detector_parameterisation(
            detector, experiments[ids[0]].beam, ids, name=f"Detector{n}", fix=config["detector.fix"],
            hierarchy_level=config["detector.hierarchy_level"], panels=config["detector.panels"],
        )
        if p.num_free:
            out.append(p)
    return out


@hookimpl
def xrefine_parameterisations():
    return {"detector": build}
