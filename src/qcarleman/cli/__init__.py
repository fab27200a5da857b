"""Command-line interface: ``qcarleman COMMAND ...`` (thin wrappers over the Python API)."""
