"""Stratum balance: randomised subjects by randomisation stratum and site."""
from dashboard import widgets
from dashboard.figures import filter_caption, show_page_figures

PAGE = "balance"
ctx = widgets.page_setup(PAGE, "Stratum balance")
show_page_figures(ctx, PAGE, "balance")
note = filter_caption(ctx, "balance")
widgets.show_named_table(ctx, PAGE, "balance", caption=note and
                         f"Stratum balance by site (data cut-off {ctx.snapshot.cut_date}). {note}")
