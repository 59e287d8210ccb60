"""Render a report (.qmd) to HTML and PDF: its own marked folder, the gates (an explicit
allocation for the unblinded reports, database lock for the manuscript), a private cut, the
render and its audit entry.

With the Quarto CLI on PATH: ``quarto render``. Without it (this project's build machines), the
same engines Quarto uses: the .qmd's Python cells run in a Jupyter kernel (``reports.notebook``)
with the parameters injected after the cell tagged ``parameters`` (as papermill does); the
outputs and the markdown become one Pandoc markdown document (cross-references by
``reports.crossrefs``); Pandoc 3 (pypandoc-binary) writes self-contained HTML and Typst; the
typst package compiles the PDF.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from reports.crossrefs import list_of_captions, resolve_crossrefs
from reports.notebook import execute, output_markdown, split_qmd

HERE = Path(__file__).parent
REPORTS = {"dsmb-open": "dsmb_open.qmd", "dsmb-closed": "dsmb_closed.qmd", "manuscript": "manuscript.qmd"}
UNBLINDED = {"dsmb-closed", "manuscript"}

def partial_name(path: Path) -> Path:
    """Where a document is written until it is complete: ``.partial-<name>`` beside it (hidden, and
    not the document's name, so a render killed half-way leaves nothing that looks like a report)."""
    return path.with_name(f".partial-{path.name}")


def publish_documents(partials: list[Path]) -> list[Path]:
    """Rename finished documents (``partial_name``) to their own names; returns the final paths."""
    out = []
    for part in partials:
        final = part.with_name(part.name.removeprefix(".partial-"))
        os.replace(part, final)
        out.append(final)
    return out


def render_qmd(qmd: Path, params: dict, out_dir: Path, to=("html", "pdf"), progress=print,
               meta_defaults: dict | None = None, workdir: Path | None = None,
               kernel_env: dict | None = None, intermediates: Path | None = None,
               publish: bool = True) -> tuple[list[Path], dict]:
    """Render one .qmd without Quarto: execute, assemble Markdown, Pandoc to HTML / Word / Typst,
    Typst to PDF. Returns (files written, the report info the document wrote to
    ``<stem>.meta.json`` (banner, cut date, author, session, stamp, snapshot hash, role)).
    ``workdir``: the kernel's working directory (default ``out_dir``); ``kernel_env``: its
    environment (default this process's); ``intermediates``: the folder for the Markdown, Typst,
    ``.meta.json`` and the figures' PNG copies for Word (default ``out_dir``). ``to``: any of
    "html", "pdf", "docx". Each document is written under its ``partial_name`` and renamed into
    place only when every document asked for is complete (``publish``; with ``publish=False`` the
    partial paths are returned, for the caller to publish with ``publish_documents``)."""
    import pypandoc
    qmd, out_dir = Path(qmd), Path(out_dir)
    inter = Path(intermediates or out_dir)
    inter.mkdir(parents=True, exist_ok=True)
    stem = qmd.stem
    unknown = set(to) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(sorted(unknown))}: {', '.join(FORMATS)}")
    meta, parts = split_qmd(qmd.read_text())
    progress(f"{qmd.name}: starting kernel")
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    outputs = execute(parts, params, Path(workdir or out_dir), progress, qmd.name, kernel_env)
    body = [src if kind == "markdown" else output_markdown(outputs.get(i, []))
            for i, (kind, src, _opts) in enumerate(parts)]
    raw = "\n\n".join(body)
    info_path = out_dir / f"{stem}.meta.json"           # written by the document's setup cell
    if inter != out_dir and info_path.exists():
        info_path = Path(shutil.move(str(info_path), str(inter / info_path.name)))
    info = {**(meta_defaults or {}), **(json.loads(info_path.read_text()) if info_path.exists() else {})}
    title = str(meta.get("title", stem))
    if info.get("study") and info["study"] != "MIROCALS":   # another trial's snapshot: its own name
        title = title.replace("MIROCALS", info["study"])
    fields = {"banner": info.get("banner", ""), "cut": info.get("cut_date", ""), "author": info.get("author", ""),
              "session": info.get("session", ""), "stamp": info.get("stamp", ""),
              "rdate": info.get("report_date", dt.date.today().isoformat())}
    written = []
    md_path = inter / f"{stem}.md"
    md_path.write_text(resolve_crossrefs(raw))
    if inter != out_dir and (out_dir / "figures").is_dir():
        # Pandoc and Typst read the figures as figures/<label>.svg beside the intermediate files
        (inter / "figures").symlink_to((out_dir / "figures").resolve())
    titling = [f"--metadata=title:{title}", f"--metadata=subtitle:{fields['banner']}",
               f"--metadata=author:{fields['author']}",
               f"--metadata=date:Data cut-off {fields['cut']}; report date {fields['rdate']}"]
    if "html" in to:
        progress("pandoc html")
        html_md = inter / f"{stem}.html.md"
        html_md.write_text(list_of_captions(raw) + "\n\n" + resolve_crossrefs(raw, number_captions=True))
        html = partial_name(out_dir / f"{stem}.html")
        extra = ["--standalone", "--embed-resources", "--toc", "--toc-depth=2", f"--resource-path={out_dir}",
                 *titling, f"--metadata=pagetitle:{title}", f"--css={HERE / 'report.css'}"]
        pypandoc.convert_file(str(html_md), "html", outputfile=str(html), format="markdown", extra_args=extra)
        written.append(html)
    if "docx" in to:
        written.append(_docx(raw, stem, out_dir, inter, titling, fields, progress))
    if "pdf" in to:
        progress("pandoc typst")
        typ = inter / f"{stem}.typ"
        extra = ["--standalone", f"--template={HERE / 'template.typ'}", f"--metadata=title:{title}"]
        extra += [f"--metadata={k}:{v}" for k, v in fields.items()]
        pypandoc.convert_file(str(md_path), "typst", outputfile=str(typ), format="markdown", extra_args=extra)
        progress("typst pdf")
        import typst
        pdf = partial_name(out_dir / f"{stem}.pdf")
        typst.compile(str(typ), output=str(pdf), root=str(inter))
        written.append(pdf)
    return (publish_documents(written) if publish else written), info


