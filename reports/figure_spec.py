"""The figure specification of the printed reports. The manuscript's: each figure's print size (one column about 90 mm /
3.5 in, two columns about 180 mm / 7.1 in), its formats and the resolution of its bitmaps (300
dpi; 600 dpi for line art), defined once here. ``reports.report_lib.Report.figure_output``
exports by it, the README prints it (:func:`markdown_table`) and
tests/test_manuscript_figures.py checks the files against it.

A figure is laid out at its print size in CSS pixels (96 per inch; ``analysis.theme``: fonts
11 px = 8.25 pt, nothing under 10 px = 7.5 pt) or, when it lays itself out from its text (the
CONSORT diagram), at its natural size and scaled down to the print width at export; its height
then follows the diagram (``height_in`` None).

The DSMB reports' figures (:func:`report_figure_px`) follow the same print rules (no title, fonts
>= 7 pt at print size, Okabe-Ito arm colours with the reference arm dashed; ``analysis.theme.
print_style``) at the text width of their PDF and Word pages, two columns (7.1 in), their
height scaled from the height chosen for the screen; SVG only (HTML and PDF; Word draws it as
PNG at 300 dpi).
"""
from __future__ import annotations

from dataclasses import dataclass

ONE_COLUMN_IN = 3.5      # about 90 mm
TWO_COLUMNS_IN = 7.1     # about 180 mm
ALL_FORMATS = ("svg", "pdf", "png", "tiff")


@dataclass(frozen=True)
class FigureSpec:
    label: str                 # the figure's label in the document and its file name in figures/
    output: str                # the figure output drawn (``analysis.outputs.FIGURES``)
    columns: int               # 1 or 2 journal columns
    height_in: float | None    # None: the diagram's own aspect
    dpi: int                   # PNG and TIFF resolution, written in the files
    art: str                   # "line art" (600 dpi) or "combination" (300 dpi)
    why: str                   # why this width
    formats: tuple = ALL_FORMATS

    @property
    def width_in(self) -> float:
        return ONE_COLUMN_IN if self.columns == 1 else TWO_COLUMNS_IN

    @property
    def width_px(self) -> int:
        """Layout width in CSS pixels at print size."""
        return round(self.width_in * 96)

    @property
    def height_px(self) -> int | None:
        return None if self.height_in is None else round(self.height_in * 96)


MANUSCRIPT_FIGURES: dict[str, FigureSpec] = {s.label: s for s in (
    FigureSpec("fig-consort", "consort", 2, None, 600, "line art",
               "the arm columns and the exclusion reasons side by side"),
    FigureSpec("fig-km", "km", 2, 4.6, 600, "line art",
               "nine number-at-risk columns under the axis"),
    FigureSpec("fig-alsfrs", "alsfrs-change", 2, 3.6, 300, "combination",
               "ten visits with their n under each (error bars, markers)"),
    FigureSpec("fig-forest", "forest", 2, 5.2, 300, "combination",
               "subgroup labels left of the plot, HR (95% CI) and events right of it"),
)}


SCREEN_WIDTH_PX = 900     # the width the DSMB figures' heights were chosen for
REPORT_WIDTH_IN = TWO_COLUMNS_IN


def report_figure_px(screen_width: int = SCREEN_WIDTH_PX, screen_height: int = 500) -> tuple[int, int]:
    """A DSMB report figure's layout size in CSS px: the text width (7.1 in, 682 px) and the
    screen height scaled by the same factor, so the figure keeps its shape and its print fonts
    (11 px base, 10 px smallest) print at 8.25 and 7.5 pt."""
    w = round(REPORT_WIDTH_IN * 96)
    return w, round(screen_height * w / (screen_width or SCREEN_WIDTH_PX))


def markdown_table(specs=None) -> str:
    """The figure specification as a Markdown table (the README's "Manuscript figures")."""
    specs = list((specs or MANUSCRIPT_FIGURES).values())
    head = ("| Figure | Output | Columns | Width | Height | Formats | PNG/TIFF dpi | Why this width |\n"
            "|---|---|---|---|---|---|---|---|")
    rows = [f"| {s.label} | `{s.output}` | {s.columns} | {s.width_in} in ({round(s.width_in * 25.4)} mm) | "
            f"{'from the diagram' if s.height_in is None else f'{s.height_in} in ({round(s.height_in * 25.4)} mm)'} | "
            f"{', '.join(f.upper() for f in s.formats)} | {s.dpi} ({s.art}) | {s.why} |" for s in specs]
    return "\n".join([head, *rows])
