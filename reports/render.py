"""Render a report (.qmd) to HTML and PDF.

With the Quarto CLI on PATH: ``quarto render``. Without it (this project's build machines), the
same engines Quarto uses: the .qmd's Python cells run in a Jupyter kernel (nbclient) with the
parameters injected after the cell tagged ``parameters`` (as papermill does); the outputs and
the markdown become one Pandoc markdown document; Pandoc 3 (pypandoc-binary) writes
self-contained HTML and Typst; the typst package compiles the PDF.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).parent
REPORTS = {"dsmb-open": "dsmb_open.qmd", "dsmb-closed": "dsmb_closed.qmd", "manuscript": "manuscript.qmd"}
UNBLINDED = {"dsmb-closed", "manuscript"}
CELL_RE = re.compile(r"^```\{python\}[^\n]*\n(.*?)^```\s*$", re.S | re.M)


class RenderError(RuntimeError):
    """A report failed to render; the message names the document and the failing cell."""


def split_qmd(text: str) -> tuple[dict, list[tuple[str, str, dict]]]:
    """(front matter, [(kind, source, options)]) with kind 'markdown' or 'code'; options are
    the cell's ``#|`` lines."""
    meta = {}
    if text.startswith("---"):
        end = text.index("\n---", 3)
        meta = yaml.safe_load(text[3:end]) or {}
        text = text[end + 4:]
    parts, pos = [], 0
    for m in CELL_RE.finditer(text):
        if text[pos:m.start()].strip():
            parts.append(("markdown", text[pos:m.start()], {}))
        src = m.group(1)
        opts = {}
        for line in src.splitlines():
            if line.startswith("#|"):
                opts.update(yaml.safe_load(line[2:].strip()) or {})
        parts.append(("code", src, opts))
        pos = m.end()
    if text[pos:].strip():
        parts.append(("markdown", text[pos:], {}))
    return meta, parts


def _parameters_cell(params: dict) -> str:
    return "# Injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())


def kernel_for_this_python(progress=lambda m: None) -> str:
    """Name of a Jupyter kernel that runs the interpreter running this code (its packages are
    the project's). The ``python3`` spec is used when it launches "python" (jupyter_client
    substitutes ``sys.executable``) or this very interpreter; otherwise a spec is installed
    once into a temporary prefix that is put on ``JUPYTER_PATH``."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    ours = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    try:
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
        if argv0 in ours or Path(argv0).resolve() == Path(sys.executable).resolve():
            return "python3"
    except NoSuchKernel:
        pass
    prefix = Path(tempfile.gettempdir()) / f"mirocals-kernel-{os.getuid()}"
    name = "mirocals-python3"
    if not (prefix / "share" / "jupyter" / "kernels" / name / "kernel.json").exists():
        progress("installing a Jupyter kernelspec")
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", name],
                       check=True, capture_output=True)
    paths = os.environ.get("JUPYTER_PATH", "")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(prefix / "share" / "jupyter"), paths) if p)
    return name


def _first_code_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#|")]
    return lines[0].strip() if lines else ""


def execute(parts, params: dict, workdir: Path, progress, name: str, kernel_env: dict | None = None):
    """Run the code cells in a fresh kernel, the parameters injected after the cell tagged
    ``parameters`` (papermill-style). Returns {part index: outputs}. A failing cell raises
    ``RenderError`` naming the document, the cell's label and its first line."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.v4.new_notebook()
    index = []
    for i, (kind, src, opts) in enumerate(parts):
        if kind != "code":
            continue
        tags = opts.get("tags", []) or []
        nb.cells.append(nbformat.v4.new_code_cell(src, metadata={"tags": list(tags)}))
        index.append(i)
        if "parameters" in tags:
            nb.cells.append(nbformat.v4.new_code_cell(_parameters_cell(params),
                                                      metadata={"tags": ["injected-parameters"]}))
            index.append(None)
    client = NotebookClient(nb, kernel_name=kernel_for_this_python(progress), timeout=600,
                            resources={"metadata": {"path": str(workdir)}})
    # the kernel imports THIS checkout's packages (not another install of the project)
    base = dict(kernel_env if kernel_env is not None else os.environ)
    env = {**base, "PYTHONPATH": os.pathsep.join(p for p in (str(HERE.parent), base.get("PYTHONPATH", "")) if p)}
    with client.setup_kernel(env=env):
        for k, cell in enumerate(nb.cells):
            if index[k] is None:
                label = "injected parameters"
            else:
                opts = parts[index[k]][2]
                label = opts.get("label") or ("parameters" if "parameters" in (opts.get("tags") or []) else f"cell {k + 1}")
            progress(f"executing cell {k + 1}/{len(nb.cells)} ({label})")
            try:
                client.execute_cell(cell, k)
            except CellExecutionError as exc:
                err = next((o for o in cell.outputs if o.get("output_type") == "error"), {})
                if err.get("ename") == "TableUnavailable":      # the snapshot lacks the data: say why
                    _say_unavailable(cell, err.get("evalue", ""))
                    progress(f"cell {k + 1} ({label}): {err.get('evalue', '')}")
                    continue
                why = f"{err.get('ename', 'Error')}: {err.get('evalue', '')}" if err else str(exc)[-2000:]
                raise RenderError(f"{name}: cell {k + 1}/{len(nb.cells)} '{label}' "
                                  f"({_first_code_line(cell.source)!r}) failed: {why}") from None
    outputs = {}
    for cell, i in zip(nb.cells, index):
        if i is not None:
            outputs[i] = cell.outputs
    return outputs