FORMATS = ("html", "pdf", "docx")
REFERENCE_DOCX = HERE / "reference.docx"
FIG_RE = re.compile(r"(!\[[^\]]*\]\()figures/([\w-]+)\.svg(\)\{[^}]*\})")
DOCX_TEXT_WIDTH_CM = 18.0       # A4 less the reference document's 2 x 1.5 cm margins


def _docx(raw: str, stem: str, out_dir: Path, inter: Path, titling: list[str], fields: dict, progress) -> Path:
    """The Word document: Pandoc's docx writer with ``reports/reference.docx`` (fonts, margins,
    table and caption styles, header and footer). Tables are Pandoc pipe tables, so native Word
    tables, their caption above (Pandoc's "Table Caption") and the notes line below; figures are
    embedded as PNG (Word does not show SVG everywhere): the document's own PNG when it exported
    one (``figures/<label>.png``, the manuscript's print figures), shown at its print size (pixels
    / its dpi, at most the text width); else the SVG drawn by Typst at 300 dpi over the full
    text width (18 cm), shown at the width the Markdown gives (the text width). The header and footer show the banner, the cut-off and the session."""
    import pypandoc
    from reports.docx_layout import fit_table_columns
    md = list_of_captions(raw) + "\n\n" + resolve_crossrefs(raw, number_captions=True)
    labels = list(dict.fromkeys(m.group(2) for m in FIG_RE.finditer(md)))
    missing = [lab for lab in labels if not (out_dir / "figures" / f"{lab}.png").exists()]
    if missing:
        progress(f"figures as PNG for Word ({len(missing)})")
        _svg_to_png(missing, out_dir / "figures", inter)
    png = {lab: (out_dir / "figures" / f"{lab}.png") if lab not in missing else (inter / "png" / f"{lab}.png")
           for lab in labels}

    def to_png(m):
        attrs = m.group(3)
        size = None if m.group(2) in missing else _print_width_in(png[m.group(2)])
        if size:           # the document's own print figure: its size (pixels / dpi), within the text
            attrs = re.sub(r"\s*width=[^\s}]*", "", attrs)
            attrs = attrs[:-1] + f" width={min(size, DOCX_TEXT_WIDTH_CM / 2.54):.3f}in}}"
        elif "width=" not in attrs:
            attrs = attrs[:-1] + " width=100%}"
        return f"{m.group(1)}{png[m.group(2)].resolve()}{attrs}"
    progress("pandoc docx")
    docx_md = inter / f"{stem}.docx.md"
    docx_md.write_text(fit_table_columns(FIG_RE.sub(to_png, md)))    # Word's column widths from the cells
    out = partial_name(out_dir / f"{stem}.docx")
    extra = ["--standalone", "--toc", "--toc-depth=2", f"--resource-path={out_dir}",
             f"--reference-doc={REFERENCE_DOCX}", *titling,
             *(f"--metadata={k}:{fields[k]}" for k in ("banner", "cut", "session"))]
    pypandoc.convert_file(str(docx_md), "docx", outputfile=str(out), format="markdown", extra_args=extra)
    _fill_header_fields(out, {k: fields[k] for k in ("banner", "cut", "session")})
    return out


