"""Issue 11: the HR (95% CI) and p of every treatment-effect method read the same on the Survival
page (dsmb, AppTest), in the closed report (HTML and PDF) and in ``mirocals table
treatment-effect --display``, for the demo with seed 11; the KM panel note shows the stratified
Cox row's string, names the method and the test, and never prints ``p=0.000``."""
from __future__ import annotations

import contextlib
import html as html_lib
import io
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from analysis.display import METHOD_LABELS, format_method
from data_access.study import load_study

from analysis.figures_survival import format_effect_note

LABEL = {code: format_method(code, load_study()) for code in METHOD_LABELS}   # MIROCALS: its strata named

SEED = 11
EST, P, METHOD = "Estimate (95% CI)", "p", "Analysis"


@pytest.fixture(scope="module")
def seed11(tmp_path_factory):
    from data_access.demo import make_demo
    root = tmp_path_factory.mktemp("seed11") / "trial"
    make_demo(root, seed=SEED)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIROCALS_AUDIT_LOG", str(root.parent / "audit.log"))
        yield root


@pytest.fixture(scope="module")
def cli_table(seed11) -> pd.DataFrame:
    from mirocals.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["table", "treatment-effect", "--data", str(seed11 / "clinical"), "--allocation",
                       str(seed11 / "allocation"), "--view", "unblinded", "--display"])
    assert status in (0, None)
    return pd.read_csv(io.StringIO(out.getvalue()), dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def report(seed11, tmp_path_factory):
    from reports.render import render_report
    out = tmp_path_factory.mktemp("report")
    files = render_report("dsmb-closed", seed11, allocation_dir=seed11 / "allocation", out_dir=out,
                          to=("html", "pdf"), progress=lambda *_: None)
    folder = out / "dsmb-closed"
    html = next(f for f in files if str(f).endswith(".html"))
    pdf = next(f for f in files if str(f).endswith(".pdf"))
    return folder, html, pdf


def _rows(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [(r[METHOD], r[EST], r[P]) for _, r in table.iterrows()]


def _html_rows(text: str) -> list[str]:
    """Each table row of the HTML as plain text (cells joined by " | ")."""
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", text, flags=re.S):
        cells = [html_lib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, flags=re.S)]
        rows.append(" | ".join(re.sub(r"\s+", " ", c) for c in cells))
    return rows


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text.replace("\u2212", "-"))


def test_cli_display_strings(cli_table):
    assert len(cli_table) >= 5
    assert set(cli_table[METHOD]) <= set(LABEL.values())
    for method, est, p in _rows(cli_table):
        assert p != "0.000" and re.fullmatch(r"<0\.001|[01]\.\d{3}|—", p), (method, p)
        assert re.fullmatch(r"—|-?\d+\.\d{2}( \((-?\d+\.\d{2}|NE) to (-?\d+\.\d{2}|NE)\))?", est), (method, est)


def test_effect_note_names_the_hr_and_the_test(cli_table, seed11):
    from analysis.outputs import build_table
    from data_access.views import open_view
    view = open_view(seed11, "dsmb", allocation_dir=seed11 / "allocation")
    note = format_effect_note(build_table("treatment-effect", view), study=view.study)
    cox = cli_table.set_index(METHOD).loc[LABEL["cox_stratified"]]
    logrank = cli_table.set_index(METHOD).loc[LABEL["logrank"]]
    assert note.startswith(f"HR {cox[EST]}, Cox stratified by country and site of onset; ")
    assert f"log-rank p {logrank[P]}" in note or f"log-rank p = {logrank[P]}" in note
    assert note.endswith("(unstratified)") and "0.000" not in note


