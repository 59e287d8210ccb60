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


def execute(parts, params: dict, workdir: Path, progress, name: str):
    """Run the code cells in a fresh kernel; return the parts with their outputs."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.v4.new_notebook()
    index = []
    for i, (kind, src, opts) in enumerate(parts):
        if kind != "code":
            continue
        cell = nbformat.v4.new_code_cell(src)
        nb.cells.append(cell)
        index.append(i)
        tags = opts.get("tags", [])
        if "parameters" in tags:
            nb.cells.append(nbformat.v4.new_code_cell(_parameters_cell(params)))
            index.append(None)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(workdir)}})
    with client.setup_kernel():
        for k, cell in enumerate(nb.cells):
            progress(f"executing cell {k + 1}/{len(nb.cells)}")
            try:
                client.execute_cell(cell, k)
            except CellExecutionError as exc:
                label = parts[index[k]][2].get("label", f"cell {k + 1}") if index[k] is not None else "parameters"
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                raise RenderError(f"{name}: cell '{label}' ({first!r}) failed:\n{exc}") from None
    outputs = {}
    for cell, i in zip(nb.cells, index):
        if i is not None:
            outputs[i] = cell.outputs
    return outputs


def _output_markdown(outputs) -> str:
    chunks = []
    for out in outputs:
        data = out.get("data", {})
        if "text/markdown" in data:
            chunks.append(data["text/markdown"])
        elif out.get("output_type") == "stream" and out.get("name") == "stdout":
            chunks.append("```\n" + out["text"] + "\n```")
    return "\n\n".join(chunks)


def resolve_crossrefs(md: str) -> str:
    """Quarto-style @fig-x / @tbl-x references -> 'Figure n' / 'Table n' (numbered in order of
    their definitions ``{#fig-x}`` / ``{#tbl-x}``)."""
    numbers = {}
    for kind in ("fig", "tbl"):
        for k, label in enumerate(dict.fromkeys(re.findall(r"\{#(" + kind + r"-[\w-]+)\}", md)), 1):
            numbers[label] = k
    word = {"fig": "Figure", "tbl": "Table"}

    def caption(m):
        label = m.group(1)
        return f"{word[label[:3]]} {numbers[label]}"
    md = re.sub(r"<<CAP:((?:fig|tbl)-[\w-]+)>>", caption, md)
    return re.sub(r"@((?:fig|tbl)-[\w-]+)", lambda m: f"{word[m.group(1)[:3]]} {numbers.get(m.group(1), '?')}", md)


def render_report(name, data_dir, allocation_dir=None, cut=None, mask_arms=False, out_dir="report_out",
                  to=("html", "pdf"), progress=print) -> list[Path]:
    """Render ``dsmb-open``, ``dsmb-closed`` or ``manuscript``; returns the files written."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}: {', '.join(REPORTS)}")
    if name == "dsmb-open":
        allocation_dir = None                      # the open report never reads the allocation
    elif allocation_dir is None:
        raise ValueError(f"{name} needs --allocation")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"data_dir": str(Path(data_dir).resolve()),
              "allocation_dir": str(Path(allocation_dir).resolve()) if allocation_dir else None,
              "cut_date": str(cut) if cut else None, "mask_arms": bool(mask_arms), "out_dir": str(out_dir)}
    qmd = HERE / REPORTS[name]
    stem = qmd.stem
    if shutil.which("quarto"):
        return _render_with_quarto(qmd, params, out_dir, to, progress)
    meta, parts = split_qmd(qmd.read_text())
    progress("executing cells")
    outputs = execute(parts, params, out_dir, progress, qmd.name)
    body = []
    for i, (kind, src, _opts) in enumerate(parts):
        body.append(src if kind == "markdown" else _output_markdown(outputs.get(i, [])))
    md = resolve_crossrefs("\n\n".join(body))
    info = json.loads((out_dir / f"{stem}.meta.json").read_text()) if (out_dir / f"{stem}.meta.json").exists() else {}
    written = []
    import pypandoc
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(md)
    title = meta.get("title", name)
    if "html" in to:
        progress("pandoc html")
        html = out_dir / f"{stem}.html"
        pypandoc.convert_file(str(md_path), "html", outputfile=str(html), format="markdown",
                              extra_args=["--standalone", "--embed-resources", "--toc", f"--resource-path={out_dir}",
                                          f"--metadata=title:{title}", f"--css={HERE / 'report.css'}"])
        written.append(html)
    if "pdf" in to:
        progress("pandoc typst")
        typ = out_dir / f"{stem}.typ"
        variables = {"banner": info.get("banner", ""), "cut": info.get("cut_date", ""), "author": info.get("author", ""),
                     "session": info.get("session", ""), "stamp": info.get("stamp", ""),
                     "rdate": dt.date.today().isoformat()}
        extra = ["--standalone", f"--template={HERE / 'template.typ'}", f"--metadata=title:{title}", "--toc"]
        extra += [f"--variable={k}:{v}" for k, v in variables.items()]
        pypandoc.convert_file(str(md_path), "typst", outputfile=str(typ), format="markdown", extra_args=extra)
        progress("typst pdf")
        import typst
        pdf = out_dir / f"{stem}.pdf"
        typst.compile(str(typ), output=str(pdf), root=str(out_dir))
        written.append(pdf)
    if name in UNBLINDED:
        _audit(name, info)
    return written


def _render_with_quarto(qmd, params, out_dir, to, progress):
    written = []
    for fmt in to:
        progress(f"quarto render --to {'typst' if fmt == 'pdf' else fmt}")
        args = ["quarto", "render", str(qmd), "--to", "typst" if fmt == "pdf" else fmt, "--output-dir", str(out_dir)]
        for k, v in params.items():
            args += ["-P", f"{k}:{'' if v is None else v}"]
        subprocess.run(args, check=True)
        written.append(out_dir / f"{qmd.stem}.{fmt}")
    return written


def _audit(name, info):
    path = Path(os.environ.get("MIROCALS_AUDIT_LOG", "audit/audit.log"))
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "user": os.environ.get("USER", "?"),
             "role": "statistician", "action": "render", "report": name, "snapshot": info.get("snapshot_hash", "")}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