def _print_width_in(png: Path) -> float | None:
    """A PNG's print width in inches (pixels / the dpi written in it), None without a dpi."""
    try:
        from PIL import Image
        with Image.open(png) as img:
            dpi = img.info.get("dpi")
            return img.size[0] / float(dpi[0]) if dpi and float(dpi[0]) > 1 else None
    except Exception:          # no Pillow, or not a readable PNG: Word gets the Markdown's width
        return None


def _svg_to_png(labels: list[str], figures: Path, inter: Path, ppi: int = 300) -> None:
    """Draw ``figures/<label>.svg`` as ``inter/png/<label>.png`` at the Word text width and
    ``ppi`` (one Typst compile for all; Typst draws the SVG's text with the same fonts as the PDF)."""
    import typst
    work = inter / "png"
    work.mkdir(exist_ok=True)
    (work / "figures").symlink_to(figures.resolve())
    pages = [f'#image("figures/{lab}.svg", width: {DOCX_TEXT_WIDTH_CM}cm)' for lab in labels]
    # the PDF's fonts (template.typ): Typst draws an SVG's text in the document's font when it lacks
    # the SVG's own (else in its built-in serif)
    (work / "png.typ").write_text("#set page(width: auto, height: auto, margin: 0pt)\n"
                                  '#set text(font: ("Liberation Sans", "DejaVu Sans"))\n'
                                  + "\n#pagebreak()\n".join(pages) + "\n")
    try:
        typst.compile(str(work / "png.typ"), output=str(work / "page-{0p}.png"), root=str(work), format="png",
                      ppi=ppi)
    finally:
        (work / "figures").unlink()
        (work / "png.typ").unlink()
    width = len(str(len(labels)))
    for k, lab in enumerate(labels, start=1):
        (work / f"page-{k:0{width}d}.png").rename(work / f"{lab}.png")


