"""analysis/outputs: every output defined once (title, population, machine columns, display,
method), and what each renderer gets from that one definition: the machine columns of every
output on the demo as declared, the footnotes (cells, method, filter, population and N, cut-off),
and the display rows the CLI, the reports and the dashboard all show."""
from __future__ import annotations

import re
import pandas as pd
import pytest

from analysis.outputs import (OUTPUTS, TableUnavailable, build_table, caption, display_table, footnotes,
                              population_text)
from data_access.view_base import BlindingError
from data_access.views import open_view


@pytest.fixture(scope="module")
def views(demo_snapshot):
    return {"blinded": open_view(demo_snapshot, "steering"),
            "unblinded": open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation")}


def _build(name, view):
    try:
        return build_table(name, view, since="2019-01-01")
    except (TableUnavailable, BlindingError):
        return None


def test_every_output_is_defined_completely():
    for name, spec in OUTPUTS.items():
        assert spec.name == name and spec.title and spec.title[0].isupper(), name
        assert spec.population in ("ITT", "SAF", "screened", "all"), name
        assert spec.columns and len(set(spec.columns)) == len(spec.columns), name
        assert not spec.title.endswith("."), name                 # a caption adds its own full stop


@pytest.mark.parametrize("kind", ["blinded", "unblinded"])
def test_every_output_builds_exactly_its_declared_columns(kind, views):
    """The machine table (the CSV for QC double programming) has the declared columns, in order:
    all of them on the demo, except those the demo does not apply (projection after recruitment)."""
    view, built = views[kind], 0
    for name, spec in OUTPUTS.items():
        machine = _build(name, view)
        if machine is None:
            continue
        built += 1
        expected = tuple(c for c in spec.columns if not (c == "group" and view.blinded and spec.listing))
        assert tuple(machine.columns) == expected, (name, list(machine.columns))   # pooled listings: no group
    assert built >= (26 if kind == "blinded" else 32)


def test_a_build_that_adds_an_undeclared_column_fails_loudly(views, monkeypatch):
    from dataclasses import replace
    import analysis.outputs as outputs
    spec = OUTPUTS["exposure"]
    monkeypatch.setitem(outputs.OUTPUTS, "exposure",
                        replace(spec, build=lambda view, **kw: spec.build(view, **kw).assign(extra=1)))
    with pytest.raises(RuntimeError, match=r"undeclared machine columns \['extra'\]"):
        build_table("exposure", views["unblinded"])


def test_footnotes_say_cells_method_population_and_cut(views):
    view = views["unblinded"]
    notes = footnotes("ae", view)
    assert notes[0] == "Cells: participants n (% of the arm) [events]."
    assert "safety population" in notes[1]
    assert re.fullmatch(r"Safety population, N = 220 \(Low-dose IL-2 \d+, Placebo \d+\); data cut-off "
                        r"\d{4}-\d{2}-\d{2}\.", notes[-1])
    effect = " ".join(footnotes("treatment-effect", view))
    assert "Cox model stratified by country and site of onset" in effect and "Efron" in effect
    assert "likelihood-ratio" in " ".join(footnotes("subgroups", view))
    assert "day 640" in " ".join(footnotes("survival", view))           # {landmark} filled in
    assert caption("survival", view).startswith("Deaths, median survival")


def test_blinded_footnotes_are_pooled(views):
    view = views["blinded"]
    assert population_text("ae", view) == "Safety population, N = 220"
    for name, spec in OUTPUTS.items():
        if _build(name, view) is not None:
            text = " ".join(footnotes(name, view, title=True))
            assert not re.search(r"Low-dose|Placebo|IL2LD|PBO|Treg|eosinophil|injection", text, re.I), (name, text)


def test_a_filtered_view_footnote_says_how_the_filter_applies(views):
    """A dashboard-filtered view (UK sites): the recruitment outputs say they follow the filter
    fully and name it; the population N is the filtered one."""
    from dashboard.cell_size import FilteredView
    from dashboard.context import Filters
    uk = FilteredView(views["blinded"], Filters(countries=("UK",)))
    notes = footnotes("enrolment", uk)
    assert any(n.startswith("UK sites only") for n in notes), notes
    plan = " ".join(footnotes("plan", uk))
    assert "Target for UK" in plan and "scaled" in plan
    n_uk = len(uk.table("adsl", columns=["USUBJID"]))
    assert population_text("exposure", uk) == f"Safety population, N = {n_uk}" and n_uk < 220


def test_by_arm_outputs_put_the_arms_side_by_side(views):
    view = views["unblinded"]
    n = {arm: int((build_table("baseline", view).pipe(lambda d: d[(d["group"] == arm) &
                                                                   d["statistic"].isin(["n", "count"])])
                   ["value"].iloc[:1].sum())) for arm in view.arm_levels}
    survival = display_table("survival", build_table("survival", view), view)
    assert survival.columns.tolist()[1:] == [f"{arm} (N={n[arm]})" for arm in view.arm_levels] + ["Total (N=220)"]
    assert survival.iloc[:, 0].tolist()[:2] == ["N", "Deaths"]
    ae = display_table("ae", build_table("ae", view), view)
    assert ae.columns.tolist()[:2] == ["System organ class", "Preferred term"]
    machine = build_table("ae", view)
    any_ae = machine[(machine["soc"] == "Any adverse event")].set_index("group")
    for arm in view.arm_levels:            # the cell is the machine row's numbers, formatted
        r = any_ae.loc[arm]
        assert ae.iloc[0][f"{arm} (N={n[arm]})"] == f"{r.n_subjects} ({r.percent:.1f} %) [{r.n_events}]"


def test_display_labels_alsfrs_items_by_their_names_not_codes(views):
    shown = display_table("alsfrs-items", build_table("alsfrs-items", views["blinded"]), views["blinded"])
    parameters = [p for p in shown["Parameter"] if p]
    assert "ALSFRS-R 1 Speech" in parameters and not any(re.fullmatch(r"ALSFR\w+", p) for p in parameters)
    assert "Item" not in shown.columns


def test_one_definition_cli_and_report_show_the_same_cells(demo_snapshot, tmp_path):
    """`mirocals table survival --display` prints the same cells as display_table (the one
    function the report's `R.output` and the dashboard call)."""
    from tests.test_cli import run
    view = open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation")
    expected = display_table("survival", build_table("survival", view), view)
    status, out, err = run("table", "survival", "--data", str(demo_snapshot), "--view", "unblinded", "--allocation",
                           str(demo_snapshot / "allocation"), "--display")
    assert status == 0, err
    from io import StringIO
    printed = pd.read_csv(StringIO(out), dtype=str, keep_default_na=False)
    assert printed.values.tolist() == expected.astype(str).values.tolist()
    status, md, err = run("table", "ae", "--data", str(demo_snapshot), "--view", "blinded", "--display", "--format", "md")
    assert status == 0, err
    assert "Cells: participants n (% of the arm) [events]." in md
    assert re.search(r"Safety population, N = 220; data cut-off", md)


def test_report_output_emits_caption_and_footnotes(demo_snapshot, tmp_path, monkeypatch):
    """Report.output: the display table, the caption (title, population and N, cut-off) and the
    footnotes below, from the same definition."""
    from reports import report_lib
    shown = []
    monkeypatch.setattr(report_lib, "display", lambda md: shown.append(md.data))      # IPython's output
    R = report_lib.Report("dsmb-open", demo_snapshot, out_dir=tmp_path)
    shown.clear()
    R.output("exposure")
    md = shown[0]
    assert ": Treatment exposure: cycles of study drug received. Safety population, N = 220; data cut-off" in md
    assert "*Cycles received to the cut-off" in md
    assert "| Cycles received, mean |" in md.replace("  ", " ") or "Cycles received, mean" in md


def test_enrolment_figure_is_the_enrolment_table_as_percent_of_target(views):
    from analysis.outputs import build_figure
    view = views["blinded"]
    enrol = build_table("enrolment", view).set_index("site_id")
    bar = build_figure("enrolment", view).data[0]
    pct = list(bar.x)
    assert pct == sorted(pct)[::-1] or pct == sorted(pct)             # sorted
    for label, x, text in zip(bar.y, bar.x, bar.text):
        site = label.split(" ")[0]
        r = enrol.loc[site]
        assert label == f"{site} {r.site_name}"                        # names, not codes alone
        assert x == pytest.approx(100 * r.randomised / r.target)
        assert text == f"{r.randomised}/{r.target} ({100 * r.randomised / r.target:.0f} %)"


def test_balance_heatmap_leaves_structural_zeros_blank_and_adds_totals(views):
    import numpy as np
    from analysis.outputs import build_figure
    view = views["blinded"]
    fig = build_figure("balance", view)
    cells, margins = fig.data[0], fig.data[1]
    z, x, y = np.array(cells.z, dtype=float), list(cells.x), list(cells.y)
    assert x[-1] == "Total" and y[-1] == "All sites"
    balance = build_table("balance", view)
    countries = {s.id: s.country for s in view.study.sites}
    for i, label in enumerate(y[:-1]):
        site = label.split(" ")[0]
        for j, stratum in enumerate(x[:-1]):
            if stratum.split("/")[0] != countries[site]:
                assert np.isnan(z[i, j]), (site, stratum)             # a French site has no UK stratum
            else:
                n = balance[(balance["site_id"] == site) & (balance["stratum"] == stratum)]["n"].sum()
                assert z[i, j] == n
    m = np.array(margins.z, dtype=float)
    margin = balance[balance["site_id"] == "All"].set_index("stratum")["n"]     # the strata, then their Total
    assert m[-1, -1] == margin.drop("Total").sum() == margin["Total"] == len(view.table("adsl", columns=["USUBJID"]))
