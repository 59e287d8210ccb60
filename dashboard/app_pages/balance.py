"""Stratum balance: randomised subjects by randomisation stratum and site."""
from dashboard import widgets
from dashboard.figures import show_page_figures

PAGE = "balance"
ctx = widgets.page_setup(PAGE, "Stratum balance")
show_page_figures(ctx, PAGE, "balance")
widgets.show_named_table(ctx, PAGE, "balance")
