"""Baseline characteristics (Table 1), ITT: pooled for blinded roles, by arm and overall when
unblinded. Mean (SD), median (Q1-Q3), n (%); no p-values."""
from analysis.baseline import format_table1
from analysis.tables import TABLES

from dashboard import state, widgets

PAGE = "baseline"
ctx = widgets.page_setup(PAGE, "Baseline characteristics")
try:
    baseline = state.get_table(ctx, "baseline")
except state.SmallCellError as exc:      # a blinded filter below the minimum cell size
    widgets.show_small_cell_notice(exc)
else:
    table1 = format_table1(baseline, labels=state.get_view(ctx).labels("adsl"))
    widgets.show_table(ctx, PAGE, table1, "baseline",
                       f"{TABLES['baseline'].description} (data cut-off {ctx.snapshot.cut_date})")
