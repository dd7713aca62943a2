"""Progress a person can follow in a job's log: how much is done and the time left."""

from __future__ import annotations

import datetime


def eta(elapsed: float, done: int, total: int) -> str:
    """The time left at the pace so far (``elapsed`` seconds for ``done`` of ``total`` units), as
    h:mm:ss; "?" before the first unit is done."""
    if done <= 0:
        return "?"
    left = max(total - done, 0) * elapsed / done
    return str(datetime.timedelta(seconds=round(left)))
