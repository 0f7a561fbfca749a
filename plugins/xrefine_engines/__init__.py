"""xrefine_engines plugin."""
