"""xrefine_outliers plugin: centroid-outlier detectors (MATH.md §8.1).

`MCDDetector` (FAST-MCD robust Mahalanobis distances, the default for scans) and
`TukeyDetector` (per-column Tukey fences) implement `xrefine.outliers.OutlierDetector`.
"""

from .mcd import MCDDetector, MCDEstimate
from .tukey import TukeyDetector, tukey_hinges

__all__ = ["MCDDetector", "MCDEstimate", "TukeyDetector", "tukey_hinges"]
