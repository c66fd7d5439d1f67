"""The short look-ahead check that every model's tests run on the bundled data."""

from __future__ import annotations

import pandas as pd

from models.validation import LookAheadReport, ModelFactory, look_ahead_check

# With refit_every 5 the i-th origin is reached by a fit i mod 5 days earlier and then
# update: 300 by fit alone, 321 and 342 by fit + 1 and 2 updates. One cut sits at the fit
# origin, one between update origins. (Three origins and two cuts, not the protocol's
# 12 x 4, keep a check at a few seconds: each run fits a fresh model.)
ORIGINS = [300, 321, 342]
CUTS = [300, 330]


def assert_no_look_ahead(factory: ModelFactory, history: pd.DataFrame) -> LookAheadReport:
    """Run the check; fail unless the forecasts up to each cut are unchanged and some
    forecast after it changed (so the check is not vacuous)."""
    report = look_ahead_check(factory, history, ORIGINS, CUTS, seed=7)
    assert report.passed, report.violations
    assert all(report.changed_after.values())
    return report
