"""Reports as Word documents (issue 15), rendered for real (Jupyter kernel + Pandoc's docx writer
with reports/reference.docx) from the demo trial and opened with python-docx: native tables with
their caption above and their notes line below, the same cells as the HTML, the figures
embedded at print size, the banner in the header; the open report's Word file names no arm and
no Treg in any of its parts. Also: the report folder holds only what was asked for, and no
kernel warning reaches the console."""
from __future__ import annotations

import html
import io
import os
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest

docx = pytest.importorskip("docx", reason="python-docx (the test extra) is not installed")

from reports.render import render_report  # noqa: E402
from tests.conftest import ARM_TOKENS  # noqa: E402

STEM = {"dsmb-open": "dsmb_open", "dsmb-closed": "dsmb_closed", "manuscript": "manuscript"}
BANNER = {"dsmb-open": "OPEN SESSION REPORT", "dsmb-closed": "CLOSED SESSION REPORT - CONFIDENTIAL",
          "manuscript": "MANUSCRIPT OUTPUTS - CONFIDENTIAL"}
TEXT_WIDTH_CM = 18.0           # A4 less the reference document's 1.5 cm margins: 180 mm figures fit
ROOT = Path(__file__).resolve().parents[1]


def _cli(*args) -> subprocess.CompletedProcess:
    """The real command in its own process: what reaches the console (the kernel's too)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mirocals", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=900)


@pytest.fixture(scope="module")
def rendered(demo_snapshot, tmp_path_factory):
    """The three reports to HTML and Word (one render each, side by side), and the open report
    twice more from the command line, HTML only: without and with --keep-intermediates."""
    out = tmp_path_factory.mktemp("docx")
    old = {k: os.environ.get(k) for k in ("MIROCALS_AUDIT_LOG", "MIROCALS_DATABASE_LOCKED")}
    os.environ["MIROCALS_AUDIT_LOG"] = str(out / "audit.log")
    os.environ["MIROCALS_DATABASE_LOCKED"] = "1"              # the manuscript needs lock recorded
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {name: pool.submit(render_report, name, demo_snapshot,
                                         None if name == "dsmb-open" else demo_snapshot / "allocation",
                                         out_dir=out / "api", to=("html", "docx"), progress=lambda m: None)
                       for name in STEM}
            cli = {k: pool.submit(_cli, "report", "dsmb-open", "--data", demo_snapshot, "--out", out / k,
                                  "--to", "html", *(["--keep-intermediates"] if k == "keep" else []))
                   for k in ("clean", "keep")}
            paths = {name: f.result() for name, f in futures.items()}
            runs = {k: f.result() for k, f in cli.items()}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out, paths, runs


# ---- reading the HTML and the Word document -------------------------------------------------

def _norm(text: str) -> str:
    return " ".join(html.unescape(text).split())


class _Tables(HTMLParser):
    """Every <table> of an HTML document: its caption and its rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row, self._caption = [], None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "caption":
            self._caption = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "caption":
            self.tables[-1]["caption"] = _norm("".join(self._caption))
            self._caption = None
        elif tag in ("td", "th"):
            self._row.append(_norm("".join(self._cell)))
            self._cell = None
        elif tag == "tr":
            self.tables[-1]["rows"].append(self._row)

    def handle_data(self, data):
        for part in (self._cell, self._caption):
            if part is not None:
                part.append(data)


def html_tables(path: Path) -> list[dict]:
    text = path.read_text()
    parser = _Tables()
    parser.feed(text)
    notes = [(_norm(re.sub(r"<[^>]+>", "", m.group(1))) if m.group(1) is not None else None)
             for m in re.finditer(r"</table>\s*(?:</div>\s*)*(?:<p><em>(.*?)</em></p>)?", text, re.S)]
    assert len(notes) == len(parser.tables)
    for t, note in zip(parser.tables, notes):
        t["note"] = note
    return parser.tables