def _fill_header_fields(docx: Path, values: dict, strict: bool = True) -> None:
    """Write the shown text of the header/footer fields (DOCPROPERTY banner / cut / session, see
    ``reports/make_reference_docx.py``): Word would update them on printing, other readers show
    the text stored in the file."""
    import zipfile
    from xml.sax.saxutils import escape
    from reports.make_reference_docx import PLACEHOLDERS
    tmp = docx.with_name(docx.name + ".tmp")
    found = set()
    with zipfile.ZipFile(docx) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if re.fullmatch(r"word/(header|footer)\d*\.xml", item.filename):
                text = data.decode("utf-8")
                for key, shown in PLACEHOLDERS.items():
                    pat = re.compile(r"(<w:t(?: [^>]*)?>)" + re.escape(shown) + "(</w:t>)")
                    text, n = pat.subn(lambda m, v=escape(str(values[key])): m.group(1) + v + m.group(2), text)
                    if n:
                        found.add(key)
                data = text.encode("utf-8")
            zout.writestr(item, data)
    tmp.replace(docx)
    if strict and found != set(PLACEHOLDERS):
        raise RuntimeError(f"{REFERENCE_DOCX} has no header/footer field for "
                           f"{', '.join(sorted(set(PLACEHOLDERS) - found))}: rebuild it with "
                           "python reports/make_reference_docx.py")


MARKER = ".mirocals-report.json"
INCOMPLETE = "INCOMPLETE.txt"       # in a report folder while its render has not finished


class ReportRefused(ValueError):
    """A report is refused before anything is rendered (missing allocation, database lock not
    recorded, an output folder that holds another report's outputs). The CLI exits 2."""


def database_locked() -> bool:
    """Whether database lock is recorded: env ``MIROCALS_DATABASE_LOCKED`` (1/true/yes), the same
    definition the dashboard uses (``dashboard.auth.database_locked``)."""
    return os.environ.get("MIROCALS_DATABASE_LOCKED", "").strip().lower() in ("1", "true", "yes")


def _marker_report(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / MARKER).read_text()).get("report"))
    except (OSError, ValueError, AttributeError):
        return "an unknown report" if (folder / MARKER).exists() else None


def report_folder(out_root, name: str) -> Path:
    """The report's own folder ``<out_root>/<name>/``, made ready for a render.

    Refused (``ReportRefused``): ``out_root`` that is itself (or lies inside) a report's folder;
    a ``<name>/`` that is not a folder, holds another report's marker, or holds files without a
    marker (not written by ``mirocals report``). A folder written by the same report before is
    emptied first, so no output of an earlier render (other options, other cut) stays beside
    the new one. The marker file ``.mirocals-report.json`` names the report that wrote it."""
    root = Path(out_root).resolve()
    for p in (root, *root.parents):
        who = _marker_report(p)
        if who:
            raise ReportRefused(f"{root} is {'inside ' if p != root else ''}the folder of report {who} ({p}); "
                                "give --out a folder that holds report folders (each report writes into "
                                "its own sub-folder)")
    folder = root / name
    if folder.exists() or folder.is_symlink():
        if folder.is_symlink() or not folder.is_dir():
            raise ReportRefused(f"{folder} exists and is not a folder")
        who = _marker_report(folder)
        if who and who != name:
            raise ReportRefused(f"{folder} holds the outputs of report {who}, not {name}; refusing to write "
                                "into it")
        contents = list(folder.iterdir())
        if contents and not who:
            raise ReportRefused(f"{folder} holds files not written by 'mirocals report {name}' "
                                f"({', '.join(sorted(c.name for c in contents)[:5])}); refusing to write into "
                                "it: move them or choose another --out")
        for c in contents:                       # the same report's previous render: start clean
            if c.is_dir() and not c.is_symlink():
                shutil.rmtree(c)
            else:
                c.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    if name in UNBLINDED:
        folder.chmod(0o700)
    _write_marker(folder, {"report": name, "written_by": "mirocals report", "complete": False,
                           "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    (folder / INCOMPLETE).write_text(
        f"This folder is being written by 'mirocals report {name}', or that render was stopped before it "
        "finished: what it holds is not the report. Render it again (the next render of the same report "
        "empties this folder first).\n")
    return folder


def _write_marker(folder: Path, content: dict) -> None:
    """The marker, written whole or not at all (a temporary file renamed over it)."""
    tmp = folder / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(content) + "\n")
    os.replace(tmp, folder / MARKER)