UNAVAILABLE_RE = re.compile(r"<!-- unavailable: ([\w -]*) -->")


def _say_unavailable(cell, why: str) -> None:
    """Keep what the cell showed before ``TableUnavailable`` and add a sentence saying why the
    rest is missing; its figure/table labels are recorded so references to them read "not
    available" instead of failing the render."""
    import nbformat
    labels = re.findall(r"""["']((?:fig|tbl)-[\w-]+)["']""", cell.source)
    labels += [f"tbl-{name}" for name in re.findall(r"""\.output\(\s*["']([\w-]+)["']""", cell.source)]  # default label
    labels = " ".join(dict.fromkeys(labels))
    text = f"*Not available for this snapshot: {why.rstrip('.')}.*\n\n<!-- unavailable: {labels} -->"
    cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"] + [
        nbformat.v4.new_output("display_data", data={"text/markdown": text})]


def _output_markdown(outputs) -> str:
    chunks = []
    for out in outputs:
        data = out.get("data", {})
        if "text/markdown" in data:
            chunks.append(data["text/markdown"])
        elif out.get("output_type") == "stream" and out.get("name") == "stdout":
            chunks.append("```\n" + out["text"] + "\n```")
    return "\n\n".join(chunks)


LABEL_RE = re.compile(r"\{#((?:fig|tbl)-[\w-]+)[\s}]")
WORD = {"fig": "Figure", "tbl": "Table"}


def number_crossrefs(md: str) -> dict[str, int]:
    """Number the labelled figures and tables (``{#fig-x ...}`` / ``{#tbl-x}``) in order of
    definition, figures and tables counted apart (as Quarto and Typst do)."""
    numbers: dict[str, int] = {}
    counts = {"fig": 0, "tbl": 0}
    for label in dict.fromkeys(LABEL_RE.findall(md)):
        counts[label[:3]] += 1
        numbers[label] = counts[label[:3]]
    return numbers


