"""The manuscript's journal figures and its HTML, from a real render of the demo trial (Jupyter
kernel, kaleido + Debian chromium, Pandoc; the session's shared render, tests/report_renders.py):
every figure file against the figure specification (reports/figure_spec.py): PNG/TIFF pixel size
and the dpi written in the file, SVG and PDF print size, no title or caption inside a figure, text
>= 7 pt at print size, the arms separable by line style (Kaplan-Meier and ALSFRS-R); the DSMB
reports' figures by the same print rules at the text width; then the HTML opened in a real
browser (banner, table style, print media, screenshot)."""
from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from reports.figure_spec import MANUSCRIPT_FIGURES, markdown_table

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
SVG_NS = "{http://www.w3.org/2000/svg}"
# what the builders would put above the plot on screen, and the manuscript's captions
TITLES = {"fig-consort": ["CONSORT flow diagram", "CONSORT 2025 flow diagram"],
          "fig-km": ["Overall survival", "Kaplan-Meier survival by arm"],
          "fig-alsfrs": ["ALSFRS-R total: mean change from baseline", "ALSFRS-R total, mean change from baseline"],
          "fig-forest": ["Hazard ratio by subgroup", "Hazard ratio (95% CI) for death by pre-specified subgroup"]}


@pytest.fixture(scope="module")
def manuscript(report_renders):
    """The session's shared manuscript render (tests/report_renders.py: HTML, PDF and Word)."""
    folder = report_renders.get("manuscript").folder("manuscript")
    return folder / "manuscript.html", folder / "figures"


def _svg(path: Path):
    root = ET.parse(path).getroot()
    return root, [t for t in root.iter(f"{SVG_NS}text")]


def _svg_size_in(root) -> tuple[float, float, float]:
    """(width in, height in, print px per layout px) of a plotly SVG (width/height in CSS px)."""
    w, h = float(root.get("width")), float(root.get("height"))
    view_w = float(root.get("viewBox").split()[2])
    return w / 96, h / 96, w / view_w


def _text(el) -> str:
    return "".join(el.itertext())


def _font_px(el) -> float | None:
    """A text's drawn size in layout px: its font size times the scale plotly gives it (text
    inside a bar is shrunk to the bar's thickness by a transform, not by its font size)."""
    m = re.search(r"font-size:\s*([\d.]+)px", el.get("style", ""))
    if not m:
        return None
    scale = re.search(r"scale\(([\d.]+)", el.get("transform", ""))
    return float(m.group(1)) * (float(scale.group(1)) if scale else 1.0)


@pytest.mark.parametrize("label", list(MANUSCRIPT_FIGURES))
def test_bitmaps_carry_their_dpi_and_print_size(manuscript, label):
    _, figs = manuscript
    spec = MANUSCRIPT_FIGURES[label]
    svg_w, svg_h, _ = _svg_size_in(_svg(figs / f"{label}.svg")[0])
    for fmt in ("png", "tiff"):
        assert fmt in spec.formats
        with Image.open(figs / f"{label}.{fmt}") as img:
            dpi = img.info.get("dpi")
            assert dpi is not None, f"{label}.{fmt} has no dpi written"
            assert round(dpi[0]) == round(dpi[1]) == spec.dpi, (label, fmt, dpi)
            assert abs(img.width - spec.width_in * spec.dpi) <= 2, (label, fmt, img.size)
            height_in = spec.height_in or svg_h           # the diagram's own aspect: as its SVG
            assert abs(img.height - height_in * spec.dpi) <= 3, (label, fmt, img.size)
            if fmt == "tiff":
                assert img.info.get("compression") == "tiff_lzw"
    assert spec.dpi == (600 if spec.art == "line art" else 300)


@pytest.mark.parametrize("label", list(MANUSCRIPT_FIGURES))
def test_vector_files_at_print_size(manuscript, label):
    _, figs = manuscript
    spec = MANUSCRIPT_FIGURES[label]
    w, h, _ = _svg_size_in(_svg(figs / f"{label}.svg")[0])
    assert abs(w - spec.width_in) < 0.01, (label, w)
    if spec.height_in is not None:
        assert abs(h - spec.height_in) < 0.01, (label, h)
    assert h <= 9.5, f"{label} is taller than a journal page"
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(figs / f"{label}.pdf")], capture_output=True, text=True,
                              check=True).stdout
        pw, ph = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
        assert abs(pw / 72 - spec.width_in) < 0.02, (label, pw)
        assert abs(ph / 72 - h) < 0.02, (label, ph)
    else:
        head = (figs / f"{label}.pdf").read_bytes()[:5]
        assert head == b"%PDF-"


@pytest.mark.parametrize("label", list(MANUSCRIPT_FIGURES))
def test_no_title_or_caption_inside_a_figure(manuscript, label):
    html, figs = manuscript
    root, texts = _svg(figs / f"{label}.svg")
    drawn = " ".join(_text(t) for t in texts)
    assert len(drawn) > 50                      # the figure's own words are there (axes, labels)
    page = html.read_text()
    for title in TITLES[label]:
        assert title not in drawn, f"{label} draws {title!r}"
    assert "Data cut-off" not in drawn          # no on-screen subtitle either
    # the caption the figure must not repeat is in the document
    assert any(t in page for t in TITLES[label]), label


@pytest.mark.parametrize("label", list(MANUSCRIPT_FIGURES))
def test_smallest_text_is_at_least_7_pt_at_print_size(manuscript, label):
    _, figs = manuscript
    root, texts = _svg(figs / f"{label}.svg")
    _, _, scale = _svg_size_in(root)
    sizes = []
    for t in texts:
        if not _text(t).strip():
            continue
        px = _font_px(t)
        assert px, f"{label}: text {_text(t)!r} without a font size"
        sizes.append(px * scale * 0.75)      # px at print size -> pt
    assert sizes and min(sizes) >= 7.0, (label, min(sizes))


