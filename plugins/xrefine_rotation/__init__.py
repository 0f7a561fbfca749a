"""xrefine_rotation plugin."""
