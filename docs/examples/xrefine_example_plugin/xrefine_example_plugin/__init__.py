"""An example xrefine plugin: the ``sigma-clip`` centroid-outlier detector and a step recorder.

The hook implementations are in `plugin.py`, which the entry point in pyproject.toml names; the
detector itself is in `sigma_clip.py`.  docs/plugin-guide.md walks through both.
"""

from .sigma_clip import MAD_TO_SIGMA, SigmaClipDetector

__all__ = ["SigmaClipDetector", "MAD_TO_SIGMA"]
