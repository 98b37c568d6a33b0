"""The ``nnfs-fast`` command line (``main``)."""
from nnfs_fast.cli.main import main

__all__ = ["main"]
