"""Issue 10, items 4 and 6: report folders and the manuscript's gate, through the real ``mirocals``
command and real renders (Jupyter kernel + Pandoc + Typst).

One module-scoped render pair: the closed report (with a cut, the allocation given) and THEN the
open report (same cut, same ``--out``, the allocation passed too and lying beside the data) into
one ``--out``. Every file of the open report's folder is then scanned (HTML and the resources
embedded in it, PDF text via pdftotext, SVG, CSV, Markdown, Typst, JSON sidecars, the marker).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test_cli import run  # the CLI run in-process: (status, stdout, stderr)

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")

CUT = "2019-06-30"

# arm labels and codes (case-sensitive: the protocol synopsis says "placebo-controlled"), masked labels
ARM_PATTERNS = [r"Low-dose IL-2", r"\bIL2LD\b", r"Placebo", r"\bPBO\b", r"Group A\b", r"Group B\b"]
TREG_PATTERNS = [r"(?i)treg", r"(?i)regulatory[ -]t"]
# declared arm-revealing in the study file by the data-access change of issue 10 (eosinophils,
# injection-site reactions, influenza-like illness): withheld from blinded views
REVEALING_PATTERNS = [r"(?i)eosinophil", r"\bEOS\b", r"(?i)injection[ -]site",
                      r"(?i)influenza[ -]like"]


@pytest.fixture(scope="module")
def private_tmp(tmp_path_factory):
    """This module's renders make their private temporary folders here (tempfile.tempdir), so a
    test can see that every one was removed."""
    # short (Chromium's socket path limit): /tmp/mrt-XXXXXXXX
    root = Path(tempfile.mkdtemp(prefix="mrt-", dir="/tmp" if os.access("/tmp", os.W_OK) else None))
    old = tempfile.tempdir
    tempfile.tempdir = str(root)
    yield root
    tempfile.tempdir = old
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def closed_then_open(demo_snapshot, private_tmp, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    timings = {}
    for name in ("dsmb-closed", "dsmb-open"):
        t0 = time.perf_counter()
        status, stdout, err = run("report", name, "--data", demo_snapshot, "--allocation",
                                  demo_snapshot / "allocation", "--cut", CUT, "--out", out,
                                  # every document, and the intermediates too: all are attacked
                                  "--to", "html,pdf,docx", "--keep-intermediates")
        timings[name] = time.perf_counter() - t0
        assert status == 0, err
        # the kernel's temporary files lived in the render's private folder, gone now
        assert not list(private_tmp.iterdir()), list(private_tmp.iterdir())
    print(f"render times (s): {timings}")
    return out, timings


def _texts(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) as text: PDF through pdftotext; HTML with
    each embedded base64 resource decoded and added; anything else decoded as UTF-8 (bytes that
    are not text as latin-1, so no byte goes unscanned)."""
    texts = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = str(path.relative_to(folder))
        if path.suffix == ".pdf":
            texts[key] = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                                        text=True, check=True).stdout
            continue
        if path.suffix == ".docx":   # a zip: every XML part (document, header, footer, properties)
            import zipfile       # (its images are the figures' SVGs drawn as PNG: the SVGs are scanned)
            with zipfile.ZipFile(path) as z:
                texts[key] = "\n".join(z.read(n).decode("utf-8") for n in z.namelist()
                                       if n.endswith((".xml", ".rels")))
            continue
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        if path.suffix == ".html":
            decoded = []
            for m in re.finditer(r"data:([\w/+.-]+);base64,([A-Za-z0-9+/=]+)", text):
                payload = base64.b64decode(m.group(2))
                decoded.append(payload.decode("utf-8", errors="replace"))
            text = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", text) + "\n".join(decoded)
        texts[key] = text
    return texts


def _hits(texts: dict[str, str], patterns) -> list[tuple[str, str, str]]:
    hits = []
    for key, text in texts.items():
        for pat in patterns:
            m = re.search(pat, text)
            if m:
                hits.append((key, pat, text[max(0, m.start() - 60):m.end() + 60]))
    return hits


def test_each_report_has_its_own_marked_folder(closed_then_open):
    out, _ = closed_then_open
    assert sorted(p.name for p in out.iterdir()) == ["dsmb-closed", "dsmb-open"]
    for name in ("dsmb-closed", "dsmb-open"):
        assert json.loads((out / name / ".mirocals-report.json").read_text())["report"] == name
    # the closed report's folder is private to its owner
    assert (out / "dsmb-closed").stat().st_mode & 0o077 == 0
    # the closed report's figures stay in its folder: none in the open report's
    closed_figs = {p.name for p in (out / "dsmb-closed" / "figures").iterdir()}
    open_figs = {p.name for p in (out / "dsmb-open" / "figures").iterdir()}
    assert "fig-km.svg" in closed_figs and "fig-km.svg" not in open_figs
    assert open_figs and open_figs <= {"fig-recruitment.svg", "fig-activation.svg", "fig-completeness.svg",
                                      "fig-death-forecast.svg", "fig-care-pooled.svg"}  # pooled, named apart


