"""xrefine: refinement of X-ray diffraction experiment geometry against observed centroids.

Public API: the models (`xrefine.models`), DIALS files (`xrefine.io`), `ReflectionTable`,
the interfaces for plugins (`xrefine.parameters`, `xrefine.predictor`, `xrefine.engine`,
`xrefine.outliers`, `xrefine.hookspecs`) and `xrefine.refine(...)`.
"""

from .errors import InputError
from .models import Beam, Crystal, Detector, DetectorGroup, Experiment, ExperimentList, Goniometer, Panel, Scan
from .reflections import Flags, ReflectionTable
from .refine import RefinementResult, refine  # noqa: E402  (the function shadows the module name)

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "Beam",
    "Crystal",
    "Detector",
    "DetectorGroup",
    "Experiment",
    "ExperimentList",
    "Goniometer",
    "Panel",
    "Scan",
    "Flags",
    "ReflectionTable",
    "refine",
    "RefinementResult",
]
