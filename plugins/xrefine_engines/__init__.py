"""Minimisation engines: Gauss-Newton, Levenberg-Marquardt, and scipy.optimize.least_squares peers."""