def _mark_complete(folder: Path, documents: list[Path]) -> None:
    """The render finished: the marker says so (``complete``, when, which documents) and the
    ``INCOMPLETE.txt`` notice goes."""
    marker = json.loads((folder / MARKER).read_text())
    _write_marker(folder, {**marker, "complete": True, "documents": [p.name for p in documents],
                           "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    (folder / INCOMPLETE).unlink(missing_ok=True)


def check_report_inputs(name: str, allocation_dir=None) -> None:
    """Refuse (``ReportRefused``) what a report may not do: the closed report and the manuscript
    use only an allocation given explicitly (never one found beside the data); the manuscript is
    by arm only after database lock is recorded."""
    if name not in REPORTS:
        raise ReportRefused(f"unknown report {name!r}: {', '.join(REPORTS)}")
    if name == "dsmb-open":
        return
    if not allocation_dir:
        raise ReportRefused(f"{name} is by arm and needs the allocation given explicitly (--allocation DIR); "
                            "an allocation beside the data is never used")
    if not (Path(allocation_dir) / "manifest.json").exists():
        raise ReportRefused(f"{name}: {allocation_dir} is not an allocation part (no manifest.json)")
    if name == "manuscript" and not database_locked():
        raise ReportRefused("manuscript is by arm and is rendered only after database lock is recorded "
                            "(MIROCALS_DATABASE_LOCKED=1, the setting the dashboard uses for authors); "
                            "database lock is not recorded")


def _cut_into(work: Path, data_dir: Path, allocation_dir, cut) -> tuple[Path, Path | None]:
    """Cut the snapshot (and the allocation, when given) into the private folder ``work``."""
    from data_access.cut import cut_snapshot
    src = work / "src"
    src.mkdir()
    clinical = data_dir / "clinical" if (data_dir / "clinical").is_dir() else data_dir
    (src / "clinical").symlink_to(clinical.resolve())
    if allocation_dir:
        (src / "allocation").symlink_to(Path(allocation_dir).resolve())
    dst = work / "cut"
    cut_snapshot(src, str(cut), dst)
    return dst, (dst / "allocation" if allocation_dir else None)


def render_report(name, data_dir, allocation_dir=None, cut=None, mask_arms=False, out_dir="report_out",
                  to=("html", "pdf"), progress=print, previous_cut=None, keep_intermediates=False) -> list[Path]:
    """Render a named report into its own folder ``<out_dir>/<name>/``; returns the files written.

    Parameters
    ----------
    name : ``dsmb-open`` (pooled, blinded view; the allocation is never opened, whatever is
        passed), ``dsmb-closed`` or ``manuscript`` (by arm: need ``allocation_dir`` given
        explicitly; the manuscript also needs database lock recorded, ``database_locked()``).
    data_dir : snapshot root (with ``clinical/``) or the clinical part itself.
    allocation_dir : the allocation part (closed report and manuscript only); never discovered.
    cut : optional data cut-off date (ISO); the snapshot is cut into a private temporary folder
        (mode 0700, removed after the render, also on failure), never into ``out_dir``.
    mask_arms : show arms as "Group A" / "Group B".
    previous_cut : the previous report's data cut-off (ISO): the open report lists what changed
        since then.
    out_dir : the folder holding report folders; this report writes only into ``out_dir/name``
        (the documents asked for, ``figures/``, ``tables/`` and a ``.mirocals-report.json``
        marker). A folder holding another report's outputs is refused (``ReportRefused``).
    to : any of "html", "pdf", "docx".
    keep_intermediates : also keep the intermediate files (the Markdown ``<stem>.md``, the
        per-format Markdown, the Typst source, ``<stem>.meta.json``) in the report's folder;
        by default they are written to the private temporary folder and removed with it.
    progress : called with a short message at each stage.

    The kernel runs in the private temporary folder (its working directory and TMPDIR), so
    nothing a render writes to a relative path or to temporary files is shared with another
    render. With ``quarto`` on PATH the document is rendered by Quarto (``-P key:value``), else
    by ``render_qmd``. Unblinded renders are appended to the audit log.
    """
    check_report_inputs(name, allocation_dir)
    unknown = set(to) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(sorted(unknown))}: {', '.join(FORMATS)}")
    data_dir = Path(data_dir)
    if name == "dsmb-open":
        allocation_dir = None                      # the open report never opens the allocation
    _check_published(data_dir, allocation_dir)   # a file changed after publication: refused first
    folder = report_folder(out_dir, name)
    work = _private_folder(name)                 # mode 0700, this render only
    try:
        (work / "t").mkdir()
        if cut:
            progress(f"cutting the snapshot at {cut} (private temporary folder)")
            data_dir, allocation_dir = _cut_into(work, data_dir, allocation_dir, cut)
        params = {"data_dir": str(data_dir.resolve()),
                  "allocation_dir": str(Path(allocation_dir).resolve()) if allocation_dir else None,
                  "cut_date": None, "mask_arms": bool(mask_arms), "out_dir": str(folder),
                  "previous_cut": str(previous_cut) if previous_cut else None}
        qmd = HERE / REPORTS[name]
        kernel_env = _kernel_env(work, name)
        if shutil.which("quarto"):
            # Quarto runs the kernel beside the document and writes its intermediates there: render
            # a copy in the private folder, never in the shared reports/ directory
            doc = work / "doc"
            doc.mkdir()
            for f in (qmd, HERE / "_quarto.yml", HERE / "report.css", HERE / "template.typ", REFERENCE_DOCX):
                if f.exists():
                    shutil.copy2(f, doc / f.name)
            kernel_env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(HERE.parent), kernel_env.get("PYTHONPATH", "")) if p)
            written = _render_with_quarto(doc / qmd.name, params, folder, to, progress, kernel_env)
            info_path = folder / f"{qmd.stem}.meta.json"
            info = json.loads(info_path.read_text()) if info_path.exists() else {}
            if "docx" in to and (folder / f"{qmd.stem}.docx").exists():   # the header's banner and cut-off
                _fill_header_fields(folder / f"{qmd.stem}.docx", {"banner": info.get("banner", ""),
                                    "cut": info.get("cut_date", ""), "session": info.get("session", "")},
                                    strict=False)
            if not keep_intermediates:
                info_path.unlink(missing_ok=True)
        else:
            written, info = render_qmd(qmd, params, folder, to, progress, workdir=work / "kernel",
                                       kernel_env=kernel_env, publish=False,
                                       intermediates=folder if keep_intermediates else work / "intermediates")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if name in UNBLINDED:
        _audit(name, info, folder)
    # only now, audited and every document complete: the documents take their names, then the
    # marker says the folder is complete (a render killed before this leaves .partial-* files, the
    # marker's "complete": false and INCOMPLETE.txt; the next render of the report empties it)
    written = publish_documents([p for p in written if p.name.startswith(".partial-")]) + \
        [p for p in written if not p.name.startswith(".partial-")]
    _mark_complete(folder, written)
    progress(f"done: {', '.join(p.name for p in written)}")
    return written


