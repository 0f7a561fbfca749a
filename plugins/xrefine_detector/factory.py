"""Build a detector parameterisation the way dials.refine chooses one.

`panels` selects how the detector is split into rigid blocks and where each block pivots
(facts from DIALS's detector parameterisations):

* ``single``: one panel; reference = the panel centre, basis = the panel frame; the panel moves.
* ``multiple``: the whole detector as one block; basis and reference = the frame and centre of
  the panel whose own centre is nearest the direct-beam intersection with its plane.
* ``hierarchical``: one block per node at depth `hierarchy_level` of the hierarchy (0 = the
  root, i.e. the whole detector); basis = the node's frame, reference = the point where the line
  from the lab origin through the mean of its panels' centres meets the node's plane (the foot of
  the perpendicular from the lab origin if that line misses the plane, which for a plane through
  the lab origin is the lab origin, as in DIALS).  Parameters are named Group1Dist ... GroupNTau3.
  Several depths (e.g. ``[0, 1]``) refine at once, each node riding on the blocks above it
  (parameterisation.py); parameters are then named Level0Group1Dist, Level1Group3Tau2, ...
* ``automatic`` (default): ``single`` for one panel, else ``hierarchical``, as dials.refine does
  (every DIALS detector has a hierarchy).
"""

from __future__ import annotations

import re

import numpy as np
from xrefine.errors import InputError
from xrefine.models import Beam, Detector, DetectorGroup

from .parameterisation import DetectorParameterisation
from .rigid_group import PARAMETER_NAMES, RigidGroup

__all__ = ["make_detector_parameterisation", "PANEL_MODES", "FIX_PRESETS"]

PANEL_MODES = ("automatic", "single", "multiple", "hierarchical")

FIX_PRESETS = {
    "position": ("Dist", "Shift1", "Shift2"),
    "orientation": ("Tau",),
    "distance": ("Dist", "Tau2", "Tau3"),
}


def make_detector_parameterisation(
    detector: Detector,
    beam: Beam,
    experiment_ids,
    name: str = "Detector1",
    fix=(),
    hierarchy_level=0,
    panels: str = "automatic",
    fix_groups=(),
) -> DetectorParameterisation:
    """The detector parameterisation dials.refine would build, as a ``detector.d`` Parameterisation.

    `detector` is moved in place by the parameterisation; `beam` is needed only to find the
    panel nearest the direct beam (``panels="multiple"``) and may be None otherwise.
    `experiment_ids` are the experiments that share this detector; `name` prefixes parameter
    names in reports ('Detector1Group1Dist').  `fix` is a string or a list of: 'all',
    'position' (Dist, Shift1, Shift2), 'orientation' (Tau1-3), 'distance' (Dist, Tau2, Tau3),
    0-based parameter indices, or parts of parameter names ('Tau3', 'Group2', 'Shift'), each
    fixing every parameter whose full name contains it, as DIALS's fix_list does: 'Group3Tau'
    fixes Tau1-3 of Group3 alone, but 'Group1' also matches Group10-Group19.
    `hierarchy_level` is the depth of the hierarchy whose nodes become independent blocks, or a
    list of depths refined at once (``panels="hierarchical"`` only); `panels` is one of
    PANEL_MODES (module docstring).  `fix_groups` fixes whole blocks named exactly: by the
    block's name as in the parameter names ('Group3', 'Level1Group3', 'Detector1Group3') or by
    the name of its node in the detector file (a group or panel name such as 'row-00_col-02').
    """
    if panels not in PANEL_MODES:
        raise InputError(f"detector.panels={panels!r} is not one of {', '.join(PANEL_MODES)}.")
    if panels == "automatic":
        panels = "single" if len(detector) == 1 else "hierarchical"

    if panels == "single":
        if len(detector) != 1:
            raise InputError(
                f"{name}: detector.panels=single needs a one-panel detector, this one has "
                f"{len(detector)} panels; use multiple or hierarchical."
            )
        levels = [[_panel_block(detector, 0, prefix="")]]
    elif panels == "multiple":
        levels = [[_whole_detector_block(detector, beam, name)]]
    else:
        depths = _levels(hierarchy_level, name)
        prefix = "Level{}Group" if len(depths) > 1 else "Group"
        levels = [_hierarchy_blocks(detector, depth, name, prefix.format(depth)) for depth in depths]

    parameterisation = DetectorParameterisation(detector, levels, experiment_ids, name)
    _apply_fix(parameterisation, fix)
    _apply_fix_groups(parameterisation, fix_groups)
    return parameterisation


# ------------------------------------------------------------------------------ blocks
def _panel_centres(detector: Detector, indices) -> np.ndarray:
    """Lab positions (m, 3) of the centres of the given panels."""
    d = np.stack([detector[i].d for i in indices])
    half = 0.5 * np.array([detector[i].size_mm for i in indices])
    return d[:, :, 2] + half[:, :1] * d[:, :, 0] + half[:, 1:] * d[:, :, 1]


def _panel_block(detector: Detector, index: int, prefix: str) -> RigidGroup:
    panel = detector[index]
    centre = _panel_centres(detector, [index])[0]
    return RigidGroup(index, [index], panel.fast, panel.slow, centre, prefix)