def docx_tables(doc) -> list[dict]:
    """Every table of the Word document with the paragraph before it (style, text) and its notes
    line (the next paragraph when it is all italic)."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph
    body = doc.element.body
    kids = list(body.iterchildren())
    out = []
    for i, el in enumerate(kids):
        if el.tag != docx.oxml.ns.qn("w:tbl"):
            continue
        before = next(Paragraph(k, doc) for k in reversed(kids[:i]) if k.tag == docx.oxml.ns.qn("w:p"))
        after = next((Paragraph(k, doc) for k in kids[i + 1:] if k.tag == docx.oxml.ns.qn("w:p")), None)
        italic = after is not None and after.runs and all(r.italic for r in after.runs if r.text.strip())
        out.append({"caption": _norm(before.text), "caption_style": before.style.name,
                    "rows": [[_norm(c.text) for c in row.cells] for row in Table(el, doc).rows],
                    "note": _norm(after.text) if italic and after.text.strip() else None})
    return out


def _cut(html_path: Path) -> str:
    return re.search(r"data cut-off (\d{4}-\d\d-\d\d)", html_path.read_text()).group(1)


# ---- tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(STEM))
def test_word_tables_are_native_with_caption_above_and_notes_below(rendered, name):
    out, paths, _ = rendered
    folder = out / "api" / name
    assert sorted(p.name for p in paths[name]) == sorted([f"{STEM[name]}.html", f"{STEM[name]}.docx"])
    doc = docx.Document(str(folder / f"{STEM[name]}.docx"))
    want, got = html_tables(folder / f"{STEM[name]}.html"), docx_tables(doc)
    cut = _cut(folder / f"{STEM[name]}.html")
    assert len(want) > 3 and len(got) == len(want) == len(doc.tables), (len(got), len(want))
    assert sum(bool(w["caption"]) for w in want) > 3
    for w, g in zip(want, got):
        # the caption is the paragraph just above the table, numbered, with the population and cut-off
        # (the tables inside the appendix's patient profiles have none, in the HTML as in Word)
        assert (g["caption_style"] == "Table Caption") == bool(w["caption"]), (g["caption"], w["caption"])
        if w["caption"]:
            assert g["caption"] == w["caption"] and re.match(r"Table \d+: ", g["caption"]), (g["caption"], w)
            assert f"data cut-off {cut}" in g["caption"], g["caption"]
        # the same cells as the HTML, header row first; the notes line follows the table
        assert g["rows"] == w["rows"], g["caption"]
        assert g["note"] == w["note"], g["caption"]
    assert sum(g["note"] is not None for g in got) >= len(got) // 2


@pytest.mark.parametrize("name", list(STEM))
def test_word_figures_embedded_at_print_size_and_banner_in_header(rendered, name):
    from PIL import Image
    out, _, _ = rendered
    folder = out / "api" / name
    doc = docx.Document(str(folder / f"{STEM[name]}.docx"))
    n_figures = folder.joinpath(f"{STEM[name]}.html").read_text().count("<figure")
    assert n_figures >= 3 and len(doc.inline_shapes) == n_figures
    for shape in doc.inline_shapes:
        width_in = shape.width / 914400
        assert 8.0 / 2.54 <= width_in <= TEXT_WIDTH_CM / 2.54 + 0.01, width_in     # one column .. text width
        rid = shape._inline.graphic.graphicData.pic.blipFill.blip.embed
        image = Image.open(io.BytesIO(doc.part.related_parts[rid].blob))
        assert image.format == "PNG"
        assert image.size[0] / width_in >= 295, (image.size, width_in)              # 300 dpi at print size
        if image.info.get("dpi"):      # a print figure (the manuscript's): at its own size, within the text
            own = image.size[0] / float(image.info["dpi"][0])
            assert abs(width_in - min(own, TEXT_WIDTH_CM / 2.54)) < 0.01, (width_in, own)
        assert abs(image.size[1] / image.size[0] - shape.height / shape.width) < 0.01   # not distorted
    # every figure has its numbered caption under it, with the cut-off
    captions = [p.text for p in doc.paragraphs if p.style.name == "Image Caption"]
    assert len(captions) == n_figures and all(re.match(r"Figure \d+: ", c) for c in captions)
    cut = _cut(folder / f"{STEM[name]}.html")
    assert all(f"data cut-off {cut}" in _norm(c) for c in captions), captions
    # the banner and the cut-off on every page (header), the session and page numbers (footer)
    section = doc.sections[0]
    assert section.header.paragraphs[0].text == f"{BANNER[name]}\tData cut-off {cut}"
    assert section.footer.paragraphs[0].text.split("\t")[1].startswith("Page ")
    text_width = docx.shared.Length(section.page_width - section.left_margin - section.right_margin)
    assert round(text_width.cm, 1) == TEXT_WIDTH_CM
    assert doc.paragraphs[1].text == BANNER[name]              # the subtitle under the title


def _cells(doc) -> list[list[str]]:
    return [[_norm(c.text) for c in row.cells] for t in doc.tables for row in t.rows]


def test_word_key_numbers_match_the_html(rendered, study):
    """Table 1's N per arm, the hazard ratio (95% CI) and the deaths per arm: the same cells in the
    Word document as in the HTML, for the closed report and the manuscript."""
    out, _, _ = rendered
    arms = list(study.arm_labels)
    for name in ("dsmb-closed", "manuscript"):
        folder = out / "api" / name
        doc = docx.Document(str(folder / f"{STEM[name]}.docx"))
        want = {t["caption"]: t for t in html_tables(folder / f"{STEM[name]}.html")}
        got = {t["caption"]: t for t in docx_tables(doc)}
        base = next(c for c in got if re.search(r"Baseline characteristics", c))
        header = got[base]["rows"][0]
        assert header == want[base]["rows"][0]
        for arm in arms:
            assert any(re.fullmatch(rf"{re.escape(arm)}.*N\s*=\s*\d+\)?", h) for h in header), (arm, header)
        # the primary analysis: the stratified Cox hazard ratio with its 95% CI
        hr = [(c, row) for c, t in got.items() for row in t["rows"]
              if row[0].startswith("Cox HR stratified") and re.fullmatch(r"\d\.\d\d \(\d\.\d\d to \d\.\d\d\)", row[1])]
        assert hr, name
        for c, row in hr:
            assert row in want[c]["rows"], (c, row)
            assert row[1] in folder.joinpath(f"{STEM[name]}.html").read_text()
        # deaths per arm and in total
        deaths = [(c, row) for c, t in got.items() for row in t["rows"] if row[0] == "Deaths"]
        assert deaths, name
        for c, row in deaths:
            assert row in want[c]["rows"], (c, row)
            assert int(row[1]) + int(row[2]) == int(row[3]) > 0, row


def test_open_word_document_names_no_arm_and_no_treg(rendered):
    out, _, _ = rendered
    path = out / "api" / "dsmb-open" / "dsmb_open.docx"
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n).decode("utf-8") for n in z.namelist() if n.endswith((".xml", ".rels"))}
    assert {"word/document.xml", "word/header1.xml", "docProps/custom.xml"} <= set(parts)
    assert "OPEN SESSION REPORT" in parts["word/header1.xml"]
    for part, text in parts.items():
        for token in (*ARM_TOKENS, "Treg", "TREG"):
            assert token not in text, (part, token)
        assert not re.search(r"(?i)treg|regulatory[ -]t", text), part


def test_report_folder_holds_only_what_was_asked_and_no_kernel_warning(rendered):
    out, _, runs = rendered
    for k, run in runs.items():
        assert run.returncode == 0, run.stderr[-2000:]
        assert "without encryption" not in run.stderr and "TCP" not in run.stderr, run.stderr[-2000:]
    clean = {p.name for p in (out / "clean" / "dsmb-open").iterdir()}
    assert clean - {"tables"} == {".mirocals-report.json", "dsmb_open.html", "figures"}, clean
    assert {p.suffix for p in (out / "clean" / "dsmb-open" / "figures").iterdir()} == {".svg"}
    keep = {p.name for p in (out / "keep" / "dsmb-open").iterdir()}
    assert {"dsmb_open.html", "dsmb_open.md", "dsmb_open.html.md", "dsmb_open.meta.json", "figures"} <= keep, keep
    # the API renders asked for HTML and Word: those, figures/, tables/ and the marker only
    for name in STEM:
        names = {p.name for p in (out / "api" / name).iterdir()}
        assert names - {"tables"} == {".mirocals-report.json", f"{STEM[name]}.html", f"{STEM[name]}.docx",
                                      "figures"}, names


def test_unknown_format_is_refused_before_rendering(demo_snapshot, tmp_path):
    from tests.test_cli import run
    status, _, err = run("report", "dsmb-open", "--data", demo_snapshot, "--out", tmp_path, "--to", "html,word")
    assert status == 2 and "'html,word'" in err and "html, pdf, docx" in err, err
    assert not (tmp_path / "dsmb-open").exists()