def test_no_cut_or_data_file_in_out(closed_then_open):
    # the cuts were made in private temporary folders: no snapshot part, parquet or _cut_ folder
    out, _ = closed_then_open
    every = [p for p in out.rglob("*")]
    assert not [p for p in every if p.suffix == ".parquet" or p.name.startswith(("_cut", "_src"))
                or p.name in ("clinical", "allocation")], every
    assert not [p for p in every if p.name == "manifest.json"]


def test_open_report_folder_names_no_arm_and_no_treg(closed_then_open):
    out, _ = closed_then_open
    texts = _texts(out / "dsmb-open")
    suffixes = {Path(k).suffix for k in texts}
    assert {".html", ".pdf", ".docx", ".svg", ".md", ".typ", ".json"} <= suffixes, suffixes
    print(f"scanned {len(texts)} files in the open report's folder: {sorted(texts)}")
    assert "OPEN SESSION REPORT" in texts["dsmb_open.pdf"]
    assert _hits(texts, ARM_PATTERNS + TREG_PATTERNS) == []


def test_open_report_folder_has_no_eosinophil_injection_site_or_flu_like(closed_then_open):
    # eosinophils (IL-2 raises them), injection-site reactions and influenza-like illness reveal the
    # arm; the study file declares them and the blinded view withholds them (data-access change)
    out, _ = closed_then_open
    assert _hits(_texts(out / "dsmb-open"), REVEALING_PATTERNS) == []


