"""xrefine_simulate plugin."""
