"""The ``being`` command line (typer)."""
