"""Simulation presets: realistic synthetic experiments with known truth."""
