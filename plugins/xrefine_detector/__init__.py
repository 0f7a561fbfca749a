"""xrefine_detector plugin."""
