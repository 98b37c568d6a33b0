"""``python -m nnfs_fast``: the ``nnfs-fast`` command line (see nnfs_fast.cli)."""
import sys

from nnfs_fast.cli import main

sys.exit(main())
