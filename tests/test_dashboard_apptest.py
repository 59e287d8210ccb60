"""Every dashboard page, headless (streamlit.testing.v1.AppTest), for every role.

Users sign in through the real sign-in form. The leak test collects everything a blinded role is
sent (every element's message: markdown, captions, dataframe values, metrics, chart specs, errors)
and every download's bytes, and looks for arm labels and Treg parameters.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import auth
from dashboard.pages_registry import PAGES, pages_for

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")
ARM_TOKENS = ("Low-dose IL-2", "Placebo", "IL2LD", "PBO", "Group A", "Group B")
TREG_TOKENS = ("TREG", "Treg", "TREGPCT", "Regulatory T", "Eosinophil", "eosinophil", "Injection site",
               "injection site", "Influenza like", "influenza-like")   # arm-revealing content
BANNER = "UNBLINDED - CONFIDENTIAL"


@pytest.fixture(autouse=True)
def _deployment(demo_snapshot, monkeypatch):
    monkeypatch.setenv("MIROCALS_DATA", str(demo_snapshot))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(demo_snapshot / "allocation"))
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED", raising=False)
    monkeypatch.delenv("MIROCALS_CREDENTIALS", raising=False)


@pytest.fixture
def downloads(monkeypatch):
    """Bytes of every CSV the app offers for download, fetched as a click would (through
    ``dashboard.downloads.offered``: the same session-checked, audited path as a click). Figure
    exports (PNG/SVG through kaleido) are left out: they are slow and tested apart."""
    from dashboard import downloads as dl
    captured: list[bytes] = []

    def capture(file_name, mime, fetch):
        if mime == "text/csv":
            data = fetch()
            if data is not None:
                captured.append(data)

    monkeypatch.setattr(dl, "offered", capture)
    return captured


def sign_in(role: str, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert not at.exception
    at.text_input(key="login_user").set_value(role)
    at.text_input(key="login_password").set_value(f"demo-{role}")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    return at


def download_buttons(at: AppTest) -> list:
    """The download buttons on the page (``dashboard.downloads``: plain buttons labelled
    "Download ...", and any ``st.download_button``)."""
    return [b for b in at.button if str(b.label).startswith("Download")] + list(at.get("download_button"))


def _node_text(node) -> str:
    """One element's protobuf message in text form, and a dataframe's values as CSV."""
    parts = []
    proto = getattr(node, "proto", None)
    if proto is not None:
        parts.append(str(proto))
    if getattr(node, "type", None) in ("arrow_data_frame", "dataframe", "table"):
        parts.append(node.value.to_csv())
    return "\n".join(parts)


def _nodes(at: AppTest) -> list[tuple[object, bool]]:
    """Every node of the page, with whether it sits in a tab."""
    found = []

    def walk(node, in_tab):
        in_tab = in_tab or getattr(node, "type", None) == "tab"
        found.append((node, in_tab))
        for child in getattr(node, "children", {}).values():
            walk(child, in_tab)

    walk(at._tree, False)
    return found


def rendered_text(at: AppTest) -> str:
    """Everything the page sent: every element's protobuf message in text form, and dataframes'
    values (Arrow bytes are not readable in the message) as CSV. The page's tabs are lazy (only
    the open one is drawn, issue 13): ``visit_all_tabs`` for everything a page can show."""
    return "\n".join(_node_text(n) for n, _ in _nodes(at))


def visit(at: AppTest, page_file: str) -> AppTest:
    """Open a page: on its first tab (only the open tab is drawn)."""
    at.switch_page(f"app_pages/{page_file}")
    at.run()
    assert not at.exception, f"{page_file}: {at.exception}"
    return at


def open_tabs(at: AppTest) -> list[str]:
    """The labels of the tabs drawn on this run (lazy tabs: the open one only)."""
    return [t.label for t in at.tabs if t.children]


def open_tab(at: AppTest, page_file: str, label: str) -> AppTest:
    """Open the tab ``label`` of the page shown, as a click on it would (it sets the tab's
    session-state value, ``dashboard.figures.tabs_key``, and reruns); asserts it is the one drawn."""
    from dashboard.figures import tabs_key
    at.session_state[tabs_key(Path(page_file).stem)] = label
    at.run()
    assert not at.exception, f"{page_file}/{label}: {at.exception}"
    assert open_tabs(at) == [label], (page_file, label, open_tabs(at))
    return at


class Seen:
    """What a page showed over all its tabs, each opened in turn (``visit_all_tabs``): what is
    outside the tabs once (from the first run), then each tab's content."""

    def __init__(self, tabs: list[str], nodes: list):
        self.tabs, self.nodes = tabs, nodes
        self.text = "\n".join(_node_text(n) for n in nodes)

    def get(self, kind: str) -> list:
        return [n for n in self.nodes if getattr(n, "type", None) == kind]

    def values(self, kind: str) -> list:
        return [n.value for n in self.get(kind)]

    @property
    def dataframe(self) -> list:
        return self.get("dataframe")

    def download_buttons(self) -> list:
        return [b for b in self.get("button") if str(b.label).startswith("Download")] + self.get("download_button")