def _curve_dashes(svg: Path) -> dict[str, set]:
    """Line colour -> {dashed?} of the line traces (plotly's ``js-line`` paths: the curves and
    their legend samples; not the error bars or the confidence bands)."""
    curves = {}
    for p in _svg(svg)[0].iter(f"{SVG_NS}path"):
        style = p.get("style", "")
        colour = re.search(r"stroke:\s*(rgb\([^)]*\))", style)
        width = re.search(r"stroke-width:\s*([\d.]+)px", style)
        if "js-line" in (p.get("class") or "").split() and colour and width and float(width.group(1)) >= 2:
            curves.setdefault(colour.group(1), set()).add("stroke-dasharray" in style
                                                          and "stroke-dasharray: none" not in style)
    return curves


EXPERIMENTAL, REFERENCE = "rgb(0, 114, 178)", "rgb(213, 94, 0)"    # Okabe-Ito blue, vermillion


@pytest.mark.parametrize("label", ["fig-km", "fig-alsfrs"])
def test_arms_differ_by_line_style(manuscript, label):
    # the arms' curves (and their legend samples) in Okabe-Ito colours, the reference arm dashed
    _, figs = manuscript
    curves = _curve_dashes(figs / f"{label}.svg")
    assert curves.get(EXPERIMENTAL) == {False}, curves
    assert curves.get(REFERENCE) == {True}, curves


# ---- the DSMB reports' figures follow the same print rules (reports/figure_spec.report_figure_px) ----

@pytest.fixture(scope="module")
def dsmb_figures(report_renders):
    r = report_renders.get("open", "closed")
    return {key: sorted((r.folder(key) / "figures").glob("*.svg")) for key in ("open", "closed")}


def test_dsmb_figures_printed_without_title_at_the_text_width_in_7_pt_or_more(dsmb_figures):
    from reports.figure_spec import TWO_COLUMNS_IN
    pdf_text_in = (21 - 2 * 1.6) / 2.54          # reports/template.typ: A4, 1.6 cm side margins
    for key, svgs in dsmb_figures.items():
        assert len(svgs) >= 5, (key, svgs)
        for svg in svgs:
            root, texts = _svg(svg)
            w, _, scale = _svg_size_in(root)
            assert abs(w - TWO_COLUMNS_IN) < 0.01 and scale == 1, (svg.name, w)
            # no title above the plot (plotly's "gtitle"): the caption carries it
            assert not [t for t in texts if "gtitle" in (t.get("class") or "")], svg.name
            sizes = [px for t in texts if _text(t).strip() for px in [_font_px(t)] if px]
            # at the PDF's text width (the figure shown at 100 %) and at 18 cm in Word
            assert sizes and min(sizes) * 0.75 * min(pdf_text_in, 18 / 2.54) / w >= 7.0, (svg.name, min(sizes))


def test_dsmb_closed_figures_separate_the_arms_by_line_style(dsmb_figures):
    figs = {p.stem: p for p in dsmb_figures["closed"]}
    for label in ("fig-km", "fig-alsfrs"):
        curves = _curve_dashes(figs[label])
        assert curves.get(EXPERIMENTAL) == {False} and curves.get(REFERENCE) == {True}, (label, curves)


def test_readme_prints_the_figure_specification():
    assert markdown_table() in (ROOT / "README.md").read_text()


@pytest.mark.browser
def test_html_report_styled_printable_and_self_contained(manuscript):
    from playwright.sync_api import sync_playwright
    html, _ = manuscript
    source = html.read_text()
    assert not re.search(r'<link[^>]+stylesheet', source)             # CSS embedded
    assert not re.search(r'<img[^>]+src="(?!data:)', source)          # images embedded
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(html.as_uri())
            banner = page.locator("#title-block-header .subtitle")
            assert banner.inner_text() == "MANUSCRIPT OUTPUTS - CONFIDENTIAL"
            style = banner.evaluate("e => { const s = getComputedStyle(e); "
                                    "return [s.backgroundColor, s.color, s.fontWeight]; }")
            assert style[:2] == ["rgb(176, 0, 32)", "rgb(255, 255, 255)"] and int(style[2]) >= 700
            table = page.locator("table#tbl-baseline")
            css = table.evaluate("e => { const s = getComputedStyle(e); const c = getComputedStyle("
                                 "e.querySelector('td')); const cap = getComputedStyle(e.querySelector('caption'));"
                                 "return [s.borderCollapse, s.fontFamily, c.borderTopStyle, c.borderTopWidth,"
                                 "cap.captionSide, s.fontSize]; }")
            assert css[0] == "collapse" and "Liberation Sans" in css[1], css
            assert css[2] == "solid" and css[3] == "1px" and css[4] == "top", css
            assert "Reproducibility: snapshot" in page.inner_text("body")
            assert page.locator("img[src^='data:image/svg']").count() >= 4
            page.screenshot(path=str(SHOTS / "manuscript_html.png"), full_page=False)
            screen_size = css[5]
            page.emulate_media(media="print")
            printed = table.evaluate("e => [getComputedStyle(e).fontSize, "
                                     "getComputedStyle(document.body).maxWidth]")
            assert printed[0] != screen_size and abs(float(printed[0][:-2]) - 7 * 96 / 72) < 0.1, printed
            assert printed[1] == "none"
            page.screenshot(path=str(SHOTS / "manuscript_html_print.png"), full_page=False)
        finally:
            browser.close()
    assert (SHOTS / "manuscript_html.png").stat().st_size > 10_000
