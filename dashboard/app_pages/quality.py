"""Data quality, for the data manager: visit completeness by site, the missed and overdue visits
to chase (filterable by site, subject, visit and status), data-entry lag by site, and the
validation problems of the snapshot (``data_access.validate``; filterable by site, dataset, rule
and severity, with a query list per site in CSV and XLSX). Nothing here is by arm: blinded and
unblinded roles see the same visit tables; blinded roles get the validation checks that need no
allocation, run through the blinded view."""
import pandas as pd
import streamlit as st

from analysis.completeness import LATE_ENTRY_DAYS
from analysis.outputs import OUTPUTS, TableUnavailable

from dashboard import caches, cell_size, downloads, snapshots, widgets
from dashboard.figures import lazy_tabs, show_figure_of

PAGE = "quality"
MAX_SHOWN = 500            # problems shown at a time (st.table: every message whole, wrapped)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ctx = widgets.page_setup(PAGE, "Data quality")
widgets.keep_widget_state(ctx, "mv_site", "mv_subject", "mv_visit", "mv_status", "vp_site", "vp_dataset", "vp_rule",
                          "vp_severity", "q_site")   # filters kept while their tab is closed
cut = ctx.snapshot.cut_date
site_names = {s.id: s.name for s in snapshots.load_study_config(ctx.snapshot.clinical_dir).sites}


def _site_label(site: str) -> str:
    return f"{site} · {site_names[site]}" if site_names.get(site) else str(site)


def _filter_words(parts: list[tuple[str, list]]) -> str | None:
    chosen = [f"{what} {', '.join(map(str, values))}" for what, values in parts if values]
    return "Filtered on this page: " + "; ".join(chosen) + "." if chosen else None


def show_missed_visits() -> None:
    """The missed and overdue visits (output ``missed-visits``), filtered on the page; the table
    shown and its CSV follow the filters."""
    name = "missed-visits"
    try:
        listing = caches.get_table(ctx, name)
        shown, notes = caches.get_display(ctx, name)
    except TableUnavailable as exc:          # e.g. a trial delivered without a functional score
        st.info(str(exc))
        return
    except cell_size.SmallCellError as exc:  # a blinded filter below the minimum cell size
        widgets.show_small_cell_notice(exc)
        return
    if listing.empty:
        st.success(f"No visit is missed or overdue at the cut-off ({cut}).")
        return
    st.markdown(f"**{OUTPUTS[name].title}**")
    c_site, c_subject, c_visit, c_status = st.columns(4)
    sites = c_site.multiselect("Site", sorted(listing["site"].astype(str).unique()), format_func=_site_label,
                               key="mv_site", placeholder="All sites")
    subject = c_subject.text_input("Subject", key="mv_subject", placeholder="All (type part of an ID)").strip()
    visit_order = listing.drop_duplicates("AVISITN").sort_values("AVISITN")["AVISIT"].astype(str).tolist()
    visits = c_visit.multiselect("Visit", visit_order, key="mv_visit", placeholder="All visits")
    statuses = c_status.multiselect("Status", ["Missed", "Overdue"], key="mv_status", placeholder="Missed and overdue")
    keep = pd.Series(True, index=listing.index)
    if sites:
        keep &= listing["site"].astype(str).isin(sites)
    if subject:
        keep &= listing["USUBJID"].astype(str).str.contains(subject, case=False, regex=False)
    if visits:
        keep &= listing["AVISIT"].astype(str).isin(visits)
    if statuses:
        keep &= listing["status"].isin([s.lower() for s in statuses])
    rows = listing[keep]
    n_missed, n_overdue = int((rows["status"] == "missed").sum()), int((rows["status"] == "overdue").sum())
    st.caption(f"{len(rows):,} of {len(listing):,} visits: {n_missed:,} missed, {n_overdue:,} overdue.")
    if rows.empty:
        st.info("No missed or overdue visit matches these filters.")
        return
    words = _filter_words([("site", sites), ("subject containing", [subject] if subject else []),
                           ("visit", visits), ("status", statuses)])
    slug = "_".join(v for v in (*sites, subject, *visits, *statuses) if v)
    widgets.show_table(ctx, PAGE, rows.reset_index(drop=True), f"{name}_{slug}" if slug else name,
                       "Target day passed without an assessment: missed (window closed) or overdue (window "
                       "still open).", shown=shown[keep.to_numpy()].reset_index(drop=True),
                       notes=[*notes, *([words] if words else [])], links_to_profile=True)


def show_entry_lag() -> None:
    try:
        lag = caches.get_table(ctx, "entry-lag")
    except cell_size.SmallCellError as exc:  # a blinded filter below the minimum cell size
        widgets.show_small_cell_notice(exc)
        return
    if lag.empty:
        st.info("This snapshot has no data-entry dates (ENTDT), so the entry lag cannot be measured.")
        return
    show_figure_of(ctx, PAGE, "entry-lag")
    widgets.show_named_table(ctx, PAGE, "entry-lag", f"Late = entered more than {LATE_ENTRY_DAYS} days after "
                             "the visit (ALSFRS-R forms) or the AE start.")