def visit_all_tabs(at: AppTest, page_file: str) -> Seen:
    """Open a page, then each of its tabs in turn (lazy tabs draw the open one only, issue 13),
    and collect everything shown. The page opens on its first tab (asserted); ``at`` is left on
    the last tab."""
    visit(at, page_file)
    labels = [t.label for t in at.tabs]
    nodes = [n for n, _ in _nodes(at)]
    if labels:
        assert open_tabs(at) == labels[:1], (page_file, open_tabs(at))
    for label in labels[1:]:
        open_tab(at, page_file, label)
        nodes += [n for n, in_tab in _nodes(at) if in_tab]
    return Seen(labels, nodes)


@pytest.mark.parametrize("role", auth.ROLES)
def test_every_page_runs_for_every_role(role, tmp_path, monkeypatch):
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    at = sign_in(role)
    for page in pages_for(role):
        seen = visit_all_tabs(at, page.file)          # every tab: only the open one is drawn
        text = seen.text
        errors = seen.values("error")
        if page.file == "survival.py" and auth.is_unblinded_role(role):   # the demo crosses its efficacy boundary
            assert len(errors) == 1 and errors[0].startswith("Efficacy boundary crossed"), errors
        else:
            assert not errors or page.file == "quality.py", f"{role}/{page.file}: {errors}"
        assert "Data cut-off" in text
        assert (BANNER in text) == auth.is_unblinded_role(role), f"{role}/{page.file}"
    events = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    views = {e["object"] for e in events if e["action"] == "view"}
    if auth.is_unblinded_role(role):
        assert views == {p.url for p in pages_for(role)}
        assert all(e["user"] == role and e["role"] == role and e["snapshot_hash"] for e in events
                   if e["action"] == "view")
    else:
        assert views == set()


@pytest.mark.parametrize("role", ["steering", "investigator", "author"])
def test_blinded_roles_see_no_arm_label_and_no_treg_anywhere(role, downloads):
    at = sign_in(role)
    seen = []
    for page in pages_for(role):
        seen.append(visit_all_tabs(at, page.file).text)      # every tab of every page
    seen += [d.decode("utf-8", "replace") for d in downloads]
    assert downloads, "no download was offered"
    text = "\n".join(seen)
    for token in ARM_TOKENS + TREG_TOKENS:
        assert token not in text, f"{role} was shown {token!r}"


def test_unblinded_roles_do_see_arm_labels(downloads):
    at = sign_in("dsmb")
    visit(at, "baseline.py")
    assert "Low-dose IL-2" in rendered_text(at) + "".join(d.decode("utf-8", "replace") for d in downloads)


@pytest.mark.parametrize("page", [p for p in PAGES if "steering" not in p.roles])
def test_restricted_page_reached_by_path_denies_a_blinded_role(page, demo_snapshot):
    creds = auth.load_credentials()
    account, _ = auth.check_password("steering", "demo-steering", creds)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app_pages" / page.file), default_timeout=60)
    at.session_state[auth.SESSION_KEY] = auth.make_session(account)
    at.run()
    assert not at.exception
    assert any("Access denied" in e.value for e in at.error)
    assert not at.dataframe and not at.get("plotly_chart") and not download_buttons(at)
    assert demo_snapshot.name not in rendered_text(at) and "Data cut-off" not in rendered_text(at)


def test_pages_refuse_to_run_without_sign_in():
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / "dashboard" / "app_pages" / page.file), default_timeout=60)
        at.run()
        assert any("Access denied" in e.value for e in at.error) and not at.dataframe


def test_wrong_password_shows_an_error_and_no_data():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_user").set_value("apptest-nobody")
    at.text_input(key="login_password").set_value("wrong")
    at.button[0].click()
    at.run()
    assert any("wrong password" in e.value for e in at.error)
    assert not at.dataframe and "Data cut-off" not in rendered_text(at)


def test_sign_out_returns_to_the_sign_in_form():
    at = sign_in("investigator")
    at.button(key="sign_out").click()
    at.run()
    assert at.text_input(key="login_user") is not None and not at.dataframe
    assert auth.SESSION_KEY not in at.session_state


