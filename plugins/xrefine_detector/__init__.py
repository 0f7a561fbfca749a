"""xrefine_detector plugin: single-panel, multi-panel and hierarchical detector parameterisations.

Every parameterisation is a set of rigid blocks (Dist, Shift1, Shift2 in mm; Tau1-3 in mrad;
MATH.md 4.4 and 4.5), each moving one node of the detector hierarchy, at one depth of the
hierarchy or several at once (each block riding on the blocks above it); the state kind is
``detector.d``.  Build one with `make_detector_parameterisation`.
"""

from .factory import FIX_PRESETS, PANEL_MODES, make_detector_parameterisation
from .parameterisation import DetectorParameterisation
from .rigid_group import PARAMETER_NAMES, RigidGroup

__all__ = [
    "make_detector_parameterisation",
    "DetectorParameterisation",
    "RigidGroup",
    "PARAMETER_NAMES",
    "PANEL_MODES",
    "FIX_PRESETS",
]