def resolve_crossrefs(md: str, number_captions: bool = False) -> str:
    """Quarto-style references ``@fig-x`` / ``@tbl-x`` -> links "Figure n" / "Table n" to the
    labelled element. With ``number_captions`` the captions themselves get their "Figure n:"
    prefix (for HTML; Typst numbers its figures itself, in the same order). An unknown label
    raises ``RenderError``, except the labels of sections reported unavailable (read "not
    available")."""
    numbers = number_crossrefs(md)
    unavailable = {lab for m in UNAVAILABLE_RE.findall(md) for lab in m.split()}

    def ref(m):
        label = m.group(1)
        if label not in numbers and label in unavailable:
            return f"{WORD[label[:3]]} (not available)"
        if label not in numbers:
            raise RenderError(f"reference @{label} has no figure or table with that label")
        return f"[{WORD[label[:3]]}&nbsp;{numbers[label]}](#{label})"
    md = re.sub(r"(?<![\w@])@((?:fig|tbl)-[\w-]*\w)", ref, md)
    if number_captions:
        def fig_caption(m):
            return f"![{WORD['fig']} {numbers[m.group(3)]}: {m.group(1)}]({m.group(2)}){{#{m.group(3)}"
        md = re.sub(r"!\[(.*?)\]\(([^)]*)\)\{#(fig-[\w-]+)", fig_caption, md)

        def tbl_caption(m):
            return f"{m.group(1)}: {WORD['tbl']} {numbers[m.group(3)]}: {m.group(2)}{{#{m.group(3)}}}"
        md = re.sub(r"^(\s*):\s+(.*?)\{#(tbl-[\w-]+)\}", tbl_caption, md, flags=re.M)
    return md


def list_of_captions(md: str) -> str:
    """Markdown "List of tables" and "List of figures" (for HTML; Typst builds its own outlines),
    each entry linked to its element. The caption is cut at its first sentence."""
    numbers = number_crossrefs(md)
    caps = {}
    for m in re.finditer(r"!\[(.*?)\]\([^)]*\)\{#(fig-[\w-]+)", md):
        caps[m.group(2)] = m.group(1)
    for m in re.finditer(r"^\s*:\s+(.*?)\{#(tbl-[\w-]+)\}", md, flags=re.M):
        caps[m.group(2)] = m.group(1)
    out = []
    for kind, title in (("tbl", "List of tables"), ("fig", "List of figures")):
        items = [(numbers[k], k, caps.get(k, "").split(". ")[0].strip()) for k in numbers if k.startswith(kind)]
        if items:
            out.append(f"::: {{.lot}}\n**{title}**\n")
            out += [f"{n}. [{WORD[kind]} {n}: {cap}](#{k})" for n, k, cap in sorted(items)]
            out.append(":::\n")
    return "\n".join(out)


def render_qmd(qmd: Path, params: dict, out_dir: Path, to=("html", "pdf"), progress=print,
               meta_defaults: dict | None = None, workdir: Path | None = None,
               kernel_env: dict | None = None) -> tuple[list[Path], dict]:
    """Render one .qmd without Quarto: execute, assemble Markdown, Pandoc to HTML / Typst,
    Typst to PDF. Returns (files written, the report info the document wrote to
    ``<stem>.meta.json`` (banner, cut date, author, session, stamp, snapshot hash, role)).
    ``workdir``: the kernel's working directory (default ``out_dir``); ``kernel_env``: its
    environment (default this process's)."""
    import pypandoc
    qmd, out_dir = Path(qmd), Path(out_dir)
    stem = qmd.stem
    meta, parts = split_qmd(qmd.read_text())
    progress(f"{qmd.name}: starting kernel")
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    outputs = execute(parts, params, Path(workdir or out_dir), progress, qmd.name, kernel_env)
    body = [src if kind == "markdown" else _output_markdown(outputs.get(i, []))
            for i, (kind, src, _opts) in enumerate(parts)]
    raw = "\n\n".join(body)
    info_path = out_dir / f"{stem}.meta.json"
    info = {**(meta_defaults or {}), **(json.loads(info_path.read_text()) if info_path.exists() else {})}
    title = str(meta.get("title", stem))
    if info.get("study") and info["study"] != "MIROCALS":   # another trial's snapshot: its own name
        title = title.replace("MIROCALS", info["study"])
    fields = {"banner": info.get("banner", ""), "cut": info.get("cut_date", ""), "author": info.get("author", ""),
              "session": info.get("session", ""), "stamp": info.get("stamp", ""),
              "rdate": info.get("report_date", dt.date.today().isoformat())}
    written = []
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(resolve_crossrefs(raw))
    if "html" in to:
        progress("pandoc html")
        html_md = out_dir / f"{stem}.html.md"
        html_md.write_text(list_of_captions(raw) + "\n\n" + resolve_crossrefs(raw, number_captions=True))
        html = out_dir / f"{stem}.html"
        extra = ["--standalone", "--embed-resources", "--toc", "--toc-depth=2", f"--resource-path={out_dir}",
                 f"--metadata=title:{title}", f"--metadata=subtitle:{fields['banner']}",
                 f"--metadata=author:{fields['author']}",
                 f"--metadata=date:Data cut-off {fields['cut']}; report date {fields['rdate']}",
                 f"--metadata=pagetitle:{title}", f"--css={HERE / 'report.css'}"]
        pypandoc.convert_file(str(html_md), "html", outputfile=str(html), format="markdown", extra_args=extra)
        written.append(html)
    if "pdf" in to:
        progress("pandoc typst")
        typ = out_dir / f"{stem}.typ"
        extra = ["--standalone", f"--template={HERE / 'template.typ'}", f"--metadata=title:{title}"]
        extra += [f"--metadata={k}:{v}" for k, v in fields.items()]
        pypandoc.convert_file(str(md_path), "typst", outputfile=str(typ), format="markdown", extra_args=extra)
        progress("typst pdf")
        import typst
        pdf = out_dir / f"{stem}.pdf"
        typst.compile(str(typ), output=str(pdf), root=str(out_dir))
        written.append(pdf)
    return written, info


