"""xrefine_rotation plugin: the rotation-method predictor and the scan-static beam, crystal
orientation, symmetry-constrained unit-cell and goniometer parameterisations."""

from .beam import BeamParameterisation, make_beam_parameterisation
from .full_scan import predict_all
from .goniometer import GoniometerParameterisation, make_goniometer_parameterisation
from .orientation import CrystalOrientationParameterisation, make_crystal_orientation_parameterisation
from .predictor import RotationPredictor
from .unit_cell import CrystalUnitCellParameterisation, make_crystal_unit_cell_parameterisation

__all__ = [
    "RotationPredictor",
    "predict_all",
    "BeamParameterisation",
    "CrystalOrientationParameterisation",
    "CrystalUnitCellParameterisation",
    "GoniometerParameterisation",
    "make_beam_parameterisation",
    "make_crystal_orientation_parameterisation",
    "make_crystal_unit_cell_parameterisation",
    "make_goniometer_parameterisation",
]