def test_closed_report_is_by_arm_on_the_cut(closed_then_open):
    out, _ = closed_then_open
    text = subprocess.run(["pdftotext", "-layout", str(out / "dsmb-closed" / "dsmb_closed.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "CLOSED SESSION REPORT" in text and "Low-dose IL-2" in text and f"Data cut-off date: {CUT}" in text


def test_rerender_same_report_replaces_its_folder(demo_snapshot, tmp_path, private_tmp, report_renders):
    # a second render of the same report into its own folder starts clean (no stale outputs); the
    # first render is the session's `mirocals report dsmb-open --to html,docx` (tests/report_renders.py),
    # copied with its marker
    first = report_renders.get("cli-clean")
    assert first.runs["cli-clean"].returncode == 0, first.runs["cli-clean"].stderr[-2000:]
    out = tmp_path / "out"
    shutil.copytree(first.folder("cli-clean"), out / "dsmb-open", symlinks=True)
    assert (out / "dsmb-open" / "dsmb_open.docx").exists()
    (out / "dsmb-open" / "figures" / "stale.svg").write_text("<svg/>")
    status, stdout, err = run("report", "dsmb-open", "--data", demo_snapshot, "--out", out, "--to", "html")
    assert status == 0, err
    assert not (out / "dsmb-open" / "figures" / "stale.svg").exists()
    assert not (out / "dsmb-open" / "dsmb_open.docx").exists()       # nor the first render's Word file
    assert stdout.strip().splitlines() == [str((out / "dsmb-open" / "dsmb_open.html").resolve())]


# --------------------------------------------------------------------------- refusals (no render)
def test_refuses_a_folder_holding_another_reports_outputs(demo_snapshot, tmp_path):
    out = tmp_path / "out"
    (out / "dsmb-open").mkdir(parents=True)
    (out / "dsmb-open" / ".mirocals-report.json").write_text(json.dumps({"report": "dsmb-closed"}))
    (out / "dsmb-open" / "dsmb_closed.html").write_text("<p>closed</p>")
    status, stdout, err = run("report", "dsmb-open", "--data", demo_snapshot, "--out", out)
    assert status == 2 and stdout == ""
    assert "dsmb-closed" in err and "refus" in err
    assert (out / "dsmb-open" / "dsmb_closed.html").exists()          # nothing touched


def test_refuses_a_folder_with_unmarked_files(demo_snapshot, tmp_path):
    # e.g. an old flat-layout render, or anything else someone put there
    out = tmp_path / "out"
    (out / "dsmb-open" / "_cut_2019-06-30" / "clinical").mkdir(parents=True)
    status, _, err = run("report", "dsmb-open", "--data", demo_snapshot, "--out", out)
    assert status == 2 and "not written by" in err


def test_refuses_an_out_that_is_a_report_folder(demo_snapshot, tmp_path):
    # --out pointing into the closed report's folder would nest the open report inside it
    closed = tmp_path / "out" / "dsmb-closed"
    closed.mkdir(parents=True)
    (closed / ".mirocals-report.json").write_text(json.dumps({"report": "dsmb-closed"}))
    for target in (closed, closed / "sub"):
        status, _, err = run("report", "dsmb-open", "--data", demo_snapshot, "--out", target)
        assert status == 2 and "folder of report dsmb-closed" in err
    assert sorted(p.name for p in closed.iterdir()) == [".mirocals-report.json"]


def test_closed_report_never_finds_an_allocation_beside_the_data(demo_snapshot, tmp_path):
    status, _, err = run("report", "dsmb-closed", "--data", demo_snapshot, "--out", tmp_path)
    assert status == 2 and "--allocation" in err and "never used" in err
    assert not any(tmp_path.iterdir())


def test_manuscript_needs_explicit_allocation_and_database_lock(demo_snapshot, tmp_path, monkeypatch):
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED", raising=False)
    # issue 10 item 6: the allocation beside the data is not picked up
    status, _, err = run("report", "manuscript", "--data", demo_snapshot, "--out", tmp_path)
    assert status == 2 and "--allocation" in err
    # the allocation given, but database lock not recorded
    status, _, err = run("report", "manuscript", "--data", demo_snapshot, "--allocation",
                         demo_snapshot / "allocation", "--out", tmp_path)
    assert status == 2 and "database lock" in err and "MIROCALS_DATABASE_LOCKED" in err
    monkeypatch.setenv("MIROCALS_DATABASE_LOCKED", "0")
    assert run("report", "manuscript", "--data", demo_snapshot, "--allocation", demo_snapshot / "allocation",
               "--out", tmp_path)[0] == 2
    assert not any(tmp_path.iterdir())


def test_database_lock_has_the_dashboards_definition(monkeypatch):
    from dashboard.auth import database_locked as dashboard_locked
    from reports.render import database_locked
    for value in ("1", "true", "yes", "0", "", "no", "TRUE"):
        monkeypatch.setenv("MIROCALS_DATABASE_LOCKED", value)
        assert database_locked() == dashboard_locked(), value
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED")
    assert database_locked() is False


def test_temporary_cut_removed_when_the_render_fails(demo_snapshot, tmp_path, private_tmp):
    # an allocation that cannot be read: the closed render fails (in the cut, or without a cut in
    # the kernel); either way its private folder is gone and --out holds no data
    bad = tmp_path / "badalloc"
    bad.mkdir()
    (bad / "allocation.parquet").write_bytes(b"not a parquet file")
    (bad / "manifest.json").write_text(json.dumps({"part": "allocation", "files": {"allocation.parquet": {}}}))
    for extra in (["--cut", CUT], []):
        status, _, err = run("report", "dsmb-closed", "--data", demo_snapshot, "--allocation", bad,
                             "--out", tmp_path / "out", *extra)
        assert status in (1, 2), err
        assert not list(private_tmp.iterdir()), list(private_tmp.iterdir())
        assert not [p for p in (tmp_path / "out").rglob("*") if p.suffix == ".parquet"]


def test_kernel_runs_in_the_private_folder(tmp_path):
    # the kernel's working directory and TMPDIR are the render's private folder, not --out or /tmp
    from reports.render import _kernel_env, render_qmd
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    (work / "t").mkdir()
    qmd = tmp_path / "where.qmd"
    qmd.write_text('---\ntitle: "W"\n---\n\n```{python}\n#| tags: [parameters]\nx = 1\n```\n\n'
                   '```{python}\nimport os, tempfile\nfrom IPython.display import Markdown\n'
                   'Markdown(f"cwd={os.getcwd()} tmp={tempfile.gettempdir()} alloc={os.environ.get(\'MIROCALS_ALLOCATION\')}")\n```\n')
    (tmp_path / "report").mkdir()
    os.environ["MIROCALS_ALLOCATION"] = "/somewhere"
    try:
        render_qmd(qmd, {}, tmp_path / "report", to=(), progress=lambda m: None, workdir=work / "kernel",
                   kernel_env=_kernel_env(work, "dsmb-open"))
    finally:
        os.environ.pop("MIROCALS_ALLOCATION", None)
    md = (tmp_path / "report" / "where.md").read_text()
    assert f"cwd={work / 'kernel'} tmp={work / 't'} alloc=None" in md


def test_documents_rendered_directly_have_the_same_gate(demo_snapshot, tmp_path, monkeypatch):
    # `quarto render dsmb_closed.qmd -P data_dir:...` without allocation_dir: refused in the document,
    # before any view is opened (open_view would otherwise take the allocation beside the data)
    from reports.render import ReportRefused
    from reports.report_lib import Report
    monkeypatch.delenv("MIROCALS_DATABASE_LOCKED", raising=False)
    with pytest.raises(ReportRefused, match="explicitly"):
        Report("dsmb-closed", str(demo_snapshot), "", None, False, str(tmp_path / "c"))
    with pytest.raises(ReportRefused, match="database lock"):
        Report("manuscript", str(demo_snapshot), str(demo_snapshot / "allocation"), None, False, str(tmp_path / "m"))
    assert not any(tmp_path.iterdir())
