"""Column widths of the Word documents' tables (``reports.render._docx``).

Pandoc gives a pipe table's columns the relative widths of the dashes under its header (when a
line of the table is longer than 72 characters; otherwise equal columns over the text width).
The reports' Markdown sizes those dashes for the HTML and PDF (``report_lib._pipe``); in Word a
narrow column broke its header inside a word ("Countr|y", "Screene|d" in 8 pt over 18 cm) and
its dates at their hyphens. Here each table's dashes are set again for Word: every column at
least as wide as its longest word (header words bold, so wider; a date is one word), then the
narrow columns (numbers, dates, estimates) as wide as their longest cell and the widest text
columns cut to share what is left (their text wraps). The cells are not changed.
"""
from __future__ import annotations

import re

# 18 cm of 8 pt text at 5.1 pt a character: a digit of DejaVu Sans, the widest of the fonts a
# reader may get (Arial and Liberation Sans: 4.45 pt), so a column's longest word fits in any
LINE_CHARS = 100
PAD = 2.0            # the cell's side margins (1 mm each) and some slack, in characters
BOLD = 1.12          # a bold header word is about this much wider
DASHES_PER_CHAR = 2  # resolution of the widths; the total stays over 72, so Pandoc uses them
_SEP = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _words(text: str) -> list[str]:
    """What Word cannot break: words, split after the hyphens between letters (Word breaks
    after a hyphen: "Pitie-|Salpetriere" reads well, a date "2017-06-|19" does not)."""
    return [w for word in text.split() for w in re.split(r"(?<=[A-Za-z]-)(?=[A-Za-z])", word)]


def column_widths(header: list[str], rows: list[list[str]], line: float = LINE_CHARS) -> list[float]:
    """Widths in characters: each column at least its longest word (the header's bold) and at most
    its longest cell; when the cells do not all fit the line, the narrow columns keep their whole
    width and the widest are cut to a common width (their text wraps)."""
    need, want = [], []
    for j, head in enumerate(header):
        body = [r[j] for r in rows if j < len(r)]
        word = max([len(w) * BOLD for w in _words(head)] + [len(w) for c in body for w in _words(c)] + [1])
        need.append(word + PAD)
        want.append(max(word, len(head) * BOLD / 2, *[len(c) for c in body], 1) + PAD)
    if sum(want) <= line:
        return want
    if sum(need) >= line:
        return need
    # water-filling: every column gets its whole width up to a common level, the level chosen so the
    # columns fill the line; short columns (numbers, dates) are not wrapped, long text wraps
    lo, hi = 0.0, max(want)
    for _ in range(50):
        level = (lo + hi) / 2
        if sum(max(n, min(w, level)) for n, w in zip(need, want)) > line:
            hi = level
        else:
            lo = level
    return [max(n, min(w, lo)) for n, w in zip(need, want)]


def fit_table_columns(md: str, line: float = LINE_CHARS) -> str:
    """``md`` with the dashes under every pipe table's header set from ``column_widths``
    (alignment colons kept)."""
    lines = md.split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and _SEP.match(lines[i + 1]):
            header, seps = _cells(lines[i]), _cells(lines[i + 1])
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            rows = [_cells(r) for r in lines[i + 2:j]]
            if len(header) == len(seps) and all(len(r) == len(header) for r in rows):
                widths = column_widths(header, rows, line)
                rule = []
                for w, sep in zip(widths, seps):
                    dashes = "-" * max(3, round(w * DASHES_PER_CHAR))
                    rule.append((":" if sep.startswith(":") else "") + dashes + (":" if sep.endswith(":") else ""))
                out += [lines[i], "|" + "|".join(rule) + "|", *lines[i + 2:j]]
                i = j
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)
