"""What a report document calls: open the view for the session, emit captioned tables and
figures as Markdown (with Quarto-style labels), save figures as SVG/PDF/PNG, and stamp the
report. No statistics here: tables come from ``analysis.outputs`` and analysis functions."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from data_access.views import open_view


class Report:
    """One report session: the view, its cut-off and population, and output helpers."""

    def __init__(self, kind: str, data_dir, allocation_dir=None, cut_date=None, mask_arms=False, out_dir="."):
        self.kind = kind
        allocation_dir = allocation_dir or None     # Quarto passes absent parameters as ""
        if kind != "dsmb-open":
            # the same gate as `mirocals report` for a document rendered directly (quarto render -P):
            # an allocation given explicitly (never the one beside the data), lock for the manuscript
            from reports.render import check_report_inputs
            check_report_inputs(kind, allocation_dir)
        self.out_dir = Path(out_dir)
        (self.out_dir / "figures").mkdir(parents=True, exist_ok=True)
        data_dir = _cut_if_asked(data_dir, allocation_dir if kind != "dsmb-open" else None, cut_date or None,
                                 self.out_dir)
        self.role = {"dsmb-open": "steering", "dsmb-closed": "dsmb", "manuscript": "statistician"}[kind]
        if kind == "dsmb-open":
            self.view = open_view(data_dir[0], self.role)         # never touches an allocation
        else:
            self.view = open_view(data_dir[0], self.role, allocation_dir=data_dir[1], mask_arms=bool(mask_arms))
        self.study = self.view.study
        self.cut = str(self.view.cut_date)
        self.banner = "OPEN SESSION REPORT" if kind == "dsmb-open" else (
            "CLOSED SESSION REPORT - CONFIDENTIAL" if kind == "dsmb-closed" else "MANUSCRIPT OUTPUTS - CONFIDENTIAL")
        self.session = {"dsmb-open": "Open session", "dsmb-closed": "Closed session - DSMB only",
                        "manuscript": "Manuscript - unblinded"}[kind]
        self.n_tables = self.n_figures = 0
        _start_figure_server()
        stamp = (f"snapshot {self.view.snapshot_hash[:16]}, cut {self.cut}, mirocals-monitor "
                 f"{_version()}, rendered {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
        self.stamp = stamp
        meta = {"banner": self.banner, "cut_date": self.cut, "author": self.study.report_author,
                "session": self.session, "stamp": stamp, "snapshot_hash": self.view.snapshot_hash,
                "role": self.role, "report_date": dt.date.today().isoformat(), "study": self.study.id}
        stem = {"dsmb-open": "dsmb_open", "dsmb-closed": "dsmb_closed", "manuscript": "manuscript"}[kind]
        (self.out_dir / f"{stem}.meta.json").write_text(json.dumps(meta))

    def population(self, name="ITT") -> str:
        """A population (ITT, SAF, all, screened) with its N, per arm when by arm, for a caption:
        ``analysis.outputs.describe_population``."""
        from analysis.outputs import describe_population
        return describe_population(name, self.view)

    def caption(self, text: str, population: str | None = None) -> str:
        pop = population or self.population()
        return f"{text}. {pop}; data cut-off {self.cut}."

    def output(self, name: str, label: str | None = None, title: str | None = None, machine=None,
               max_rows: int | None = 60, optional: bool = False, empty: str | None = None,
               **build) -> pd.DataFrame | None:
        """Emit output ``name`` (``analysis.outputs``) as the dashboard and ``mirocals table --display``
        show it: its display table, its caption (title, population and N, cut-off) and its
        footnotes (cells, method, filter). ``machine``: the machine table when the report shows a
        part of it (a subset of rows, a lab parameter); ``build``: build arguments (``since``).
        Listings (SAEs, deaths) are shown whole; other tables longer than ``max_rows`` are cut
        with a note naming the full CSV (the machine table). ``optional``: a delivery without the
        data the output needs gets a sentence saying what is missing (returns None) instead of
        failing the render; ``empty``: the sentence shown instead of a table with no rows.
        Returns the machine table."""
        from analysis.outputs import OUTPUTS, TableUnavailable, build_table, caption, display_table, footnotes
        if machine is None:
            try:
                machine = build_table(name, self.view, **build)
            except TableUnavailable as exc:
                if not optional:
                    raise
                self.text(f"*{title or OUTPUTS[name].title}*: not shown, {exc}.")
                return None
        if empty is not None and machine.empty:
            self.text(empty)
            return machine
        shown = display_table(name, machine, self.view)
        notes = footnotes(name, self.view)[:-1]            # population and cut-off are in the caption
        self._emit(shown, machine, label or f"tbl-{name}", caption(name, self.view, title), notes,
                   None if OUTPUTS[name].listing else max_rows)
        return machine

    def table(self, df: pd.DataFrame, label: str, caption: str, population: str | None = None,
              max_rows: int | None = 60) -> None:
        """Emit a table that is not an output (shared display rules only) with a numbered,
        labelled caption (Quarto syntax ``{#tbl-...}``)."""
        from analysis.display_table import format_table
        self._emit(format_table(df, None, self.view), df, label, self.caption(caption, population), [], max_rows)

    def _emit(self, shown: pd.DataFrame, machine: pd.DataFrame, label: str, caption: str, notes, max_rows) -> None:
        self.n_tables += 1
        cut = ""
        if max_rows is not None and len(shown) > max_rows:
            (self.out_dir / "tables").mkdir(exist_ok=True)
            machine.to_csv(self.out_dir / "tables" / f"{label}.csv", index=False)
            cut = f"First {max_rows} of {len(shown)} rows; the full table is in tables/{label}.csv."
            shown = shown.head(max_rows)
        foot = " ".join([*notes, cut]).strip()
        display(Markdown(f"{_pipe(shown)}\n\n: {caption} {{#{label}}}\n" + (f"\n*{foot}*\n" if foot else "")))

    def figure(self, fig, label: str, caption: str, population: str | None = None, width=900, height=None,
               formats=("svg",), spec=None) -> None:
        """Save the figure (SVG for the documents; plus PDF/PNG when asked) and emit it with a caption.
        Without ``spec`` (the DSMB reports): print style at the text width, ``width`` x ``height``
        being its size on screen (scaled to the print width). ``spec``: a
        :class:`reports.figure_spec.FigureSpec` (the manuscript's journal figures): the figure is
        restyled for print (``analysis.theme.print_style``) and exported at the spec's print size,
        formats and dpi (:func:`export_print_figure`) instead."""
        self.n_figures += 1
        base = self.out_dir / "figures" / label
        if spec is not None:
            export_print_figure(fig, base, spec)
        else:
            # a DSMB report's figure is printed too (PDF, Word): the print style (no title, the
            # caption carries it; fonts >= 7.5 pt; arms in Okabe-Ito with the reference arm dashed),
            # laid out at the text width (reports.figure_spec.report_figure_px); Liberation Sans
            # (metric-compatible with Arial) is what both Chromium and Typst have, so the text
            # measured at export is the text drawn in the PDF (no clipped legends)
            from analysis.theme import print_style
            from reports.figure_spec import report_figure_px
            print_style(fig)
            w, h = report_figure_px(width, height or fig.layout.height or 500)
            fig.update_layout(width=w, height=h, font_family=FIG_FONT)
            for fmt in formats:
                _write_image(fig, f"{base}.{fmt}", scale=300 / 96 if fmt == "png" else 1)
        display(Markdown(f"![{self.caption(caption, population)}](figures/{label}.svg){{#{label} width=100%}}\n"))

    def figure_output(self, name: str, label: str | None = None, title: str | None = None, height=None,
                      formats=("svg",), width=900, spec=None):
        """Emit figure ``name`` (``analysis.outputs.FIGURES``: the builder the dashboard shows), drawn
        for print (no on-screen subtitle: the caption carries the title, population and N and the
        cut-off). ``spec``: a journal figure specification (``reports.figure_spec``) or its label
        (the manuscript: no title in the figure, print size, fonts >= 7 pt, SVG/PDF/PNG/TIFF).
        Returns the figure."""
        from analysis.outputs import FIGURES, build_figure, population_text
        if isinstance(spec, str):
            from reports.figure_spec import MANUSCRIPT_FIGURES
            spec = MANUSCRIPT_FIGURES[spec]
        out = FIGURES[name]
        fig = build_figure(name, self.view, printed=True)
        self.figure(fig, label or (spec.label if spec else f"fig-{name}"), title or out.title,
                    population_text(out.table, self.view), width=width, height=height, formats=formats, spec=spec)
        return fig

    def text(self, md: str) -> None:
        display(Markdown(md))


FIG_FONT = "Liberation Sans"


def export_print_figure(fig, base: Path, spec) -> list[Path]:
    """Export a figure by its journal specification: restyled for print (no title, print fonts,
    arm colours and dashes), laid out at the print size in CSS px (or at its own size when it lays
    itself out, ``spec.height_in`` None) and scaled to the print width: SVG and PDF (vector, sized
    ``spec.width_in`` wide), PNG and TIFF (LZW) ``spec.width_in * spec.dpi`` pixels wide with the
    dpi written in the file. Returns the files written."""
    from PIL import Image
    from analysis.theme import PX_PER_IN, print_style
    print_style(fig)
    if spec.height_in is None and fig.layout.width:
        layout_w, layout_h = fig.layout.width, fig.layout.height
    else:
        layout_w, layout_h = spec.width_px, spec.height_px
    fig.update_layout(width=layout_w, height=layout_h, font_family=FIG_FONT)
    vector = spec.width_in * PX_PER_IN / layout_w
    written = []
    for fmt in ("svg", "pdf"):
        if fmt in spec.formats:
            _write_image(fig, f"{base}.{fmt}", scale=vector)
            written.append(Path(f"{base}.{fmt}"))
    if {"png", "tiff"} & set(spec.formats):
        png = Path(f"{base}.png")
        _write_image(fig, str(png), scale=spec.width_in * spec.dpi / layout_w)
        with Image.open(png) as img:
            img.load()
            rgb = img.convert("RGB")
        if "png" in spec.formats:
            rgb.save(png, dpi=(spec.dpi, spec.dpi), optimize=False)
            written.append(png)
        else:
            png.unlink()
        if "tiff" in spec.formats:
            rgb.save(f"{base}.tiff", compression="tiff_lzw", dpi=(spec.dpi, spec.dpi))
            written.append(Path(f"{base}.tiff"))
    return written


def _write_image(fig, path: str, scale: float, attempts: int = 3) -> None:
    """``fig.write_image`` through kaleido, tried again (after restarting its browser) when the
    browser side fails: kaleido 1.x can run its export script before its page has loaded
    ("ReferenceError: kaleido_scopes is not defined", seen once in a clean CI run)."""
    import time
    for attempt in range(1, attempts + 1):
        try:
            fig.write_image(path, scale=scale)
            return
        except Exception as exc:            # kaleido raises its own errors (JavascriptError, ...)
            if attempt == attempts or "kaleido" not in f"{type(exc).__module__} {exc}".lower():
                raise
            try:
                import kaleido
                kaleido.stop_sync_server(silence_warnings=True)
            except Exception:
                pass
            time.sleep(attempt)
            _start_figure_server()


def _start_figure_server() -> None:
    """Keep one headless Chromium for all static exports of this render (kaleido 1.x would
    otherwise start a browser per image: ~4 s each)."""
    import warnings
    warnings.filterwarnings("ignore", message="The kopts argument is ignored")
    os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
    try:
        import kaleido
        kaleido.start_sync_server(silence_warnings=True)
    except Exception:
        pass  # already running, or an older kaleido: images still export, only slower


def _pipe(df: pd.DataFrame, digits: int = 3) -> str:
    """A Pandoc pipe table. The dashes under each header are proportional to the column's
    longest cell (capped), so that Pandoc gives wide columns more of the page width."""
    def fmt(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{v:.{digits}g}" if abs(v) < 1e5 else f"{v:.0f}"
        if isinstance(v, pd.Timestamp):
            return f"{v:%Y-%m-%d}"
        return str(v).replace("|", "/").replace("\n", " ")
    cols = [str(c).replace("_", " ") for c in df.columns]
    cells = [[fmt(v) for v in row] for row in df.itertuples(index=False)]
    widths = []
    for j, c in enumerate(cols):
        # never narrower than the longest unbreakable word (dates, IDs), else wrap long text
        word = max([len(w) for w in c.split()] + [len(w) for r in cells for w in r[j].split()] + [3])
        longest = max([len(r[j]) for r in cells] + [len(c)])
        widths.append(max(word + 2, min(longest, 22)))
    numeric = [df[c].dtype.kind in "iuf" for c in df.columns]
    rule = [("-" * (w - 1) + ":") if num else (":" + "-" * (w - 1)) for w, num in zip(widths, numeric)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def _cut_if_asked(data_dir, allocation_dir, cut_date, out_dir=None):
    """With a cut date (a document rendered by Quarto with ``-P cut_date:...``; ``mirocals report``
    cuts before the kernel starts), cut into a private temporary folder (mode 0700) removed when
    the kernel exits, never beside the report (``out_dir`` is not used)."""
    if not cut_date:
        return data_dir, allocation_dir
    import atexit
    import shutil
    import tempfile
    from data_access.cut import cut_snapshot
    work = Path(tempfile.mkdtemp(prefix="mirocals-cut-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    src = work / "src"
    src.mkdir()
    clinical = Path(data_dir) / "clinical" if (Path(data_dir) / "clinical").is_dir() else Path(data_dir)
    (src / "clinical").symlink_to(clinical.resolve())
    if allocation_dir:
        (src / "allocation").symlink_to(Path(allocation_dir).resolve())
    dst = work / "cut"
    cut_snapshot(src, cut_date, dst)
    return dst, (dst / "allocation" if allocation_dir else None)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("mirocals-monitor")
    except Exception:
        return "dev"
