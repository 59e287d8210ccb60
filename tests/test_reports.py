"""Reports rendered for real (Jupyter kernel + Pandoc + Typst, or Quarto when installed) from the
demo trial; the PDF text is checked with pdftotext."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from reports.render import render_report
from tests.conftest import ARM_TOKENS
from tests.report_renders import PREVIOUS, REPORT_OF

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def rendered(report_renders):
    """The session's shared renders (tests/report_renders.py): the open report (its allocation
    garbage, never read), the closed report and the manuscript to HTML, PDF and Word; the open
    report again from a deployment with no allocation, with the changes since PREVIOUS, and the
    closed report with masked arms, HTML only. Each render k is in out/k/<report name>/."""
    keys = ("open", "closed", "manuscript", "again", "changes", "masked")
    r = report_renders.get(*keys)
    return r.out, {k: r.paths[k] for k in keys}, r.audit, r.messages


def test_every_report_has_html_pdf_and_word(rendered):
    _, paths, _, _ = rendered
    for name, files in paths.items():
        if name in ("again", "masked", "changes"):   # HTML only
            assert [p.suffix for p in files] == [".html"], name
            continue
        assert sorted(p.suffix for p in files) == [".docx", ".html", ".pdf"], name
        assert all(p.stat().st_size > 10_000 for p in files)


def test_open_report_content_and_no_allocation(rendered, demo_snapshot):
    _, paths, _, messages = rendered
    # the progress display named each stage
    assert any(m.startswith("executing cell 3/") for m in messages)
    assert {"pandoc html", "pandoc typst", "typst pdf"} <= set(messages)
    text = pdf_text(next(p for p in paths["open"] if p.suffix == ".pdf"))
    assert "OPEN SESSION REPORT" in text
    cut = json.loads((demo_snapshot / "clinical" / "manifest.json").read_text())["cut_date"]
    assert f"Data cut-off date: {cut}" in text
    for section in ("Contents", "List of tables", "Summary of study status", "Enrolment", "Baseline characteristics",
                    "Data completeness", "Adverse events", "Laboratory summaries"):
        assert section in text, section
    assert re.search(r"Table \d+\s+Baseline characteristics, pooled", text)
    assert re.search(r"Figure \d+\s+Cumulative randomised", text)
    assert re.search(r"Page \d+ of \d+", text)
    for token in ARM_TOKENS + ("TREG", "cells/uL"):
        assert token not in text, token
    html = next(p for p in paths["open"] if p.suffix == ".html").read_text()
    for token in ARM_TOKENS + ("TREG",):
        assert token not in html, token


def test_closed_report_by_arm_with_efficacy(rendered, study):
    out, paths, audit, _ = rendered
    text = pdf_text(next(p for p in paths["closed"] if p.suffix == ".pdf"))
    assert "CLOSED SESSION REPORT - CONFIDENTIAL" in text
    for label in study.arm_labels:
        assert label in text
    for section in ("Efficacy: survival", "Efficacy: ALSFRS-R", "Regulatory T cells", "Group-sequential monitoring"):
        assert section in text, section
    assert re.search(r"Figure \d+\s+Kaplan-Meier estimate of survival by arm", text)
    assert "Cox HR stratified by country and site of onset" in text and "Log-rank test" in text
    assert re.search(r"Survival at day 640", text)
    assert re.search(r"Table \d+\s+Treg count", text)
    assert re.search(r"Figure \d+\s+Regulatory T cells by visit and arm", text)
    # per-arm denominators in the AE table header
    assert re.search(r"Low-dose IL-2\s*\(N=\d+\)", text)
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {e["object"] for e in entries} == {"dsmb-closed", "manuscript"}
    assert sum(e["object"] == "dsmb-closed" for e in entries) == 2            # the plain and the masked render
    assert all(e["action"] == "render" and e["snapshot_hash"] for e in entries)


def test_manuscript_figures_in_three_formats(rendered):
    out, paths, _, _ = rendered
    figs = out / "manuscript" / REPORT_OF["manuscript"] / "figures"
    for name in ("fig-consort", "fig-km", "fig-alsfrs", "fig-forest"):
        for ext in ("svg", "pdf", "png"):
            assert (figs / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    # no title inside a manuscript figure: the caption carries it
    assert "CONSORT flow diagram" not in (figs / "fig-consort.svg").read_text()
    text = pdf_text(next(p for p in paths["manuscript"] if p.suffix == ".pdf"))
    # Table 1 is the caption's number, said once (the section heading does not repeat it)
    assert "Table 1: Baseline characteristics by arm" in " ".join(text.split())
    assert "Table 1: baseline characteristics" not in text
    assert "CONSORT" in text


def test_same_snapshot_gives_identical_tables(rendered):
    out, _, _, _ = rendered

    def tables(md_path):
        return [line for line in md_path.read_text().splitlines() if line.startswith("|")]
    first = tables(out / "open" / REPORT_OF["open"] / "dsmb_open.md")
    assert len(first) > 100 and first == tables(out / "again" / REPORT_OF["again"] / "dsmb_open.md")


def test_open_report_refuses_nothing_but_closed_needs_allocation(blinded_only_snapshot, tmp_path):
    with pytest.raises(ValueError, match="allocation"):
        render_report("dsmb-closed", blinded_only_snapshot, out_dir=tmp_path, progress=lambda m: None)


# --------------------------------------------------------------------------- pipeline pieces
def test_split_qmd_reads_front_matter_cells_and_options():
    from reports.notebook import split_qmd
    text = ('---\ntitle: "T"\njupyter: python3\n---\n\n# Head\n\n```{python}\n#| tags: [parameters]\nx = 1\n```\n\n'
            'Text @fig-a.\n\n```{python}\n#| label: fig-a\n#| fig-cap: "A caption"\nprint(x)\n```\n')
    meta, parts = split_qmd(text)
    assert meta == {"title": "T", "jupyter": "python3"}
    assert [k for k, _s, _o in parts] == ["markdown", "code", "markdown", "code"]
    assert parts[1][2] == {"tags": ["parameters"]}
    assert parts[3][2] == {"label": "fig-a", "fig-cap": "A caption"}


def test_crossrefs_number_figures_and_tables_apart_and_link():
    from reports.crossrefs import resolve_crossrefs
    from reports.notebook import RenderError
    md = ("See @fig-b, @tbl-x and @fig-a.\n\n![First](f.svg){#fig-b width=100%}\n\n| a |\n|---|\n| 1 |\n\n"
          ": A table {#tbl-x}\n\n![Second](g.svg){#fig-a}\n\nmail me@fig-b.org")
    out = resolve_crossrefs(md)
    assert out.startswith("See [Figure&nbsp;1](#fig-b), [Table&nbsp;1](#tbl-x) and [Figure&nbsp;2](#fig-a).")
    assert "me@fig-b.org" in out                       # not a reference
    numbered = resolve_crossrefs(md, number_captions=True)
    assert "![Figure 1: First](f.svg){#fig-b" in numbered and "![Figure 2: Second](g.svg){#fig-a}" in numbered
    assert ": Table 1: A table {#tbl-x}" in numbered
    with pytest.raises(RenderError, match="fig-missing"):
        resolve_crossrefs("@fig-missing")


def test_failing_cell_is_named_with_document_label_and_first_line(tmp_path):
    from reports.notebook import RenderError
    from reports.render import render_qmd
    qmd = tmp_path / "broken.qmd"
    qmd.write_text('---\ntitle: "B"\n---\n\n```{python}\n#| tags: [parameters]\nn = 1\n```\n\n'
                   '```{python}\n#| label: divide\nvalue = n / 0\n```\n')
    with pytest.raises(RenderError) as err:
        render_qmd(qmd, {"n": 2}, tmp_path, to=("html",), progress=lambda m: None)
    msg = str(err.value)
    assert "broken.qmd" in msg and "'divide'" in msg and "value = n / 0" in msg and "ZeroDivisionError" in msg


def test_parameters_are_injected_after_the_parameters_cell(tmp_path):
    from reports.render import render_qmd
    qmd = tmp_path / "p.qmd"
    qmd.write_text('---\ntitle: "P"\n---\n\n```{python}\n#| tags: [parameters]\nn = 1\n```\n\n'
                   '```{python}\nfrom IPython.display import Markdown\nMarkdown(f"n is {n * 10}")\n```\n')
    files, _ = render_qmd(qmd, {"n": 7}, tmp_path, to=("html",), progress=lambda m: None)
    assert "n is 70" in (tmp_path / "p.md").read_text()
    assert files == [tmp_path / "p.html"] and "n is 70" in files[0].read_text()


def test_kernel_runs_this_interpreter():
    import sys
    from jupyter_client.kernelspec import KernelSpecManager
    from reports.notebook import kernel_for_this_python
    spec = KernelSpecManager().get_kernel_spec(kernel_for_this_python())
    assert spec.argv[0] in ("python", "python3") or os.path.realpath(spec.argv[0]) == os.path.realpath(sys.executable)


def test_masked_closed_report_names_groups_not_arms(rendered, study):
    # --mask-arms: every by-arm table and figure says Group A / Group B; no arm label or code
    out, paths, _, _ = rendered
    html = next(p for p in paths["masked"] if p.suffix == ".html").read_text()
    md = (out / "masked" / REPORT_OF["masked"] / "dsmb_closed.md").read_text()
    for text in (html, md):
        for token in tuple(study.arm_labels) + tuple(study.arm_codes):
            assert token not in text, token
    assert "Group A" in md and "Group B" in md
    assert re.search(r"Group A\s*\(N=\d+\)", md)                       # AE table header per group


def test_open_report_data_completeness_agrees_with_the_table(rendered, blinded_only_snapshot):
    # the sentence and the table of the open report carry the counts of the `completeness` table
    from analysis.outputs import build_table
    from data_access.views import open_view
    out, _, _, _ = rendered
    md = (out / "again" / REPORT_OF["again"] / "dsmb_open.md").read_text()
    with open_view(blinded_only_snapshot / "clinical", "steering") as view:
        tot = build_table("completeness", view).set_index("site").loc["Total"]
    assert (f"{int(tot['done'])} of {int(tot['expected'])} expected ALSFRS-R visits were done "
            f"({tot['percent_done']:.1f} %); {int(tot['missed'])} were missed") in md
    assert ": Scheduled visits by site: expected = done + missed + overdue" in md and "{#tbl-completeness}" in md


def test_closed_report_survival_by_stratum_and_forest(rendered, demo_snapshot, study):
    # reports.md: key tables also by stratum. Every stratum x arm row of the report carries the
    # deaths of the `survival-by-stratum` table; the forest plot of the subgroups is a figure.
    from analysis.outputs import build_table
    from data_access.views import open_view
    out, _, _, _ = rendered
    md = (out / "closed" / REPORT_OF["closed"] / "dsmb_closed.md").read_text()
    assert "{#tbl-survival-strata}" in md and "by randomisation stratum and arm" in md
    with open_view(demo_snapshot / "clinical", "dsmb", allocation_dir=demo_snapshot / "allocation") as view:
        by_stratum = build_table("survival-by-stratum", view)
    assert set(by_stratum["stratum"]) == {"France/Bulbar", "France/Limb", "UK/Bulbar", "UK/Limb"}
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("|")]
    for stratum, part in by_stratum.groupby("stratum"):       # arms side by side: N row, then Deaths
        n_row = next(i for i, r in enumerate(rows) if r[:2] == [stratum, "N"])
        assert rows[n_row][2:] == [str(v) for v in part["n"]], stratum
        assert rows[n_row + 1][:2] == ["", "Deaths"] and rows[n_row + 1][2:] == [str(v) for v in part["events"]]
    assert re.search(r"\{#fig-forest[ }]", md) and "by pre-specified subgroup with interaction p" in md


def test_survival_display_says_not_reached_with_the_reached_limit():
    # the aml data (R survival): "Maintained" S drops below 0.5 at 31 (median 31, CI 18 to NE);
    # a curve still above 0.5 whose lower CI limit crosses 0.5 at 412 days shows that limit
    import numpy as np
    import pandas as pd
    from analysis.outputs import display_table
    base = {"landmark_day": 640, "surv_landmark": 0.6, "surv_landmark_ci_lower": 0.4, "surv_landmark_ci_upper": 0.75,
            "rmst": 500.0, "rmst_se": 20.0}
    surv = pd.DataFrame([
        {"group": "A", "n": 11, "events": 7, "median": 31.0, "median_ci_lower": 18.0, "median_ci_upper": np.nan, **base},
        {"group": "B", "n": 20, "events": 6, "median": np.nan, "median_ci_lower": 412.0, "median_ci_upper": np.nan,
         **base},
        {"group": "C", "n": 20, "events": 2, "median": np.nan, "median_ci_lower": np.nan, "median_ci_upper": np.nan,
         **base},
        {"group": "D", "n": 0, "events": 0, **{k: np.nan for k in ("median", "median_ci_lower", "median_ci_upper")},
         **{**base, "surv_landmark": np.nan, "rmst": np.nan}}])
    out = display_table("survival", surv).set_index("Statistic").loc["Median survival, days (95% CI)"]
    assert out.to_dict() == {"A": "31 (18 to NE)", "B": "not reached (412 to NE)", "C": "not reached", "D": "—"}


def test_closed_report_lists_every_sae_and_death_and_severity_by_arm(rendered, demo_snapshot, study):
    # listings are read row by row by the DSMB: none may be cut; the worst-severity table carries
    # the `ae-severity` counts of each arm
    from analysis.outputs import build_table
    from data_access.views import open_view
    out, _, _, _ = rendered
    md = (out / "closed" / REPORT_OF["closed"] / "dsmb_closed.md").read_text()
    with open_view(demo_snapshot / "clinical", "dsmb", allocation_dir=demo_snapshot / "allocation") as view:
        sae, deaths = build_table("sae", view), build_table("deaths", view)
        sev = build_table("ae-severity", view)
    assert len(sae) > 60 and len(deaths) > 40          # longer than the old 40-row cut
    sae_rows = [line for line in md.splitlines() if line.startswith("|") and "Respiratory failure" in line]
    assert len(sae_rows) >= (sae["term"] == "Respiratory failure").sum()
    for s in set(sae["subject"]) | set(deaths.iloc[:, 0]):
        assert f"| {s} |" in md, s
    assert "First 40 of" not in md.split("{#tbl-ae}")[1].split("# Appendix")[0]   # nothing after the AE table is cut
    # the appendix: one profile per death, in order of the date of death, with its arm
    appendix = md.split("# Appendix: profiles of the participants who died")[1]
    order = deaths.sort_values(["death_date", "subject"])["subject"].tolist()
    assert [line.split()[-1] for line in appendix.splitlines() if line.startswith("### Participant ")] == order
    assert appendix.count("- **Arm**: ") == len(order) and appendix.count("| Vital status | Died |") == len(order)
    assert "| Laboratory |" not in appendix                         # compact: no lab values
    any_ae = sev[(sev["soc"] == "Any adverse event")]
    for r in any_ae.itertuples():
        if r.group != "Total":
            assert re.search(rf"\|\s*{r.severity.capitalize()}\s*\|.*\b{r.n_subjects} \({r.percent:.1f} %\)", md), r
    assert "{#tbl-ae-severity}" in md


def test_open_report_projects_recruitment_at_an_interim_cut(blinded_only_snapshot, tmp_path):
    # while recruiting, the open report states the projected date and its intervals: the same
    # (seeded) numbers as the `projection` table at that cut; after recruitment it says why not
    from analysis.outputs import build_table
    from data_access.cut import cut_snapshot
    from data_access.views import open_view
    interim = "2018-12-31"
    render_report("dsmb-open", blinded_only_snapshot, cut=interim, out_dir=tmp_path / "out", to=("html",),
                  keep_intermediates=True,
                  progress=lambda m: None)
    md = (tmp_path / "out" / "dsmb-open" / "dsmb_open.md").read_text()
    cut_snapshot(blinded_only_snapshot / "clinical", interim, tmp_path / "cut")
    from analysis.outputs.projections import format_projection_sentence, recruitment_projection
    with open_view(tmp_path / "cut", "steering") as view:
        p = build_table("projection", view).iloc[0]
        sentence = format_projection_sentence(recruitment_projection(view))
    assert sentence in md
    assert (f"{p['randomised']} of {p['target']} participants were randomised by the cut-off" in md)
    assert f"{p['target']} expected by {p['median_date']:%Y-%m} (80 % PI {p['pi80_lower']:%Y-%m} to" in md
    assert "with the projection to the target" in md
    # vital-status currency and adherence: the same numbers as their tables at that cut
    with open_view(tmp_path / "cut", "steering") as view:
        vs = build_table("vital-status", view).set_index("site").loc["All sites"]
        ad = build_table("adherence", view).iloc[0]
    assert vs["in_follow_up"] > 0
    assert (f"| All sites | — | {vs['randomised']} | {vs['died']} | {vs['ended']} | {vs['in_follow_up']} | "
            f"{vs['missing_date']} | {vs['median_days']:.0f} | {vs['max_days']:.0f} | {vs['no_contact']} |") in md
    assert "{#tbl-vital-status}" in md
    assert (f"| Cycles received, n of due (%) | {ad['cycles_received']} of {ad['cycles_due']} "
            f"({ad['percent_received']:.1f} %) |") in md


def test_open_report_says_why_there_is_no_projection_after_recruitment(rendered):
    out, _, _, _ = rendered
    md = (out / "again" / REPORT_OF["again"] / "dsmb_open.md").read_text()
    assert "No recruitment projection: recruitment ended on 2019-09-30 (study file)" in md


def test_open_report_lists_changes_since_the_previous_cut(rendered, blinded_only_snapshot):
    from analysis.outputs import build_table
    from data_access.views import open_view
    out, _, _, _ = rendered
    md = (out / "changes" / REPORT_OF["changes"] / "dsmb_open.md").read_text()
    with open_view(blinded_only_snapshot / "clinical", "steering") as view:
        ch = build_table("changes", view, since=PREVIOUS)
    assert "{#tbl-changes}" in md and f"Changes since the previous report (cut-off {PREVIOUS})" in md
    for r in ch.itertuples():
        assert re.search(rf"\|\s*{re.escape(r.item)}\s*\|\s*{r.at_previous}\s*\|\s*{r.at_cut}\s*\|\s*{r.new}\s*\|", md), r
    # without a previous cut-off the report says how to ask for one
    md_open = (out / "open" / REPORT_OF["open"] / "dsmb_open.md").read_text()
    assert "No previous report cut-off was given" in md_open and "{#tbl-changes}" not in md_open


def test_closed_report_ae_risk_differences(rendered, demo_snapshot):
    # every AE row of the closed report carries the arms' n/N and the Newcombe difference of the
    # `ae-risk` table
    from analysis.outputs import build_table
    from data_access.views import open_view
    out, _, _, _ = rendered
    md = (out / "closed" / REPORT_OF["closed"] / "dsmb_closed.md").read_text()
    with open_view(demo_snapshot / "clinical", "dsmb", allocation_dir=demo_snapshot / "allocation") as view:
        risk = build_table("ae-risk", view)
    assert "{#tbl-ae-risk}" in md and "Experimental arm: n/N (%)" in md
    assert "*Experimental arm Low-dose IL-2, reference arm Placebo." in md        # the footnote names them
    for r in risk.itertuples():
        cells = (rf"{r.n_exp}/{r.N_exp} \({r.risk_exp:.1f} %\)\s*\|\s*{r.n_ref}/{r.N_ref} \({r.risk_ref:.1f} %\)\s*\|\s*"
                 rf"{r.difference:.1f} \({r.ci_lower:.1f} to {r.ci_upper:.1f}\)")
        assert re.search(cells, md), (r.soc, r.pt)


def test_figure_export_retries_a_kaleido_browser_failure(tmp_path, monkeypatch):
    """kaleido's browser can run its export before its page has loaded ('kaleido_scopes is not
    defined', seen once in a clean CI run): the export is tried again and the file is written;
    any other error is not retried."""
    import plotly.graph_objects as go
    from kaleido._kaleido_tab._errors import JavascriptError
    from reports.report_lib import _write_image
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    real, calls = go.Figure.write_image, []

    def flaky(self, path, **kw):
        calls.append(path)
        if len(calls) == 1:
            raise JavascriptError("ReferenceError: kaleido_scopes is not defined")
        return real(self, path, **kw)

    monkeypatch.setattr(go.Figure, "write_image", flaky)
    _write_image(fig, str(tmp_path / "f.svg"), scale=1)
    assert len(calls) == 2 and (tmp_path / "f.svg").read_text().startswith("<svg")

    def broken(self, path, **kw):
        calls.append(path)
        raise ValueError("bad figure")

    monkeypatch.setattr(go.Figure, "write_image", broken)
    calls.clear()
    with pytest.raises(ValueError):
        _write_image(fig, str(tmp_path / "g.svg"), scale=1)
    assert len(calls) == 1