def _check_published(data_dir: Path, allocation_dir) -> None:
    """Refuse (``SnapshotChangedError``, a ``ValueError``: exit 2) a snapshot whose files no longer
    match its manifest, before any folder is made or kernel started."""
    from data_access.snapshot import check_published
    from data_access.views import clinical_dir_of
    check_published(clinical_dir_of(data_dir))
    if allocation_dir and (Path(allocation_dir) / "manifest.json").exists():
        check_published(allocation_dir)
    _check_readable(clinical_dir_of(data_dir))


def _check_readable(clinical_dir: Path) -> None:
    """Refuse (``ValueError``: exit 2, one line naming the file) a snapshot with a dataset that
    cannot be read (a truncated or damaged Parquet file). The dashboard shows the outputs that do
    not need it; a report is one document sent to the DSMB or a journal, and is not made with
    tables missing because a file is broken. Read through a blinded view (no allocation opened)."""
    from data_access.view_base import UNREADABLE_TAIL
    from data_access.views import open_view
    if not (Path(clinical_dir) / "manifest.json").exists():
        return                                   # not a snapshot: the kernel's view says so
    with open_view(clinical_dir, "steering") as view:
        broken = dict(getattr(view, "unreadable", {}) or {})
    if broken:
        name, message = next(iter(broken.items()))
        raise ValueError(message.replace(UNREADABLE_TAIL.format(name=name), "; no report is made from a "
                                         "snapshot with a damaged dataset."))


