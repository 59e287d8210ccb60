"""Quarto-style cross-references without Quarto: number the labelled figures and tables
(``{#fig-x}``, ``{#tbl-x}``), resolve ``@fig-x`` / ``@tbl-x`` to "Figure n" / "Table n", and
list the captions."""
from __future__ import annotations

import re

from reports.notebook import UNAVAILABLE_RE, RenderError

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
