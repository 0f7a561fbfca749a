"""Reading and writing DIALS files."""
