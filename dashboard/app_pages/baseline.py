"""Baseline characteristics (Table 1), ITT: pooled for blinded roles, by arm and overall when
unblinded. Mean (SD), median (Q1-Q3), n (%); no p-values."""
from dashboard import widgets

PAGE = "baseline"
ctx = widgets.page_setup(PAGE, "Baseline characteristics")
widgets.show_named_table(ctx, PAGE, "baseline")
