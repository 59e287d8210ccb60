"""Baseline characteristics (Table 1): defined once here."""
from __future__ import annotations

from analysis.display_table import DisplaySpec
from analysis.outputs.base import Output, get_adsl, groups_of

def _baseline(view, **_):
    from analysis.baseline import summarize_baseline, DEFAULT_VARIABLES
    group_col, groups = groups_of(view)
    adsl = get_adsl(view)
    wanted = view.study.baseline_variables or DEFAULT_VARIABLES
    variables = [v for v in wanted if v in adsl.columns]
    return summarize_baseline(adsl, variables, group_col=group_col, groups=groups)



OUTPUTS = [
    Output("baseline", "Baseline characteristics", _baseline, ("variable", "level", "statistic", "group", "value"),
           display=DisplaySpec(),
           method="Mean (SD) and median (Q1-Q3) for continuous characteristics, n (%) for categorical ones; no "
                  "p-values (CONSORT 2025)."),
]