def _whole_detector_block(detector: Detector, beam: Beam, name: str) -> RigidGroup:
    if beam is None:
        raise InputError(f"{name}: detector.panels=multiple needs the beam to find the panel nearest the direct beam.")
    d = np.stack([p.d for p in detector])
    v = np.linalg.solve(d, np.broadcast_to(beam.s0, (len(detector), 3))[..., None])[..., 0]
    size = np.array([p.size_mm for p in detector])
    in_front = v[:, 2] > 0
    if not in_front.any():
        raise InputError(
            f"{name}: the direct beam meets no panel plane in front of the sample, so there is no "
            "panel nearest the beam; use detector.panels=hierarchical."
        )
    beam_xy = v[:, :2] / np.where(in_front, v[:, 2], 1.0)[:, None]
    separation = np.where(in_front, np.linalg.norm(beam_xy - 0.5 * size, axis=1), np.inf)
    mid = int(np.argmin(separation))
    centre = _panel_centres(detector, [mid])[0]
    return RigidGroup(detector.root, list(range(len(detector))), detector[mid].fast, detector[mid].slow, centre)


def _levels(hierarchy_level, name: str) -> list:
    """The refined depths, ascending and distinct, from an int or a list of ints."""
    levels = list(hierarchy_level) if isinstance(hierarchy_level, (list, tuple, np.ndarray)) else [hierarchy_level]
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, np.integer, float)) or int(level) != level or level < 0:
            raise InputError(
                f"{name}: detector.hierarchy_level must be a whole number >= 0 or a list of them, got {hierarchy_level!r}.")
    if not levels:
        raise InputError(f"{name}: detector.hierarchy_level is an empty list; give at least one depth (0: the whole detector).")
    return sorted({int(level) for level in levels})


def _hierarchy_blocks(detector: Detector, level: int, name: str, prefix: str) -> list:
    nodes = detector.groups_at_level(level)
    members = [n.panel_indices() if isinstance(n, DetectorGroup) else [n] for n in nodes]
    covered = np.zeros(len(detector), dtype=bool)
    for m in members:
        covered[m] = True
    if not covered.all():
        raise InputError(
            f"{name}: detector.hierarchy_level={level} is deeper than the hierarchy above panel(s) "
            f"{np.flatnonzero(~covered).tolist()}; the detector hierarchy has depth {detector.depth()}."
        )
    blocks = []
    # empty groups would give parameters that move nothing and an indeterminate normal matrix
    for node, panel_ids in ((n, m) for n, m in zip(nodes, members) if m):
        fast, slow, origin = detector.lab_frame(node)
        reference = _pivot_on_plane(fast, slow, origin, _panel_centres(detector, panel_ids).mean(axis=0))
        blocks.append(RigidGroup(node, panel_ids, fast, slow, reference, prefix=f"{prefix}{len(blocks) + 1}"))
    return blocks


def _pivot_on_plane(fast, slow, origin, centroid) -> np.ndarray:
    """Where the line from the lab origin through `centroid` meets the plane (origin; fast, slow);
    the foot of the perpendicular from the lab origin when the line is parallel to the plane or
    the plane contains the lab origin (where DIALS falls back to the lab origin itself)."""
    normal = np.cross(fast, slow)
    normal /= np.linalg.norm(normal)
    distance = origin @ normal
    along = centroid @ normal
    tiny = 1e-12
    if abs(distance) <= tiny * np.linalg.norm(origin) or abs(along) <= tiny * np.linalg.norm(centroid):
        return distance * normal
    return centroid * (distance / along)


# ------------------------------------------------------------------------------ fixing
def _apply_fix(parameterisation: DetectorParameterisation, fix) -> None:
    if fix is None:
        return
    if isinstance(fix, (str, int)):
        fix = [fix]
    full_names = [parameterisation.name + p.name for p in parameterisation.parameters]
    for item in fix:
        if isinstance(item, str) and item.strip().lstrip("-").isdigit():
            item = int(item)
        if isinstance(item, (int, np.integer)):
            if not 0 <= item < len(full_names):
                raise InputError(
                    f"{parameterisation.name}: detector.fix index {item} is out of range; "
                    f"there are {len(full_names)} parameters (0-based)."
                )
            parameterisation.parameters[item].fixed = True
            continue
        item = item.strip()
        if item == "all":
            patterns = [""]
        else:
            patterns = FIX_PRESETS.get(item, (item,))
        hits = [i for i, n in enumerate(full_names) if any(pat in n for pat in patterns)]
        if not hits:
            raise InputError(
                f"{parameterisation.name}: detector.fix entry {item!r} matches no parameter; use all, "
                f"{', '.join(FIX_PRESETS)}, an index, or part of a name such as {', '.join(PARAMETER_NAMES)}."
            )
        for i in hits:
            parameterisation.parameters[i].fixed = True


def _node_name(detector: Detector, node) -> str:
    return node.name if isinstance(node, DetectorGroup) else detector[node].name


def _apply_fix_groups(parameterisation: DetectorParameterisation, fix_groups) -> None:
    if isinstance(fix_groups, str):
        fix_groups = [fix_groups]
    detector = parameterisation.model
    for entry in fix_groups or ():
        entry = entry.strip()
        owner = re.match(r"(Detector\d+)(?=Level|Group)", entry)
        if owner and owner.group(1) != parameterisation.name:
            continue  # another detector's block, in a job with several detectors
        hits = [
            ig for ig, g in enumerate(parameterisation.groups)
            if entry == _node_name(detector, g.node) or (g.prefix and entry in (g.prefix, parameterisation.name + g.prefix))
        ]
        if not hits:
            examples = [g.prefix for g in parameterisation.groups[:2] if g.prefix]
            raise InputError(
                f"{parameterisation.name}: detector.fix_groups entry {entry!r} names no refined block; give a "
                f"block name such as {' or '.join(examples) or 'Group1 (hierarchical blocks only)'}, or the name of a "
                "group or panel at a refined depth of the detector hierarchy."
            )
        for ig in hits:
            for p in parameterisation.parameters[6 * ig : 6 * ig + 6]:
                p.fixed = True
