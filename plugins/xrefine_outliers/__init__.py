"""xrefine_outliers plugin."""
