"""Run a report's .qmd without Quarto: split it into markdown and Python cells, execute the cells
in a Jupyter kernel (nbclient) with the parameters injected after the ``parameters`` cell (as
papermill does), and turn the outputs back into markdown. A cell stopped by ``TableUnavailable``
keeps what it showed and says why the rest is missing."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).parent
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
    # IPC transport (Unix sockets in a private folder, mode 0700) rather than TCP on localhost:
    # no port another local user could connect to, and no "Kernel is running over TCP without
    # encryption" warning from ipykernel on the console
    from traitlets.config import Config
    base = dict(kernel_env if kernel_env is not None else os.environ)
    tmp = base.get("TMPDIR") or tempfile.gettempdir()      # the render's private folder when given
    if len(tmp) > 60 and os.access("/tmp", os.W_OK):       # Unix socket paths are limited to ~107 bytes
        tmp = "/tmp"
    sockets = Path(tempfile.mkdtemp(prefix="mirocals-k-", dir=tmp))
    config = Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}})
    client = NotebookClient(nb, kernel_name=kernel_for_this_python(progress), timeout=600, config=config,
                            resources={"metadata": {"path": str(workdir)}})
    # the kernel imports THIS checkout's packages (not another install of the project)
    env = {**base, "PYTHONPATH": os.pathsep.join(p for p in (str(HERE.parent), base.get("PYTHONPATH", "")) if p)}
    try:
        _run_cells(client, nb, parts, index, name, progress, env)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    outputs = {}
    for cell, i in zip(nb.cells, index):
        if i is not None:
            outputs[i] = cell.outputs
    return outputs


def _run_cells(client, nb, parts, index, name, progress, env) -> None:
    from nbclient.exceptions import CellExecutionError
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


def output_markdown(outputs) -> str:
    chunks = []
    for out in outputs:
        data = out.get("data", {})
        if "text/markdown" in data:
            chunks.append(data["text/markdown"])
        elif out.get("output_type") == "stream" and out.get("name") == "stdout":
            chunks.append("```\n" + out["text"] + "\n```")
    return "\n\n".join(chunks)
