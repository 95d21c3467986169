"""``python -m entity_unlearn ...``: the command line, also as launchers run it (``accelerate launch -m entity_unlearn eval ...``)."""

from entity_unlearn.cli import run

run()
