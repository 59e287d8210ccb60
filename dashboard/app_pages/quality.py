"""Data quality: visit completeness by site (done, missed, overdue), the visits overdue at the
cut, data-entry lag by site, and the validation problems of the snapshot
(``data_access.validate``). Nothing here is by arm: blinded and unblinded roles see the same
completeness tables; blinded roles get the validation checks that need no allocation."""
import streamlit as st

from analysis.completeness import LATE_ENTRY_DAYS
from analysis.outputs import TableUnavailable

from dashboard import caches, cell_size, widgets
from dashboard.figures import show_figure_of

PAGE = "quality"
ctx = widgets.page_setup(PAGE, "Data quality")
cut = ctx.snapshot.cut_date

tab_comp, tab_overdue, tab_late, tab_valid = st.tabs(
    ["Completeness by site", "Overdue visits", "Late data entry", "Validation problems"])

with tab_comp:
    show_figure_of(ctx, PAGE, "completeness")
    widgets.show_named_table(
        ctx, PAGE, "completeness", "Expected = done + missed + overdue; not due = target day after the cut; "
        "not expected = died or discontinued before the target day.")
    with st.expander("Every scheduled visit of every subject"):
        widgets.show_named_table(ctx, PAGE, "visit-status")

with tab_overdue:
    try:
        overdue = caches.get_table(ctx, "overdue-visits")
    except TableUnavailable as exc:      # e.g. a trial delivered without a functional score
        st.info(str(exc))
    except cell_size.SmallCellError as exc:  # a blinded filter below the minimum cell size
        widgets.show_small_cell_notice(exc)
    else:
        if overdue.empty:
            st.success(f"No visit is overdue at the cut ({cut}).")
        else:
            widgets.show_named_table(ctx, PAGE, "overdue-visits", "Target day reached, window still open, no "
                                     "assessment.")

with tab_late:
    try:
        lag = caches.get_table(ctx, "entry-lag")
    except cell_size.SmallCellError as exc:  # a blinded filter below the minimum cell size
        widgets.show_small_cell_notice(exc)
        lag = None
    if lag is None:
        pass
    elif lag.empty:
        st.info("This snapshot has no data-entry dates (ENTDT), so the entry lag cannot be measured.")
    else:
        show_figure_of(ctx, PAGE, "entry-lag")
        widgets.show_named_table(ctx, PAGE, "entry-lag", f"Late = entered more than {LATE_ENTRY_DAYS} days after "
                                 "the visit (ALSFRS-R forms) or the AE start.")

with tab_valid:
    try:
        tables = caches.get_validation_tables(ctx)
    except cell_size.SmallCellError as exc:  # the problems name subjects
        widgets.show_small_cell_notice(exc)
        st.stop()
    problems = tables["validation-problems"][0]
    c1, c2, c3 = st.columns(3)
    c1.metric("Errors", int((problems["severity"] == "error").sum()))
    c2.metric("Warnings", int((problems["severity"] == "warning").sum()))
    c3.metric("Subjects concerned", int(problems["subject"].dropna().nunique()))
    if problems.empty:
        st.success("No validation problems in this snapshot.")
    captions = {"validation-by-rule": "Problems by rule",
                "late-data-entry": f"Late data entry records (more than {LATE_ENTRY_DAYS} days)",
                "validation-problems": "All problems"}
    for name, caption in captions.items():
        machine, shown = tables[name]
        widgets.show_table(ctx, PAGE, machine, name, caption, shown=shown)