def show_validation() -> None:
    """Metrics, problems by rule, every problem (filtered on the page, shown whole) and the query
    list of one site. Nothing but a sentence when there is no problem."""
    try:
        tables = caches.get_validation_tables(ctx)
    except cell_size.SmallCellError as exc:  # the problems name subjects
        widgets.show_small_cell_notice(exc)
        return
    problems, shown = tables["validation-problems"]
    if problems.empty:
        st.success(f"No validation problems in this snapshot (data cut-off {cut}).")
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Errors", int((problems["severity"] == "error").sum()))
    c2.metric("Warnings", int((problems["severity"] == "warning").sum()))
    c3.metric("Subjects concerned", int(problems["subject"].replace("", None).dropna().nunique()))
    c4.metric("Sites concerned", int(problems["site"].replace("", None).dropna().nunique()))
    st.caption("Validation covers the whole snapshot; the sidebar filter does not apply here: filter by site "
               "below." if ctx.filters.active else "Validation covers the whole snapshot.")
    by_rule, by_rule_shown = tables["validation-by-rule"]
    widgets.show_table(ctx, PAGE, by_rule, "validation-by-rule", "Problems by rule", shown=by_rule_shown)

    st.markdown("**Every problem**")
    f_site, f_dataset, f_rule, f_severity = st.columns(4)
    site_values = sorted(s for s in problems["site"].astype(str).unique() if s)
    sites = f_site.multiselect("Site", site_values, format_func=_site_label, key="vp_site", placeholder="All sites")
    datasets = f_dataset.multiselect("Dataset", sorted(problems["dataset"].astype(str).unique()), key="vp_dataset",
                                     placeholder="All datasets")
    rules = f_rule.multiselect("Rule", sorted(shown["Rule"].unique()), key="vp_rule", placeholder="All rules")
    severities = f_severity.multiselect("Severity", sorted(shown["Severity"].unique()), key="vp_severity",
                                        placeholder="Errors and warnings")
    keep = pd.Series(True, index=problems.index)
    for values, column in ((sites, problems["site"].astype(str)), (datasets, problems["dataset"].astype(str)),
                           (rules, shown["Rule"]), (severities, shown["Severity"])):
        if values:
            keep &= column.isin(values).to_numpy()
    rows = problems[keep.to_numpy()].reset_index(drop=True)
    people = shown[keep.to_numpy()].reset_index(drop=True)
    st.caption(f"{len(rows):,} of {len(problems):,} problems" + (
        f"; the first {MAX_SHOWN:,} are shown, the CSV holds them all." if len(rows) > MAX_SHOWN else "."))
    if rows.empty:
        st.info("No problem matches these filters.")
    else:
        st.table(people.head(MAX_SHOWN), hide_index=True)
        stem = widgets._file_stem(ctx, "validation-problems")
        downloads.offer(ctx, PAGE, "Download CSV", f"{stem}.csv", "text/csv",
                        lambda: rows.to_csv(index=False).encode(), key="dl_validation-problems_csv")
    show_query_export(problems, site_values)


def show_query_export(problems: pd.DataFrame, site_values: list[str]) -> None:
    """One site's problems as a query list to send to it, in CSV and XLSX."""
    from data_access.validate import query_list_csv, query_list_xlsx
    st.markdown("**Query list for a site**")
    unplaced = int((problems["site"].astype(str) == "").sum())
    if unplaced:
        st.caption(f"{unplaced:,} problem(s) belong to no site (a file, or a subject no dataset places): they are "
                   "in the list above and its CSV, not in a site's query list.")
    if not site_values:
        return
    site = st.selectbox("Site", site_values, format_func=_site_label, key="q_site")
    n = int((problems["site"].astype(str) == site).sum())
    st.caption(f"{n:,} problem(s) at {_site_label(site)}: one row each (errors first), the rule in words and the "
               "whole message.")
    stem = f"mirocals_queries_{site}_{'unblinded' if ctx.unblinded else 'blinded'}_{cut}"
    left, right, _ = st.columns([1, 1, 4])
    with left:
        downloads.offer(ctx, PAGE, "Download queries (XLSX)", f"{stem}.xlsx", XLSX,
                        lambda: query_list_xlsx(problems, site, cut), key=f"dl_queries_{site}_xlsx")
    with right:
        downloads.offer(ctx, PAGE, "Download queries (CSV)", f"{stem}.csv", "text/csv",
                        lambda: query_list_csv(problems, site), key=f"dl_queries_{site}_csv")


tab_comp, tab_missed, tab_lag, tab_valid = lazy_tabs(      # only the open tab is drawn (issue 13)
    PAGE, ["Completeness by site", "Missed and overdue visits", "Data entry lag", "Validation problems"])

if tab_comp.open:
    with tab_comp:
        show_figure_of(ctx, PAGE, "completeness")
        widgets.show_named_table(
            ctx, PAGE, "completeness", "Expected = done + missed + overdue; not due = target day after the cut; "
            "not expected = died or discontinued before the target day.")
        with st.expander("Every scheduled visit of every subject"):
            widgets.show_named_table(ctx, PAGE, "visit-status")

if tab_missed.open:
    with tab_missed:
        show_missed_visits()

if tab_lag.open:
    with tab_lag:
        show_entry_lag()

if tab_valid.open:
    with tab_valid:
        show_validation()
