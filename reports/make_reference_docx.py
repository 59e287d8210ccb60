"""Build ``reports/reference.docx``: the Pandoc reference document that sets the fonts, margins,
table and caption styles, header and footer of every report rendered to Word (``mirocals report
NAME --to docx``; Quarto: ``format: docx: reference-doc: reference.docx``).

Starts from Pandoc's own default (``pandoc -o ... --print-default-data-file reference.docx``, so
every style Pandoc writes exists) and adjusts it with python-docx:

- A4, margins 1.5 cm left and right, 2 cm top and bottom: a text width of 18 cm, so a journal
  two-column figure (180 mm, the manuscript's) is shown at its print size, and wide tables fit;
  Arial 10 pt body, headings in the same family; tables 8 pt. Arial, not Liberation Sans (the
  font of the PDF and the figures): Word has Arial everywhere and no Liberation Sans, and
  LibreOffice shows Arial in Liberation Sans (metric-compatible: the same line breaks);
- the "Table" table style Pandoc gives every table: thin borders on all cells, header row bold;
- "Table Caption" (Pandoc writes it ABOVE the table) bold 9 pt, kept with the table; "Image
  Caption" 9 pt under the figure;
- header: the session banner and the data cut-off, footer: the session label and "Page n of m".
  They are Word fields (DOCPROPERTY banner / cut / session: Pandoc writes the document's
  metadata as custom properties, Word updates the fields on printing); ``reports.render`` also
  writes their shown text, so a reader that never updates fields (LibreOffice, python-docx) shows
  the right banner. Every run of the banner field is bold and red: LibreOffice formats a field
  by its first run, Word by its result.

Run: ``python reports/make_reference_docx.py`` (needs python-docx, the test extra) and commit the
result.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "reference.docx"
FONT = "Arial"           # Liberation Sans where Arial is absent (metric-compatible)
RED = "B00020"
# the shown text of the header/footer fields before a render fills them (reports.render)
PLACEHOLDERS = {"banner": "SESSION BANNER", "cut": "CUT-OFF DATE", "session": "SESSION"}


def _pandoc_default(path: Path) -> None:
    import pypandoc
    subprocess.run([pypandoc.get_pandoc_path(), "-o", str(path), "--print-default-data-file", "reference.docx"],
                   check=True)


def _set_font(style, size=None, bold=None, italic=None, color=None):
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor
    font = style.font
    font.name = FONT
    rpr = style.element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        rfonts.set(qn(attr), FONT)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme"):
        rfonts.attrib.pop(qn(attr), None)
    if size is not None:
        font.size = Pt(size)
    if bold is not None:
        font.bold = bold
    if italic is not None:
        font.italic = italic
    if color is not None:
        font.color.rgb = RGBColor.from_string(color)


def _field(paragraph, instr: str, shown: str, bold=False, color=None):
    """A complex Word field (``instr``) whose current result is ``shown``."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import RGBColor

    def styled(run):
        # every run of the field: LibreOffice draws a field in its first run's format, Word in its result's
        if bold:
            run.bold = True
        if color:
            run.font.color.rgb = RGBColor.from_string(color)
        return run

    def fld(kind):
        r = styled(paragraph.add_run())
        el = OxmlElement("w:fldChar")
        el.set(qn("w:fldCharType"), kind)
        r._r.append(el)
    fld("begin")
    r = styled(paragraph.add_run())
    it = OxmlElement("w:instrText")
    it.set(qn("xml:space"), "preserve")
    it.text = f" {instr} "
    r._r.append(it)
    fld("separate")
    styled(paragraph.add_run(shown))
    fld("end")