MARKER = ".mirocals-report.json"


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
    (folder / MARKER).write_text(json.dumps({"report": name, "written_by": "mirocals report",
                                             "created": dt.datetime.now(dt.timezone.utc).isoformat(
                                                 timespec="seconds")}) + "\n")
    return folder


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
                  to=("html", "pdf"), progress=print, previous_cut=None) -> list[Path]:
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
        (documents, ``figures/``, ``tables/``, the Markdown and a ``.mirocals-report.json``
        marker). A folder holding another report's outputs is refused (``ReportRefused``).
    to : any of "html", "pdf".
    progress : called with a short message at each stage.

    The kernel runs in the private temporary folder (its working directory and TMPDIR), so
    nothing a render writes to a relative path or to temporary files is shared with another
    render. With ``quarto`` on PATH the document is rendered by Quarto (``-P key:value``), else
    by ``render_qmd``. Unblinded renders are appended to the audit log.
    """
    check_report_inputs(name, allocation_dir)
    data_dir = Path(data_dir)
    if name == "dsmb-open":
        allocation_dir = None                      # the open report never opens the allocation
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
            for f in (qmd, HERE / "_quarto.yml", HERE / "report.css", HERE / "template.typ"):
                if f.exists():
                    shutil.copy2(f, doc / f.name)
            kernel_env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(HERE.parent), kernel_env.get("PYTHONPATH", "")) if p)
            written = _render_with_quarto(doc / qmd.name, params, folder, to, progress, kernel_env)
            info_path = folder / f"{qmd.stem}.meta.json"
            info = json.loads(info_path.read_text()) if info_path.exists() else {}
        else:
            written, info = render_qmd(qmd, params, folder, to, progress, workdir=work / "kernel",
                                       kernel_env=kernel_env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if name in UNBLINDED:
        _audit(name, info, folder)
    progress(f"done: {', '.join(p.name for p in written)}")
    return written


def _private_folder(name: str) -> Path:
    """A new folder only this user can read (``tempfile.mkdtemp``: mode 0700) for one render's cut,
    kernel working directory and temporary files. Under the system temporary folder; when that
    path is long, under /tmp instead: Chromium (static figure export) puts a Unix socket in its
    temporary folder and fails on a socket path longer than about 107 characters."""
    base = tempfile.gettempdir()
    if len(base) > 48 and os.access("/tmp", os.W_OK):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix=f"mirocals-{name}-", dir=base))


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
