"""Reports rendered for real (Jupyter kernel + Pandoc + Typst, or Quarto when installed) from the
demo trial; the PDF text is checked with pdftotext."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from reports.render import render_report
from tests.conftest import ARM_TOKENS

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def rendered(demo_snapshot, blinded_only_snapshot, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    audit = out / "audit.log"
    old = os.environ.get("MIROCALS_AUDIT_LOG")
    os.environ["MIROCALS_AUDIT_LOG"] = str(audit)
    try:
        paths = {
            # the open report is rendered from a deployment that has no allocation at all
            "open": render_report("dsmb-open", blinded_only_snapshot, out_dir=out / "open", progress=lambda m: None),
            "closed": render_report("dsmb-closed", demo_snapshot, demo_snapshot / "allocation", out_dir=out / "closed",
                                    progress=lambda m: None),
            "manuscript": render_report("manuscript", demo_snapshot, demo_snapshot / "allocation",
                                        out_dir=out / "manuscript", progress=lambda m: None),
        }
    finally:
        if old is None:
            os.environ.pop("MIROCALS_AUDIT_LOG", None)
        else:
            os.environ["MIROCALS_AUDIT_LOG"] = old
    return out, paths, audit


def test_every_report_has_html_and_pdf(rendered):
    _, paths, _ = rendered
    for name, files in paths.items():
        assert sorted(p.suffix for p in files) == [".html", ".pdf"], name
        assert all(p.stat().st_size > 10_000 for p in files)


def test_open_report_content_and_no_allocation(rendered, demo_snapshot):
    _, paths, _ = rendered
    text = pdf_text(next(p for p in paths["open"] if p.suffix == ".pdf"))
    assert "OPEN SESSION REPORT" in text
    cut = json.loads((demo_snapshot / "clinical" / "manifest.json").read_text())["cut_date"]
    assert f"Data cut-off date: {cut}" in text
    for section in ("Contents", "List of tables", "Summary of study status", "Enrolment", "Baseline characteristics",
                    "Adverse events", "Laboratory summaries"):
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
    out, paths, audit = rendered
    text = pdf_text(next(p for p in paths["closed"] if p.suffix == ".pdf"))
    assert "CLOSED SESSION REPORT - CONFIDENTIAL" in text
    for label in study.arm_labels:
        assert label in text
    for section in ("Efficacy: survival", "Efficacy: ALSFRS-R", "Regulatory T cells", "Group-sequential monitoring"):
        assert section in text, section
    assert re.search(r"Figure \d+\s+Kaplan-Meier estimate of survival by arm", text)
    assert "cox_stratified" in text and "logrank" in text
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {e["report"] for e in entries} == {"dsmb-closed", "manuscript"}
    assert all(e["action"] == "render" and e["snapshot"] for e in entries)


def test_manuscript_figures_in_three_formats(rendered):
    out, paths, _ = rendered
    figs = out / "manuscript" / "figures"
    for name in ("fig-consort", "fig-km", "fig-alsfrs", "fig-forest"):
        for ext in ("svg", "pdf", "png"):
            assert (figs / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    text = pdf_text(next(p for p in paths["manuscript"] if p.suffix == ".pdf"))
    assert "Table 1: baseline characteristics" in text or "Table 1 baseline" in text.replace(":", "")
    assert "CONSORT" in text


def test_same_snapshot_gives_identical_tables(rendered, blinded_only_snapshot, tmp_path):
    out, paths, _ = rendered
    again = render_report("dsmb-open", blinded_only_snapshot, out_dir=tmp_path / "again", to=("html",),
                          progress=lambda m: None)

    def tables(md_path):
        return [line for line in md_path.read_text().splitlines() if line.startswith("|")]
    first = tables(out / "open" / "dsmb_open.md")
    assert first and first == tables(tmp_path / "again" / "dsmb_open.md")


def test_open_report_refuses_nothing_but_closed_needs_allocation(blinded_only_snapshot, tmp_path):
    with pytest.raises(ValueError, match="allocation"):
        render_report("dsmb-closed", blinded_only_snapshot, out_dir=tmp_path, progress=lambda m: None)
