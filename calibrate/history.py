"""The canonical CRM history, as calibrators import it.

Its home is ``salesim.history``: the demo generator writes the same shape, and the simulator
must not import calibrate. This module keeps ``salesim.calibrate.history`` working for the
code and notebooks that import it.
"""

from salesim.history import (
    ACTIVITY_COLUMNS,
    OPPORTUNITY_COLUMNS,
    OPTIONAL_OPPORTUNITY_COLUMNS,
    REP_COLUMNS,
    STAGE_HISTORY_COLUMNS,
    STATUSES,
    History,
    cut,
    earliest,
    latest,
)

__all__ = [
    "ACTIVITY_COLUMNS",
    "OPPORTUNITY_COLUMNS",
    "OPTIONAL_OPPORTUNITY_COLUMNS",
    "REP_COLUMNS",
    "STAGE_HISTORY_COLUMNS",
    "STATUSES",
    "History",
    "cut",
    "earliest",
    "latest",
]
