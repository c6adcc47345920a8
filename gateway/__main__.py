"""``python -m gateway`` runs the ``hlrgw`` CLI."""

import sys

from gateway.cli import main

sys.exit(main())
