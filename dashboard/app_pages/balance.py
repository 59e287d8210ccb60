"""Stratum balance: randomised participants by site (with its name) and randomisation stratum,
with totals per site and per stratum; for unblinded roles each arm within the site (one row per
arm). A stratum a site cannot have (a French site has no UK stratum) is '—', not a zero. Then the
heatmap of the same table."""
from dashboard import widgets
from dashboard.figures import show_tabs

PAGE = "balance"
ctx = widgets.page_setup(PAGE, "Stratum balance")
widgets.show_named_table(ctx, PAGE, "balance")
show_tabs(ctx, PAGE, [("By site and stratum", ["figure:balance"])])
