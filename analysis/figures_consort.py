"""CONSORT 2025 flow diagram drawn from the ``consort`` table (one row per stage, group, reason).

Every number in the diagram is one row of the table (``analysis.recruitment.summarize_consort``,
``analysis.outputs.build_table("consort", view)``); the diagram computes no count of its own.

Layout (plot units are pixels at the figure's natural size, y pointing down)::

    Assessed for eligibility ──┬──> Excluded
                               │      ├─ Screen failure (every reason)
                               │      └─ Run-in drop-out (every reason)
                               ├──> In run-in at data cut-off (only when the table has the row)
    Randomised
      ├──> column per group: allocation (received / did not receive) -> follow-up at the cut
      │    (completed, ongoing, died, discontinued with every reason, lost to follow-up)
      │    -> analysis (ITT; primary endpoint when the table has it)

Each box is a ``rect`` shape named ``consort:<box>`` (``consort:alloc:<group>`` per group) with
one annotation inside it; box sizes come from their text, and boxes are placed in rows and
columns so that no two rectangles overlap. A blinded (pooled) table has the single group
``"All"`` and gives one pooled column, labelled without any arm.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from analysis.theme import apply_theme

__all__ = ["plot_consort", "POOLED_LABEL"]

POOLED_LABEL = "All randomised (pooled over arms)"
FONT = 11                  # px
LINE = 14                  # px per text line
PAD = 7                    # px between a box's edge and its text
CHAR = 0.56 * FONT         # estimated mean character width (Arial / Liberation Sans)
GAP = 22                   # px between box rows (room for an arrow)
INDENT = 18                # px: reason boxes sit this far right of the Excluded box
WIDTH = 876                # plot width at natural size (px); wider when a group needs it
MARGIN = dict(l=10, r=10, t=70, b=10)
LINE_STYLE = dict(color="#333333", width=1)
ALL = "All"
EXCLUDED, ASSESSED, RANDOMISED, IN_RUN_IN = "Excluded", "Assessed for eligibility", "Randomised", "In run-in at cut"
LABELS = {"In run-in at cut": "In run-in at data cut-off", "Completed": "Completed follow-up",
          "Analysed (ITT)": "Analysed, intention to treat",
          "Analysed (primary endpoint)": "Analysed, primary endpoint"}
FOLLOW_UP = ("Completed", "Ongoing", "Died", "Discontinued", "Lost to follow-up")


@dataclass
class _Box:
    name: str
    lines: list[str]
    x0: float = 0.0
    y0: float = 0.0
    w: float = 0.0
    h: float = 0.0
    centred: bool = False

    @property
    def x1(self) -> float:
        return self.x0 + self.w

    @property
    def y1(self) -> float:
        return self.y0 + self.h

    @property
    def xc(self) -> float:
        return self.x0 + self.w / 2

    @property
    def ym(self) -> float:
        return self.y0 + self.h / 2


def _text_width(line: str) -> float:
    plain = re.sub(r"<[^>]+>", "", line)
    return len(plain) * CHAR * (1.08 if "<b>" in line else 1.0)


def _natural_width(lines) -> float:
    return max(_text_width(t) for t in lines) + 2 * PAD


def _height(lines) -> float:
    return len(lines) * LINE + 2 * PAD


def _reason_label(reason: str) -> str:
    """Reasons as recorded; codes in capitals (DCSREAS "ADVERSE EVENT") in sentence case."""
    return reason.capitalize() if reason.isupper() else reason


class _Table:
    """Row look-up in the consort table: every count drawn is read here."""

    def __init__(self, consort: pd.DataFrame):
        missing = {"stage", "group", "n", "reason"} - set(consort.columns)
        if missing:
            raise ValueError(f"consort table is missing column(s): {', '.join(sorted(missing))}")
        self.c = consort.assign(reason=consort["reason"].fillna("").astype(str),
                                group=consort["group"].astype(str))

    def n(self, stage, group=ALL, reason="", required=False) -> int | None:
        r = self.c[(self.c["stage"] == stage) & (self.c["group"] == group) & (self.c["reason"] == reason)]
        if not len(r):
            if required:
                raise ValueError(f"consort table has no row stage={stage!r}, group={group!r}, reason={reason!r}")
            return None
        return int(r["n"].iloc[0])

    def reasons(self, stage, group=ALL, prefix="") -> list[tuple[str, int]]:
        r = self.c[(self.c["stage"] == stage) & (self.c["group"] == group) & (self.c["reason"] != "")]
        if prefix:
            r = r[r["reason"].str.startswith(prefix)]
        return [(reason[len(prefix):], int(k)) for reason, k in zip(r["reason"], r["n"])]

    def groups(self) -> list[str]:
        per_group = self.c[self.c["stage"] == "Allocated"]["group"]
        return list(dict.fromkeys(per_group)) or [ALL]


def _line(label, n, bold=False, bullet="") -> str:
    text = f"{bullet}{label} (n={n})"
    return f"<b>{text}</b>" if bold else text


def _exclusion_boxes(t: _Table) -> tuple[_Box, list[_Box]]:
    """The Excluded box and one box per exclusion category ("Screen failure", "Run-in drop-out"),
    each listing every one of its reasons."""
    excluded = _Box("consort:" + EXCLUDED, [_line(EXCLUDED, t.n(EXCLUDED, required=True), bold=True)])
    categories = [r for r, _k in t.reasons(EXCLUDED) if ": " not in r]
    boxes = []
    for cat in categories:
        lines = [_line(cat, t.n(EXCLUDED, reason=cat), bold=True)]
        lines += [_line(r, k, bullet="• ") for r, k in t.reasons(EXCLUDED, prefix=f"{cat}: ")]
        boxes.append(_Box(f"consort:{cat}", lines))
    orphans = [r for r, _k in t.reasons(EXCLUDED) if ": " in r and r.split(": ", 1)[0] not in categories]
    if orphans:
        raise ValueError(f"consort table: exclusion reasons without their category row: {orphans}")
    return excluded, boxes


def _group_boxes(t: _Table, group: str) -> list[_Box]:
    """Allocation, follow-up and analysis boxes of one group (rows the table lacks are left out)."""
    title = POOLED_LABEL if group == ALL else group
    alloc = [f"<b>{title}</b>", _line("Allocated", t.n("Allocated", group, required=True), bold=True)]
    for stage in ("Received allocated intervention", "Did not receive allocated intervention"):
        if (k := t.n(stage, group)) is not None:
            alloc.append(_line(stage, k, bullet="• "))
    follow = ["<b>Follow-up at data cut-off</b>"]
    for stage in FOLLOW_UP:
        if (k := t.n(stage, group)) is None:
            continue
        follow.append(_line(LABELS.get(stage, stage), k, bullet="• "))
        if stage == "Discontinued":
            follow += [_line(_reason_label(r), k, bullet="    – ") for r, k in t.reasons(stage, group)]
    analysis = [_line(LABELS[s], k, bold=i == 0) for i, s in enumerate(("Analysed (ITT)", "Analysed (primary endpoint)"))
                if (k := t.n(s, group)) is not None]
    return [_Box(f"consort:alloc:{group}", alloc), _Box(f"consort:follow-up:{group}", follow),
            _Box(f"consort:analysis:{group}", analysis)]


def _arrow(fig, x0, y0, x1, y1):
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                       arrowhead=2, arrowsize=1, arrowwidth=1, arrowcolor="#333333", text="")


def _segment(fig, x0, y0, x1, y1):
    fig.add_shape(type="line", x0=x0, y0=y0, x1=x1, y1=y1, line=LINE_STYLE)


def _draw(fig, box: _Box):
    fig.add_shape(type="rect", name=box.name, x0=box.x0, x1=box.x1, y0=box.y0, y1=box.y1,
                  line=LINE_STYLE, fillcolor="white", layer="below")
    if box.centred:
        fig.add_annotation(x=box.xc, y=box.ym, text="<br>".join(box.lines), showarrow=False, align="center",
                           xanchor="center", yanchor="middle", font=dict(size=FONT))
    else:
        fig.add_annotation(x=box.x0 + PAD, y=box.ym, text="<br>".join(box.lines), showarrow=False, align="left",
                           xanchor="left", yanchor="middle", font=dict(size=FONT))


def plot_consort(consort: pd.DataFrame, title: str | None = "CONSORT flow diagram", subtitle: str | None = None,
                 max_reasons=None, min_width: float | None = None) -> go.Figure:
    """CONSORT 2025 flow diagram from the ``consort`` table.

    Parameters
    ----------
    consort : output of ``summarize_consort`` / ``build_table("consort", view)``: columns stage,
        group, n, reason. Needs the rows Assessed for eligibility, Excluded and Randomised (group
        "All") and Allocated per group; every other row is drawn when present. A pooled
        (blinded) table has only the group "All" and gives one column without arm labels.
    title, subtitle : figure title and subtitle (data cut-off, population).
    max_reasons : ignored; kept so that old calls still work (every reason is listed).
    min_width : the narrowest plot width (px). Default :data:`WIDTH` on screen (a title or a
        subtitle) and the boxes' natural width in print (neither: ``build_figure(printed=True)``),
        so that scaled to a journal's two-column width its text stays at least 7 pt.

    Returns
    -------
    plotly Figure; each box is a ``rect`` shape named ``consort:<box>``, its text one annotation.
    """
    t = _Table(consort)
    assessed = _Box("consort:" + ASSESSED, [_line(ASSESSED, t.n(ASSESSED, required=True), bold=True)], centred=True)
    randomised = _Box("consort:" + RANDOMISED, [_line(RANDOMISED, t.n(RANDOMISED, required=True), bold=True)],
                      centred=True)
    excluded, categories = _exclusion_boxes(t)
    n_run_in = t.n(IN_RUN_IN)
    run_in = (_Box("consort:" + IN_RUN_IN, [_line(LABELS[IN_RUN_IN], n_run_in, bold=True)])
              if n_run_in is not None else None)
    groups = t.groups()
    columns = [_group_boxes(t, g) for g in groups]

    # widths: the main column, the side (exclusion) column, the group columns
    main_w = max(_natural_width(b.lines) for b in (assessed, randomised))
    side = [excluded] + ([run_in] if run_in else [])
    side_w = max([_natural_width(b.lines) for b in side] + [_natural_width(b.lines) + INDENT for b in categories])
    col_w = max(_natural_width(b.lines) for col in columns for b in col)
    if min_width is None:
        min_width = WIDTH if title or subtitle else 0
    width = max(min_width, main_w + side_w + 3 * GAP, len(groups) * (col_w + GAP))
    side_x0 = width - side_w
    main_xc = min(width / 2, side_x0 - 2 * GAP - main_w / 2)
    for b in (assessed, randomised):
        b.w, b.h, b.x0 = main_w, _height(b.lines), main_xc - main_w / 2
    for b in side:
        b.w, b.h, b.x0 = side_w, _height(b.lines), side_x0
    for b in categories:
        b.w, b.h, b.x0 = side_w - INDENT, _height(b.lines), side_x0 + INDENT

    # rows, top to bottom
    assessed.y0 = 0
    y = assessed.y1 + GAP
    excluded.y0 = y
    y = excluded.y1
    for b in categories:
        b.y0 = y + PAD
        y = b.y1
    if run_in:
        run_in.y0 = y + GAP
        y = run_in.y1
    randomised.y0 = (run_in.ym if run_in else excluded.ym) + GAP
    y = max(y, randomised.y1) + GAP + PAD
    col_centres = ([min(max(main_xc, col_w / 2), width - col_w / 2)] if len(groups) == 1 else
                   [width * (i + 0.5) / len(groups) for i in range(len(groups))])
    elbow = col_centres != [main_xc]            # Randomised -> columns through a horizontal line
    box_w = min(col_w, width / len(groups) - GAP) if len(groups) > 1 else col_w
    row_tops = []
    for row in range(3):
        h = max(_height(col[row].lines) for col in columns)
        row_tops.append(y)
        for xc, col in zip(col_centres, columns):
            col[row].x0, col[row].y0, col[row].w, col[row].h = xc - box_w / 2, y, box_w, h
        y += h + GAP
    height = y - GAP

    fig = go.Figure()
    for b in [assessed, randomised, excluded, *categories, *([run_in] if run_in else []),
              *(b for col in columns for b in col)]:
        _draw(fig, b)
    # main line with arrows to the side column, then to Randomised
    _arrow(fig, main_xc, assessed.y1, main_xc, randomised.y0)
    for b in side:
        _arrow(fig, main_xc, b.ym, b.x0, b.ym)
    if categories:                   # bracket from the Excluded box to each category box
        bx = side_x0 + INDENT / 2
        _segment(fig, bx, excluded.y1, bx, categories[-1].ym)
        for b in categories:
            _segment(fig, bx, b.ym, b.x0, b.ym)
    # Randomised to each group column
    split = row_tops[0] - GAP / 2 - PAD / 2
    if elbow:
        _segment(fig, main_xc, randomised.y1, main_xc, split)
        _segment(fig, min(col_centres + [main_xc]), split, max(col_centres + [main_xc]), split)
    for xc, col in zip(col_centres, columns):
        _arrow(fig, xc, split if elbow else randomised.y1, xc, col[0].y0)
        for upper, lower in zip(col, col[1:]):
            _arrow(fig, xc, upper.y1, xc, lower.y0)

    edge = 2                         # so that the outer box lines are not clipped
    fig.update_xaxes(visible=False, range=[-edge, width + edge], fixedrange=True)
    fig.update_yaxes(visible=False, range=[height + edge, -edge], fixedrange=True)
    apply_theme(fig, title, subtitle)
    margin = dict(MARGIN, t=MARGIN["t"] if title or subtitle else MARGIN["b"])
    fig.update_layout(width=width + 2 * edge + margin["l"] + margin["r"],
                      height=height + 2 * edge + margin["t"] + margin["b"], margin=margin, showlegend=False)
    return fig