def test_figure_export_is_svg_of_the_blinded_figure(demo_snapshot):
    """The SVG download of a blinded figure is a real SVG rendered by kaleido + chromium and holds
    no arm label."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is absent: static figure export needs it")
    from analysis.outputs import build_figure
    from dashboard import figure_export, snapshots
    view = snapshots._blinded_view(str(demo_snapshot / "clinical"), "blinded", "blinded", "h", "steering")
    fig = build_figure("cumulative", view)
    svg = figure_export.figure_bytes(("blinded", "blinded", view.snapshot_hash, (), False, "test"), fig, "svg")
    text = svg.decode()
    assert text.startswith("<svg") and "Cumulative randomised" in text
    assert not any(t in text for t in ARM_TOKENS)
    assert figure_export.figure_bytes(("blinded", "blinded", view.snapshot_hash, (), False, "test"), None, "svg") is svg


# --------------------------------------------------------------------------- safety labs, data quality
def _chart_titles(at: AppTest | Seen) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_safety_labs_figure_pooled_for_blinded_and_tregs_for_unblinded_only():
    seen = visit_all_tabs(sign_in("steering"), "safety.py")      # every tab
    titles = _chart_titles(seen)
    assert len(titles) == 1 and titles[0].startswith("Laboratory values")
    # eosinophils (IL-2 raises them) and Tregs are withheld from blinded views (issue 10)
    assert "Eosinophils" not in seen.text and "Regulatory T" not in seen.text
    seen = visit_all_tabs(sign_in("dsmb"), "safety.py")
    titles = _chart_titles(seen)
    assert [t.split("<br>")[0] for t in titles] == ["Laboratory values: mean (+/- SE) by visit",
                                                     "Regulatory T cells: mean (+/- SE) by visit"]
    spec = json.loads(seen.get("plotly_chart")[1].proto.spec)
    assert {t["name"] for t in spec["data"]} == {"Low-dose IL-2", "Placebo"}


def _frame_with(at: AppTest | Seen, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize("role", ["investigator", "dsmb"])
def test_quality_page_shows_completeness_by_site(role, demo_snapshot):
    import pandas as pd
    at = visit(sign_in(role), "quality.py")
    assert "Expected visits by site" in " ".join(_chart_titles(at))
    comp = _frame_with(at, "Done, % of expected")            # the display table (analysis.display)
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    assert list(comp["Site"])[-1] == "Total" and set(comp["Site"][:-1]) == set(adsl["SITEID"])
    assert (comp["Done"] + comp["Missed"] + comp["Overdue"] == comp["Expected"]).all()
    assert comp["Subjects"].iloc[-1] == len(adsl)
    assert not set(comp.columns) & {"ARM", "group", "Arm"}


def test_long_tables_are_paginated_and_the_csv_has_every_row(downloads, demo_snapshot):
    import io
    import pandas as pd
    from dashboard.widgets import PAGE_ROWS
    at = visit(sign_in("steering"), "quality.py")
    n_visits = len(pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")) * 10
    shown = _frame_with(at, "Days since target")             # on screen: the display table
    assert len(shown) == PAGE_ROWS < n_visits
    assert f"Rows 1-{PAGE_ROWS} of {n_visits:,}" in rendered_text(at)
    csv = next(pd.read_csv(io.BytesIO(d)) for d in downloads if b"days_since_target" in d)   # the machine table
    assert len(csv) == n_visits
    last = -(-n_visits // PAGE_ROWS)
    at.number_input(key="pg_visit-status").set_value(last).run()
    shown = _frame_with(at, "Days since target")
    assert len(shown) == n_visits - (last - 1) * PAGE_ROWS
    assert list(shown["Subject"]) == list(csv["USUBJID"][(last - 1) * PAGE_ROWS:])
    assert f"Rows {(last - 1) * PAGE_ROWS + 1:,}-{n_visits:,} of {n_visits:,}" in rendered_text(at)


def test_unblinded_views_are_logged_once_per_page_view_and_every_download(tmp_path, monkeypatch, downloads):
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))

    def events(action):
        return [json.loads(x) for x in log.read_text().splitlines() if json.loads(x)["action"] == action]

    at = visit(sign_in("dsmb"), "quality.py")
    assert [e["object"] for e in events("view")] == ["recruitment", "quality"]
    # widget-triggered reruns of the same page (a page of a table, plain reruns): no new view
    at.number_input(key="pg_visit-status").set_value(2).run()
    at.run()
    assert len(events("view")) == 2
    # a filter change shows other data: a new view, with the filter in the detail
    at.multiselect(key="flt_site").set_value(["FR01"]).run()
    assert not at.exception
    views = events("view")
    assert len(views) == 3 and views[-1]["object"] == "quality" and "FR01" in views[-1]["detail"]
    # navigation away and back: two more views
    visit(at, "safety.py")
    visit(at, "quality.py")
    assert [e["object"] for e in events("view")][3:] == ["safety", "quality"]
    # every CSV served is logged as a download (the fixture builds each one as a click would)
    served = [e["detail"] for e in events("download")]
    assert len(served) == len(downloads) and all(d.endswith(".csv") and "unblinded" in d for d in served)
    assert any("visit-status" in d for d in served)


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_alsfrs_page_items_by_visit(role, demo_snapshot):
    # every item (5a and 5b apart) by visit; the baseline n of item 1 is the number of ITT
    # subjects with an item-1 score at the baseline visit, counted here from the Parquet file
    import pandas as pd
    at = open_tab(visit(sign_in(role), "alsfrs.py"), "alsfrs.py", "Items")
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    adqs = pd.read_parquet(demo_snapshot / "clinical" / "adqs.parquet")
    itt = set(adsl.loc[adsl["ITTFL"] == "Y", "USUBJID"])
    names = adqs.drop_duplicates("PARAMCD").set_index("PARAMCD")["PARAM"]
    items = next(d.value for d in at.dataframe                      # the items tab
                 if "Parameter" in d.value.columns and names["ALSFRS01"] in set(d.value["Parameter"]))
    expected = sorted(names[[c for c in names.index if c.startswith("ALSFR") and c != "ALSFRST"]])
    assert sorted(p for p in items["Parameter"] if p) == expected          # item names, not codes, once each
    q = adqs[(adqs["PARAMCD"] == "ALSFRS01") & adqs["USUBJID"].isin(itt) & (adqs["AVISITN"] == adqs["AVISITN"].min())]
    arms = [c for c in items.columns if c not in ("Parameter", "Visit")]
    base = items[items["Parameter"] == names["ALSFRS01"]].iloc[0]          # its first row: the baseline visit
    assert sum(int(base[a].split(":")[0]) for a in arms) == q["USUBJID"].nunique()   # cells "n: mean (SE); ..."
    if role == "steering":
        assert [a.split(" (N=")[0] for a in arms] == ["All participants"]      # pooled: one column
    else:
        assert [a.split(" (N=")[0] for a in arms] == ["Low-dose IL-2", "Placebo"]   # arms side by side


def test_survival_page_forest_for_unblinded_and_strata_for_all(demo_snapshot):
    # steering: the pooled KM, the pooled death forecast and survival within each stratum; no forest
    # plot (subgroup HRs are by arm) and no boundary plot (the interim look is by arm)
    seen = visit_all_tabs(sign_in("steering"), "survival.py")          # every tab
    assert [t.split("<br>")[0] for t in _chart_titles(seen)] == ["Overall survival",
                                                                 "Deaths: observed and projected to the final analysis"]
    strata = _frame_with(seen, "Stratum")
    assert strata.columns.tolist() == ["Stratum", "Statistic", "All participants (N=220)"]
    assert set(strata["Stratum"]) - {""} == {"France/Bulbar", "France/Limb", "UK/Bulbar", "UK/Limb"}
    import pandas as pd
    adsl = pd.read_parquet(demo_snapshot / "clinical" / "adsl.parquet")
    n_rows = strata[strata["Statistic"] == "N"]
    assert n_rows["All participants (N=220)"].astype(int).sum() == (adsl["ITTFL"] == "Y").sum()
    # dsmb: the forest plot, overall row first, with the arm labels on the axis
    seen = visit_all_tabs(sign_in("dsmb"), "survival.py")
    titles = _chart_titles(seen)
    assert any(t.startswith("Hazard ratio by subgroup (Low-dose IL-2 vs Placebo)") for t in titles)
    spec = json.loads(seen.get("plotly_chart")[1].proto.spec)
    assert spec["layout"]["yaxis"]["ticktext"][0].startswith("<b>All participants</b>")
    assert "favours Low-dose IL-2" in spec["layout"]["xaxis"]["title"]["text"]


def test_recruitment_changes_since_a_chosen_date(demo_snapshot):
    # the steering committee picks the last meeting's date; the table is the `changes` table
    import datetime as dt

    import pandas as pd

    from analysis.outputs import display_table as format_display
    from analysis.outputs import build_table
    from data_access.views import open_view
    at = open_tab(visit(sign_in("steering"), "recruitment.py"), "recruitment.py", "Changes since")
    at.date_input(key="changes_since").set_value(dt.date(2019, 6, 30)).run()
    assert not at.exception
    shown = _frame_with(at, "At the previous cut-off").set_index("Item")
    with open_view(demo_snapshot / "clinical", "steering") as view:
        expected = format_display("changes", build_table("changes", view, since="2019-06-30"), view).set_index("Item")
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)
    assert shown.loc["Randomised", "New since the previous cut-off"] > 0


def test_fresh_checkout_generates_the_demo_trial_on_first_run(tmp_path, monkeypatch):
    # the README's first command: no MIROCALS_DATA, so ./demo_data is written on the first run
    # and used with its allocation (the demo is an unblinded deployment for the DSMB accounts)
    monkeypatch.delenv("MIROCALS_DATA")
    monkeypatch.delenv("MIROCALS_ALLOCATION")
    monkeypatch.chdir(tmp_path)
    text = visit_all_tabs(sign_in("dsmb", timeout=180), "survival.py").text
    assert (tmp_path / "demo_data" / "clinical" / "manifest.json").is_file()
    assert (tmp_path / "demo_data" / "allocation" / "manifest.json").is_file()
    assert BANNER in text and "Low-dose IL-2" in text
    text = visit_all_tabs(sign_in("steering"), "survival.py").text
    assert BANNER not in text and "Low-dose IL-2" not in text


def test_dsmb_on_a_deployment_without_allocation_gets_pooled_pages(blinded_only_snapshot, monkeypatch):
    """An unblinded role signed in where no allocation is configured (a blinded deployment or a
    demo pointed at a clinical-only snapshot) sees pooled pages, not an error for the missing
    allocation, and never the UNBLINDED banner."""
    monkeypatch.setenv("MIROCALS_DATA", str(blinded_only_snapshot))
    monkeypatch.delenv("MIROCALS_ALLOCATION", raising=False)
    at = sign_in("dsmb")
    for page in pages_for("dsmb"):
        if page.file == "audit_log.py":
            continue
        text = visit_all_tabs(at, page.file).text      # every tab
        assert "Data cut-off" in text and BANNER not in text, page.file
        assert "pooled over arms: **no allocation configured**" in text, page.file
        for token in ARM_TOKENS:
            assert token not in text, f"{page.file}: {token!r}"


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_data_folder_pointing_nowhere_names_the_folder_and_the_variable(role, tmp_path, monkeypatch):
    """MIROCALS_DATA set to a folder that does not exist: every page says which folder, which
    variable set it, what a snapshot folder holds and what to do; the sidebar offers no filter
    (nothing to filter) and no Mask arms toggle."""
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv("MIROCALS_DATA", str(missing))
    monkeypatch.delenv("MIROCALS_ALLOCATION", raising=False)
    at = sign_in(role)
    for page in pages_for(role):
        visit(at, page.file)
        errors = [e.value for e in at.error]
        assert len(errors) == 1, (page.file, errors)
        assert str(missing) in errors[0] and "MIROCALS_DATA" in errors[0] and "does not exist" in errors[0]
        assert "clinical/manifest.json" in errors[0] and "mirocals demo" in errors[0]
        assert not at.exception
        assert not [w for w in at.sidebar.multiselect] and not list(at.sidebar.toggle)



def test_only_the_open_tab_is_drawn_and_a_page_opens_on_its_first_tab():
    """Lazy tabs (issue 13): a page draws its open tab only (ALSFRS-R drew 5 figures and 7 tables
    for one visible tab); a click on another tab draws that one; back on the page, the first tab."""
    at = visit(sign_in("dsmb"), "alsfrs.py")
    labels = [t.label for t in at.tabs]
    assert labels[:3] == ["Change from baseline", "Individual trajectories", "Domains"]
    assert open_tabs(at) == ["Change from baseline"]
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 1
    open_tab(at, "alsfrs.py", "Domains")
    assert [json.loads(c.proto.spec)["layout"]["title"]["text"].split("<br>")[0] for c in at.get("plotly_chart")] \
        == [json.loads(c.proto.spec)["layout"]["title"]["text"].split("<br>")[0] for c in at.tabs[2].get("plotly_chart")]
    assert len(at.get("plotly_chart")) == 1
    at.run()                                          # a rerun (a widget, a filter) keeps the open tab
    assert open_tabs(at) == ["Domains"]
    visit(at, "safety.py")
    visit(at, "alsfrs.py")
    assert open_tabs(at) == ["Change from baseline"]
