"""Reports as Word documents (issue 15), rendered for real (Jupyter kernel + Pandoc's docx writer
with reports/reference.docx) from the demo trial and opened with python-docx: native tables with
their caption above and their notes line below, the same cells as the HTML, the figures
embedded at print size, the banner in the header; the open report's Word file names no arm and
no Treg in any of its parts. Also: the report folder holds only what was asked for, and no
kernel warning reaches the console."""
from __future__ import annotations

import html
import io
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

docx = pytest.importorskip("docx", reason="python-docx (the test extra) is not installed")

from tests.conftest import ARM_TOKENS  # noqa: E402

STEM = {"dsmb-open": "dsmb_open", "dsmb-closed": "dsmb_closed", "manuscript": "manuscript"}
BANNER = {"dsmb-open": "OPEN SESSION REPORT", "dsmb-closed": "CLOSED SESSION REPORT - CONFIDENTIAL",
          "manuscript": "MANUSCRIPT OUTPUTS - CONFIDENTIAL"}
TEXT_WIDTH_CM = 18.0           # A4 less the reference document's 1.5 cm margins: 180 mm figures fit


KEY = {"dsmb-open": "open", "dsmb-closed": "closed", "manuscript": "manuscript"}   # tests/report_renders.py


@pytest.fixture(scope="module")
def rendered(report_renders):
    """The session's shared renders (tests/report_renders.py): the three reports to HTML, PDF and
    Word through the API (one render each, side by side, intermediates kept), and the open report
    twice more from the command line, HTML and Word: without and with --keep-intermediates."""
    return report_renders.get(*KEY.values(), "cli-clean", "cli-keep")


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
    folder = rendered.folder(KEY[name])
    written = sorted(p.name for p in rendered.paths[KEY[name]])
    assert written == sorted(f"{STEM[name]}.{ext}" for ext in ("html", "pdf", "docx"))
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
    folder = rendered.folder(KEY[name])
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
    arms = list(study.arm_labels)
    for name in ("dsmb-closed", "manuscript"):
        folder = rendered.folder(KEY[name])
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
    path = rendered.folder("open") / "dsmb_open.docx"
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n).decode("utf-8") for n in z.namelist() if n.endswith((".xml", ".rels"))}
    assert {"word/document.xml", "word/header1.xml", "docProps/custom.xml"} <= set(parts)
    assert "OPEN SESSION REPORT" in parts["word/header1.xml"]
    for part, text in parts.items():
        for token in (*ARM_TOKENS, "Treg", "TREG"):
            assert token not in text, (part, token)
        assert not re.search(r"(?i)treg|regulatory[ -]t", text), part


def test_report_folder_holds_only_what_was_asked_and_no_kernel_warning(rendered):
    for k, run in rendered.runs.items():
        assert run.returncode == 0, run.stderr[-2000:]
        assert "without encryption" not in run.stderr and "TCP" not in run.stderr, run.stderr[-2000:]
    # `mirocals report dsmb-open --to html,docx`: the documents, figures/ (SVG only: the PNGs drawn
    # for Word stay in the temporary folder), tables/ and the marker
    clean = {p.name for p in rendered.folder("cli-clean").iterdir()}
    assert clean - {"tables"} == {".mirocals-report.json", "dsmb_open.html", "dsmb_open.docx", "figures"}, clean
    assert {p.suffix for p in (rendered.folder("cli-clean") / "figures").iterdir()} == {".svg"}
    keep = {p.name for p in rendered.folder("cli-keep").iterdir()}
    assert {"dsmb_open.html", "dsmb_open.docx", "dsmb_open.md", "dsmb_open.html.md", "dsmb_open.docx.md",
            "dsmb_open.meta.json", "figures"} <= keep, keep
    # the API renders asked for HTML, PDF and Word with the intermediates kept: those, figures/,
    # tables/, the PNGs drawn for Word (png/) and the marker only
    for name, stem in STEM.items():
        names = {p.name for p in rendered.folder(KEY[name]).iterdir()}
        assert names - {"tables", "png"} == {".mirocals-report.json", "figures",
                                             *(f"{stem}.{ext}" for ext in ("html", "pdf", "docx", "md", "html.md",
                                                                           "docx.md", "typ", "meta.json"))}, names


def test_unknown_format_is_refused_before_rendering(demo_snapshot, tmp_path):
    from tests.test_cli import run
    status, _, err = run("report", "dsmb-open", "--data", demo_snapshot, "--out", tmp_path, "--to", "html,word")
    assert status == 2 and "'html,word'" in err and "html, pdf, docx" in err, err
    assert not (tmp_path / "dsmb-open").exists()


# ---- Word layout: column widths, the header banner, the document as LibreOffice lays it out ----