def build(out: Path = OUT) -> Path:
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.text import WD_TAB_ALIGNMENT
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "default.docx"
        _pandoc_default(base)
        doc = Document(str(base))
    styles = doc.styles
    # document defaults and every paragraph style Pandoc uses
    defaults = styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    rfonts = defaults.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = OxmlElement("w:rFonts")
        defaults.insert(0, rfonts)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme"):
        rfonts.attrib.pop(qn(attr), None)
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        rfonts.set(qn(attr), FONT)
    sizes = {"Normal": 10, "Body Text": 10, "First Paragraph": 10, "Compact": 8, "Title": 20, "Subtitle": 14,
             "Author": 11, "Date": 11, "Abstract": 10, "Heading 1": 15, "Heading 2": 12.5, "Heading 3": 11,
             "Heading 4": 10, "Heading 5": 10, "Heading 6": 10, "Block Text": 10, "Footnote Text": 8,
             "TOC Heading": 14}
    for name, size in sizes.items():
        try:
            style = styles[name]
        except KeyError:
            continue
        _set_font(style, size, bold=True if name.startswith(("Heading", "Title", "TOC")) else None,
                  color="000000" if name.startswith(("Heading", "Title", "TOC")) else None)
    _set_font(styles["Subtitle"], 14, bold=True, color=RED)          # the session banner (subtitle)
    # table caption: above the table (Pandoc's docx writer), bold, kept with the table
    cap = styles["Table Caption"]
    _set_font(cap, 9, bold=True, italic=False)
    cap.paragraph_format.keep_with_next = True
    cap.paragraph_format.space_before = Pt(10)
    cap.paragraph_format.space_after = Pt(3)
    _set_font(styles["Image Caption"], 9, italic=False)
    styles["Image Caption"].paragraph_format.space_after = Pt(10)
    styles["Captioned Figure"].paragraph_format.keep_with_next = True
    # the "Table" table style: borders on every cell, small cell margins, bold header row
    table = styles["Table"]
    tblpr = table.element.find(qn("w:tblPr"))
    if tblpr is None:
        tblpr = OxmlElement("w:tblPr")
        table.element.append(tblpr)
    for old in tblpr.findall(qn("w:tblBorders")):
        tblpr.remove(old)
    borders = OxmlElement("w:tblBorders")
    for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
        b = OxmlElement(f"w:{side}")
        b.set(qn("w:val"), "single")
        b.set(qn("w:sz"), "4")          # eighths of a point: 0.5 pt
        b.set(qn("w:space"), "0")
        b.set(qn("w:color"), "A0A0A0")
        borders.append(b)
    # the schema's order (Word refuses a file out of order): ... tblInd, tblBorders, shd, tblLayout,
    # tblCellMar, tblLook
    mar = tblpr.find(qn("w:tblCellMar"))
    if mar is None:
        mar = OxmlElement("w:tblCellMar")
        tblpr.append(mar)
    mar.addprevious(borders)
    for side in ("left", "right"):                    # cell margins 1 mm (twentieths of a point)
        el = mar.find(qn(f"w:{side}"))
        if el is None:
            el = OxmlElement(f"w:{side}")
            mar.append(el)
        el.set(qn("w:w"), "57")
        el.set(qn("w:type"), "dxa")
    # the header row bold (its conditional formatting: rPr goes before tcPr)
    for cond in table.element.findall(qn("w:tblStylePr")):
        if cond.get(qn("w:type")) == "firstRow":
            rpr = OxmlElement("w:rPr")
            rpr.append(OxmlElement("w:b"))
            tcpr = cond.find(qn("w:tcPr"))
            if tcpr is not None:
                tcpr.addprevious(rpr)
            else:
                cond.append(rpr)
    _set_font(table, 8)
    # page: A4 portrait, text 18 cm wide, header and footer
    for section in doc.sections:
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = Cm(21), Cm(29.7)
        section.left_margin = section.right_margin = Cm(1.5)
        section.top_margin = section.bottom_margin = Cm(2.0)
        section.header_distance = section.footer_distance = Cm(1.2)
        right = section.page_width - section.left_margin - section.right_margin
        head = section.header.paragraphs[0]
        head.paragraph_format.tab_stops.add_tab_stop(right, WD_TAB_ALIGNMENT.RIGHT)
        _field(head, "DOCPROPERTY banner", PLACEHOLDERS["banner"], bold=True, color=RED)
        head.add_run("\tData cut-off ")
        _field(head, "DOCPROPERTY cut", PLACEHOLDERS["cut"])
        foot = section.footer.paragraphs[0]
        foot.paragraph_format.tab_stops.add_tab_stop(right, WD_TAB_ALIGNMENT.RIGHT)
        _field(foot, "DOCPROPERTY session", PLACEHOLDERS["session"])
        foot.add_run("\tPage ")
        _field(foot, "PAGE", "1")
        foot.add_run(" of ")
        _field(foot, "NUMPAGES", "1")
        for p in (head, foot):
            for run in p.runs:
                run.font.size = Pt(8)
                run.font.name = FONT
    # the body of Pandoc's default reference document is a style sample: Pandoc uses only the
    # styles, header, footer and page set-up, but keep the file small and neutral
    body = doc.element.body
    for child in list(body):
        if child.tag != qn("w:sectPr"):
            body.remove(child)
    doc.core_properties.title = "MIROCALS report"
    doc.core_properties.author = "Trial Statistics Unit"
    doc.save(str(out))
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
