"""``python -m server_stub`` runs the same command as ``tracker-server``."""

import sys

from .app import main

sys.exit(main())