def _private_folder(name: str) -> Path:
    """A new folder only this user can read (``tempfile.mkdtemp``: mode 0700) for one render's cut,
    kernel working directory and temporary files. Under the system temporary folder; when that
    path is long, under /tmp instead: Chromium (static figure export) puts a Unix socket in its
    temporary folder and fails on a socket path longer than about 107 characters."""
    base = tempfile.gettempdir()
    if len(base) > 48 and os.access("/tmp", os.W_OK):
        base = "/tmp"
    _remove_stale_private_folders(Path(base))
    work = Path(tempfile.mkdtemp(prefix=f"mirocals-{name}-", dir=base))
    (work / OWNER).write_text(f"{os.getpid()}\n")
    return work


OWNER = "render.pid"


def _remove_stale_private_folders(base: Path) -> None:
    """Remove the private folders of renders that were killed (their ``finally`` never ran): this
    user's ``mirocals-*`` folders whose ``render.pid`` names a process that no longer exists (they
    may hold a cut of the data)."""
    for work in base.glob("mirocals-*-*"):
        try:
            if not work.is_dir() or work.is_symlink() or work.stat().st_uid != os.getuid():
                continue
            pid = int((work / OWNER).read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue                                  # still running (or the pid was reused)
        except ProcessLookupError:
            shutil.rmtree(work, ignore_errors=True)
        except PermissionError:
            continue


def _kernel_env(work: Path, name: str) -> dict:
    """The kernel's environment: this checkout first on PYTHONPATH, temporary files (Chromium's
    profile for figure export included) in the render's private folder ``work/t``; the open
    report's kernel is given no allocation setting at all."""
    tmp = str(work / "t")
    env = {**os.environ, "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp}
    if name == "dsmb-open":
        env.pop("MIROCALS_ALLOCATION", None)
    return env


def _render_with_quarto(qmd, params, out_dir, to, progress, env=None):
    written = []
    for fmt in to:
        target = "typst" if fmt == "pdf" else fmt
        progress(f"quarto render --to {target}")
        args = ["quarto", "render", str(qmd), "--to", target, "--output-dir", str(out_dir)]
        for k, v in params.items():
            if v is not None:                        # absent -> the parameters cell's default (None)
                args += ["-P", f"{k}:{str(v).lower() if isinstance(v, bool) else v}"]
        subprocess.run(args, check=True, env=env, cwd=str(Path(qmd).parent))
        written.append(out_dir / f"{qmd.stem}.{fmt}")
    return written


def _audit(name, info, folder=None):
    """One ``render`` entry per unblinded render in the audit log (``data_access.audit``): the OS
    user, the role the report's view implies (``cli`` when unknown), the report name, its snapshot
    hash and cut-off. When the entry cannot be written, everything the render put in the report's
    ``folder`` (documents, figures, tables; the marker stays) is removed and ``AuditWriteError``
    is raised: an unaudited render is not delivered."""
    from data_access import audit
    try:
        return audit.log_render(name, role=info.get("role"), snapshot_hash=info.get("snapshot_hash") or None,
                                cut=info.get("cut_date") or None)
    except audit.AuditWriteError:
        for c in Path(folder).iterdir() if folder else ():
            if c.name == MARKER:
                continue
            if c.is_dir() and not c.is_symlink():
                shutil.rmtree(c, ignore_errors=True)
            else:
                c.unlink(missing_ok=True)
        raise
