"""Registers the detector parameterisations and their options."""

from xrefine.config import Option
from xrefine.errors import InputError
from xrefine.hookspecs import hookimpl

from .factory import PANEL_MODES, make_detector_parameterisation


class LevelsOption(Option):
    """An option holding one hierarchy depth (an int) or several (a sorted list of distinct
    ints): ``1``, ``0,1`` or ``"1 2"`` on the command line, ``1`` or ``[0, 1]`` in TOML."""

    def parse(self, value, origin):
        words = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
        try:
            if any(isinstance(w, bool) or (isinstance(w, float) and not w.is_integer()) for w in words):
                raise ValueError
            levels = [int(w) for w in words]
        except ValueError:
            levels = []
        if not levels or min(levels) < 0:
            raise InputError(
                f"{origin}: {self.key}={value!r} is not a depth (a whole number >= 0) or a list of depths such as 0,1"
            )
        levels = sorted(set(levels))
        return levels[0] if len(levels) == 1 else levels


@hookimpl
def xrefine_config_options():
    return [
        Option("detector.fix", [], "list", "detector parameters to fix: all, position, orientation, distance, 0-based indices, or parts of names (every parameter whose name contains it: Tau1, Group3Tau; note Group1 also matches Group10-19)"),
        Option("detector.fix_groups", [], "list", "detector blocks to fix whole, named exactly: Group3, Level1Group3 (Detector2Group3 for one detector of several), or the name of a group or panel in the detector file; with several levels, fixing one child per parent removes the motions parent and children share"),
        LevelsOption("detector.hierarchy_level", 0, "int list", "depth(s) of the detector hierarchy whose nodes refine as rigid blocks (0: whole detector; 0,1: the detector and each of its groups at once, each group riding on the detector)"),
        Option("detector.panels", "automatic", "choice", "how a multi-panel detector is split into rigid blocks", choices=PANEL_MODES),
    ]


def build(experiments, config):
    out = []
    for n, detector in enumerate(experiments.unique("detector"), start=1):
        ids = experiments.indices_using(detector)
        p = make_detector_parameterisation(
            detector, experiments[ids[0]].beam, ids, name=f"Detector{n}", fix=[] if config["detector.fix"] in (["none"], ["None"]) else config["detector.fix"],
            hierarchy_level=config["detector.hierarchy_level"], panels=config["detector.panels"],
            fix_groups=config["detector.fix_groups"],
        )
        if p.num_free:
            out.append(p)
    return out


@hookimpl
def xrefine_parameterisations():
    return {"detector": build}
