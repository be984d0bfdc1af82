"""Speed-ups, fenced: code that only makes curate faster, kept out of the stages.

Each speed-up has its own module and its own environment switch; ``CURATE_SPEEDUPS=off``
turns every one off. A speed-up that patches or relies on a library's private names checks
that they exist and falls back to the plain library, with a warning, when they do not.
The plain path is the reference the tests compare each speed-up with. README.md lists them.
"""

from __future__ import annotations

import os

ALL_SWITCH = "CURATE_SPEEDUPS"


def switched_off(variable: str) -> bool:
    """Whether the on/off environment switch ``variable`` says off ("off", "0", "false", "no")."""
    return os.environ.get(variable, "on").strip().lower() in ("off", "0", "false", "no")


def speedup_switched_on(variable: str) -> bool:
    """Neither the switch for all speed-ups nor this one's own switch says off."""
    return not (switched_off(ALL_SWITCH) or switched_off(variable))
