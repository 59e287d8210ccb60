"""Each page opens with what its reader came for (issue 13), headless (AppTest), for a blinded
(steering) and an unblinded (DSMB) role: one row of tabs with no repeated name, the first tab
and the first table or figure in it; the Recruitment page's projection sentence (or why there is
none) from the cached ``projection`` table; the stratum-balance table by site and stratum."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.test_dashboard_apptest import ARM_TOKENS, _deployment, sign_in, visit  # noqa: F401 (fixture)


# the pages this file checks (the others have tests of their own)
PAGES = ("recruitment.py", "balance.py", "baseline.py", "alsfrs.py", "survival.py", "safety.py")


def _tabs(at) -> list[str]:
    return [t.label for t in at.tabs]


def _values(data) -> list[float]:
    """A plotly array from a chart spec (plotly 6 sends numbers base64-encoded)."""
    if isinstance(data, dict) and "bdata" in data:
        import base64

        import numpy as np
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).tolist()
    return list(data)


def _chart_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"].split("<br>")[0] for c in at.get("plotly_chart")]


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_every_page_has_one_row_of_tabs_without_repeated_names(role):
    from dashboard.pages_registry import pages_for
    at = sign_in(role)
    for page in pages_for(role):
        if page.file not in PAGES:                              # owned elsewhere (quality, audit, ...)
            continue
        visit(at, page.file)
        labels = _tabs(at)
        assert len(labels) == len(set(labels)), (page.file, labels)


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_recruitment_opens_with_the_projection_sentence_and_enrolment_against_target(role, demo_snapshot):
    at = visit(sign_in(role), "recruitment.py")
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    # the demo is cut after recruitment ended: the sentence says so instead of projecting
    first = [m.value for m in at.markdown if "projection" in m.value.lower()][0]
    assert f"{len(adsl)} participants were randomised by the cut-off" in first
    assert "No recruitment projection: recruitment ended on 2019-09-30 (study file)" in first
    assert _tabs(at)[0] == "Enrolment vs target"
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["title"]["text"].startswith("Randomised against target by site")
    bars = chart["data"][0]
    enrolment = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")["SITEID"].value_counts()
    from data_access.study import load_study
    study = load_study()
    pct = {s.id: 100 * enrolment.get(s.id, 0) / s.target for s in study.sites}
    # % of target, the site names on the axis, sorted (furthest behind at the top: the last bar)
    order = [pct[y.split(" ")[0]] for y in bars["y"]]
    assert sorted(y.split(" ")[0] for y in bars["y"]) == sorted(pct) and order == sorted(order, reverse=True)
    assert all(" " in y for y in bars["y"]) and any(study.site_by_id["FR02"].name in y for y in bars["y"])
    assert [round(x, 6) for x in _values(bars["x"])] == [round(pct[y.split(' ')[0]], 6) for y in bars["y"]]


def test_projection_sentence_from_the_cached_table_is_the_reports_sentence(tmp_path):
    """A cut during recruitment: the page's sentence (from the machine table) is the open report's
    (from the fitted projection), word for word."""
    from analysis.outputs import build_table, recruitment_projection
    from analysis.outputs.projections import format_projection_sentence
    from data_access.demo import make_demo
    from data_access.views import open_view
    root = tmp_path / "trial"
    make_demo(root, n_subjects=120, cut="2018-09-30")
    with open_view(root / "clinical", "steering") as view:
        from_fit = format_projection_sentence(recruitment_projection(view))
        from_table = format_projection_sentence(build_table("projection", view))
    assert from_table == from_fit and "expected by" in from_table and "P(by planned end)" in from_table


def test_no_projection_sentence_words():
    from analysis.outputs.projections import no_projection_sentence
    assert no_projection_sentence("projection table not available: the target of 50 was reached (60 randomised)",
                                  60, "2019-01-31") == ("60 participants were randomised by the cut-off (2019-01-31). "
                                                        "No recruitment projection: the target of 50 was reached "
                                                        "(60 randomised).")
    assert no_projection_sentence("x", 1).startswith("1 participant was randomised")


def test_survival_opens_with_the_effect_for_the_dsmb_and_pooled_km_for_steering():
    at = visit(sign_in("dsmb"), "survival.py")
    assert at.error[0].value.startswith("Efficacy boundary crossed")          # the alert heads the page
    assert _tabs(at)[0] == "Treatment effect"
    first = at.dataframe[0].value
    assert first.columns[0] == "Analysis" and first["Analysis"].iloc[0].startswith("Log-rank")
    at = visit(sign_in("steering"), "survival.py")
    assert _tabs(at)[0] == "Kaplan-Meier" and "Treatment effect" not in _tabs(at)
    assert _chart_titles(at)[0] == "Overall survival"


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_safety_opens_with_adverse_events_arms_side_by_side_or_pooled(role):
    at = visit(sign_in(role), "safety.py")
    assert _tabs(at)[0] == "Adverse events"
    ae = at.dataframe[0].value
    assert list(ae.columns[:2]) == ["System organ class", "Preferred term"]
    arms = [c.split(" (N=")[0] for c in ae.columns[2:]]
    assert arms == (["Low-dose IL-2", "Placebo", "Total"] if role == "dsmb" else ["All participants"])
    assert "Subject" in at.dataframe[1].value.columns                          # then the SAE listing


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_stratum_balance_table_by_site_and_stratum_with_totals(role, demo_snapshot):
    at = visit(sign_in(role), "balance.py")
    table = at.dataframe[0].value
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    strata = sorted((adsl["COUNTRY"] + "/" + adsl["ONSET"]).unique())
    from data_access.study import load_study
    study = load_study()
    head = ["Site", "Site name"] + (["Arm"] if role == "dsmb" else [])
    assert list(table.columns) == head + strata + ["Total"]
    assert "group" not in " ".join(table.columns).lower()
    if role == "dsmb":
        table = table[table["Arm"] == "Total"]
    else:
        assert not any(t in " ".join(table.astype(str).to_numpy().ravel()) for t in ARM_TOKENS)
    table = table.assign(Site=[s for s in at.dataframe[0].value["Site"] if s][:len(table)])
    rows = table.set_index("Site")
    for site in study.sites:
        row = rows.loc[site.id]
        assert row["Site name"] == site.name or role == "dsmb"
        for stratum in strata:
            n = ((adsl["SITEID"] == site.id) & (adsl["COUNTRY"] + "/" + adsl["ONSET"] == stratum)).sum()
            if stratum.split("/")[0] != site.country:
                assert row[stratum] == "—", (site.id, stratum)            # structural: not a zero
            else:
                assert int(row[stratum]) == n, (site.id, stratum)
        assert int(row["Total"]) == (adsl["SITEID"] == site.id).sum()
    assert int(rows.loc["All", "Total"]) == len(adsl)
    for stratum in strata:
        assert int(rows.loc["All", stratum]) == (adsl["COUNTRY"] + "/" + adsl["ONSET"] == stratum).sum()


def test_recruitment_page_during_recruitment_opens_with_the_projection(tmp_path, monkeypatch):
    """A cut during recruitment: the page's first line is the projection sentence, the same words as
    the open report's, made from the cached ``projection`` table."""
    from analysis.outputs import build_table
    from analysis.outputs.projections import format_projection_sentence
    from data_access.demo import make_demo
    from data_access.views import open_view
    root = tmp_path / "trial"
    make_demo(root, n_subjects=120, cut="2018-09-30")
    monkeypatch.setenv("MIROCALS_DATA", str(root))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(root / "allocation"))
    at = visit(sign_in("steering"), "recruitment.py")
    with open_view(root / "clinical", "steering") as view:
        expected = format_projection_sentence(build_table("projection", view))
    first = [m.value for m in at.markdown if "expected by" in m.value]
    assert first == [f"**{expected}**"], first
    import re
    assert re.match(r"\d+ of 304 participants were randomised by the cut-off \(2018-09-30\)\. 304 expected by "
                    r"\d{4}-\d\d \(80 % PI \d{4}-\d\d to \d{4}-\d\d\); P\(by planned end\) = \d+ %\.", expected), expected
    assert _tabs(at)[0] == "Enrolment vs target"


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_recruitment_consort_tab_draws_the_flow_diagram_from_its_table(role, demo_snapshot):
    """The CONSORT diagram is back on the Recruitment page, in its own (lazy) tab: drawn when the
    tab is opened, never on the page's first run, its numbers the snapshot's; pooled (one column,
    no arm) for the steering committee, by arm for the DSMB."""
    from tests.test_dashboard_apptest import open_tab, open_tabs
    at = visit(sign_in(role), "recruitment.py")
    assert "CONSORT" in _tabs(at) and open_tabs(at) == ["Enrolment vs target"]
    assert not [c for c in at.get("plotly_chart") if "consort:" in c.proto.spec]      # not drawn yet
    open_tab(at, "recruitment.py", "CONSORT")
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    diagram = [s for s in specs if any(str(sh.get("name", "")).startswith("consort:")
                                       for sh in s["layout"].get("shapes", []))]
    assert len(diagram) == 1
    text = " ".join(a["text"] for a in diagram[0]["layout"]["annotations"])
    screening = pd.read_parquet(demo_snapshot / "clinical" / "screening.parquet")
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    assert f"Assessed for eligibility (n={len(screening)})" in text and f"Randomised (n={len(adsl)})" in text
    arms = [tok for tok in ARM_TOKENS if tok in json.dumps(diagram[0])]
    if role == "steering":
        assert not arms and f"Analysed, intention to treat (n={len(adsl)})" in text
    else:
        assert arms and "pooled" not in text
    shown = at.dataframe[0].value if at.dataframe else None
    assert shown is not None and len(shown) > 0                                     # and its table below