def test_survival_page_shows_the_cli_strings(cli_table, seed11, monkeypatch):
    from tests.test_dashboard_apptest import sign_in, visit_all_tabs
    monkeypatch.setenv("MIROCALS_DATA", str(seed11))
    monkeypatch.setenv("MIROCALS_ALLOCATION", str(seed11 / "allocation"))
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED", raising=False)
    monkeypatch.delenv("MIROCALS_CREDENTIALS", raising=False)
    at = visit_all_tabs(sign_in("dsmb"), "survival.py")          # every tab (the forest plot's too)
    shown = [d.value for d in at.dataframe if EST in d.value.columns and METHOD in d.value.columns]
    assert len(shown) == 1, [list(d.value.columns) for d in at.dataframe]
    page = shown[0].astype(str)
    assert _rows(page) == _rows(cli_table)
    texts = [a.get("text", "") for c in at.get("plotly_chart")
             for a in json.loads(c.proto.spec)["layout"].get("annotations", [])]
    notes = [t for t in texts if t.startswith("HR ")]
    assert len(notes) == 1, texts
    # the forest plot's overall row (unadjusted Cox of everyone) reads as the table's Cox row
    unadjusted = cli_table.set_index(METHOD).loc[LABEL["cox"], EST]
    assert any(t.startswith(f"{unadjusted}  ") for t in texts), (unadjusted, texts)
    cox = cli_table.set_index(METHOD).loc[LABEL["cox_stratified"]]
    logrank = cli_table.set_index(METHOD).loc[LABEL["logrank"]]
    assert notes[0].startswith(f"HR {cox[EST]}, Cox stratified by country and site of onset; ")
    assert logrank[P] in notes[0] and "(unstratified)" in notes[0]


def test_closed_report_html_and_pdf_show_the_cli_strings(cli_table, report):
    folder, html_file, pdf_file = report
    text = html_file.read_text()
    rows = _html_rows(text)
    for method, est, p in _rows(cli_table):
        row = [r for r in rows if r.startswith(f"{method} |") or f"| {method} |" in r]
        assert len(row) == 1, (method, rows[:40])
        cells = row[0].split(" | ")
        assert est in cells and p in cells, (method, est, p, row[0])
    # the KM note (in the summary sentence and on the figure) is the stratified Cox row's string
    cox = cli_table.set_index(METHOD).loc[LABEL["cox_stratified"]]
    plain = re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", "", text)))
    assert f"HR {cox[EST]}, Cox stratified by country and site of onset" in plain
    svg = (folder / "figures" / "fig-km.svg").read_text()
    assert f"HR {cox[EST]}, Cox stratified by country and site of onset" in re.sub(r"\s+", " ", html_lib.unescape(svg))
    assert "p=0.000" not in plain
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed")
    pdf = subprocess.run(["pdftotext", str(pdf_file), "-"], capture_output=True, text=True, check=True).stdout
    flat = _squash(pdf)
    start = flat.index(_squash("Treatment effect estimates"))     # the table's caption (Typst: above it)
    for method, est, p in _rows(cli_table):                       # each row reads label, estimate, statistic, p
        at = flat.find(_squash(method), start)
        assert at >= 0, method
        row = flat[at + len(_squash(method)):][:60]
        assert row.startswith(_squash(est)) and _squash(p) in row, (method, est, p, row)
    assert _squash(f"HR {cox[EST]}, Cox stratified by country and site of onset") in flat


def test_effect_note_small_p_and_several_comparisons():
    nan = float("nan")
    te = pd.DataFrame({"method": ["logrank", "cox", "logrank", "cox_stratified", "cox"],
                       "estimate": [nan, 0.5, nan, 0.4883, 0.5018], "ci_lower": [nan, 0.3, nan, 0.281, 0.29],
                       "ci_upper": [nan, 0.8, nan, 0.848, 0.86], "p_value": [0.0004, 0.003, 0.01234, 0.01, 0.02],
                       "comparison": ["A vs P", "A vs P", "B vs P", "B vs P", "B vs P"]})
    assert format_effect_note(te) == (
        "A vs P: HR 0.50 (0.30 to 0.80), Cox unadjusted; log-rank p <0.001 (unstratified)<br>"
        "B vs P: HR 0.49 (0.28 to 0.85), Cox stratified by the randomisation strata; "
        "log-rank p = 0.012 (unstratified)")
    # the study's own strata are named: MIROCALS, and a trial stratified by region alone
    from types import SimpleNamespace
    assert "Cox stratified by country and site of onset;" in format_effect_note(
        te, study=SimpleNamespace(strata_factors=("COUNTRY", "ONSET")))
    assert "Cox stratified by region;" in format_effect_note(te, study=SimpleNamespace(strata_factors=("REGION",)))
    assert format_effect_note(te[te["comparison"] == "B vs P"].drop(columns="comparison")).startswith("HR 0.49 (")
    assert format_effect_note(te.iloc[:0]) == ""
