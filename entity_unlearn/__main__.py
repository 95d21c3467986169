"""``python -m entity_unlearn ...``: the command line, also as launchers run it (``accelerate launch -m entity_unlearn eval ...``)."""

import sys

from entity_unlearn.cli import main

sys.exit(main())