def test_table_columns_get_their_longest_word_and_the_rest_by_content():
    from reports.docx_layout import LINE_CHARS, column_widths, fit_table_columns
    md = ("Text\n\n| Site | Site name | Country | Activated | Screened |\n|:---|:---|:---|:---|---:|\n"
          "| FR01 | Paris Pitie-Salpetriere | France | 2017-06-19 | 28 |\n"
          "| UK01 | London King's College Hospital | UK | 2017-08-14 | 32 |\n\n: Sites {#tbl-sites}\n")
    out = fit_table_columns(md)
    lines, before = out.split("\n"), md.split("\n")
    assert [ln for i, ln in enumerate(lines) if i != 3] == [ln for i, ln in enumerate(before) if i != 3]  # cells kept
    rule = lines[3].strip("|").split("|")
    assert [r[0] == ":" for r in rule] == [True, True, True, True, False] and rule[4].endswith(":")
    widths = [len(r.strip(":")) for r in rule]
    assert sum(widths) > 72                           # Pandoc applies relative widths only past 72
    w = dict(zip(["Site", "Site name", "Country", "Activated", "Screened"], widths))
    assert w["Activated"] >= 2 * len("2017-06-19")   # a date is never broken at its hyphens
    assert w["Country"] >= 2 * len("Country") and w["Screened"] >= 2 * len("Screened")
    assert w["Site name"] == max(widths)              # the long names get the spare width
    # a table too wide for the line: every column keeps at least its longest word
    wide = column_widths(["Characteristic"] * 12, [["2017-06-19 Unbreakable-word"] * 12])
    assert sum(wide) > LINE_CHARS and min(wide) >= len("2017-06-19")


def test_word_columns_fit_their_words_and_the_banner_field_is_red_and_bold(rendered):
    """In the open report's Word file every table column is at least as wide as its longest
    unbreakable word at 8 pt plus the cell margins (when the table's words fit the line), and
    every run of the banner field is bold and red (LibreOffice formats a field by its first run)."""
    from reports.docx_layout import _words
    qn = docx.oxml.ns.qn
    path = rendered.folder("open") / "dsmb_open.docx"
    doc = docx.Document(str(path))
    text_pt = TEXT_WIDTH_CM / 2.54 * 72
    checked = 0
    for table in doc.tables:
        # the table spans the text width (100 %); its grid gives each column's share
        assert table._tbl.tblPr.find(qn("w:tblW")).get(qn("w:type")) == "pct"
        assert table._tbl.tblPr.find(qn("w:tblW")).get(qn("w:w")) == "5000"
        grid = [int(g.get(qn("w:w"))) for g in table._tbl.tblGrid.findall(qn("w:gridCol"))]
        if len(grid) < 3:
            continue
        rows = [[c.text for c in row.cells] for row in table.rows]
        # at 5.1 pt a character (DejaVu Sans' digits, the widest font a reader may get), header bold
        need = [max([len(w) * 1.12 for w in _words(rows[0][j])] + [len(w) for r in rows[1:] for w in _words(r[j])])
                * 5.1 + 5.7 for j in range(len(grid))]
        if sum(need) > text_pt:     # too many columns for the line (the death projection): some word breaks
            continue
        for j, twips in enumerate(grid):
            assert twips / sum(grid) * text_pt >= need[j], (rows[0], j, twips, need[j])
            checked += 1
    assert checked > 50
    with zipfile.ZipFile(path) as z:
        header = z.read("word/header1.xml").decode()
    field = header[:header.index('w:fldCharType="end"')]
    runs = re.findall(r"<w:r>(.*?)</w:r>", field)
    assert len(runs) >= 4 and all("<w:b/>" in r and 'w:val="B00020"' in r for r in runs), runs


def test_word_document_as_libreoffice_lays_it_out(rendered, tmp_path):
    """The open report's Word file converted by LibreOffice (when installed; a one-off visual
    check otherwise): every page carries the banner and "Page n of m", the site table's dates are
    whole, and the figures are there."""
    import shutil
    import subprocess
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None or shutil.which("pdftotext") is None:
        pytest.skip("LibreOffice (soffice) or pdftotext not installed")
    src = rendered.folder("open") / "dsmb_open.docx"
    subprocess.run([soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path / 'profile'}",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), str(src)],
                   check=True, capture_output=True, timeout=300)
    pdf = tmp_path / "dsmb_open.pdf"
    pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")[:-1]
    assert len(pages) > 10
    for n, page in enumerate(pages, start=1):
        assert "OPEN SESSION REPORT" in page.splitlines()[0], n
        assert f"Page {n} of {len(pages)}" in page, n
    text = "\n".join(pages)
    sites = re.findall(r"^\s*((?:FR|UK)\d\d)\s.*?(\d{4}-\d\d-\d\d)\s", text, re.M)
    assert len(sites) >= 10, sites                 # each site's row with its activation date on one line
    if shutil.which("pdfimages"):                 # poppler-utils, as pdftotext
        listed = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                                check=True).stdout.splitlines()[2:]
        assert sum(" image " in line for line in listed) >= 5, listed     # the open report's five figures
