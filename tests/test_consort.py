"""analysis.figures_consort: the CONSORT flow diagram is the ``consort`` table.

Every box's numbers are read back from the figure and compared, row for row, with the table;
the table is checked against counts made here with pandas straight from the snapshot's Parquet
files; boxes are checked geometrically (no two rectangles overlap, no arrow or connector runs
through a box); sub-counts add up to their box; the blinded diagram names no arm.
"""
from __future__ import annotations

import itertools
import re

import pandas as pd
import pytest

from analysis.figures_consort import POOLED_LABEL, plot_consort
from analysis.recruitment import summarize_consort
from analysis.outputs import build_table
from data_access.views import open_view
ARM_TOKENS = ("Low-dose IL-2", "Placebo", "IL2LD", "PBO", "Group A", "Group B")

# figure line label -> consort table stage (labels written out here, not imported)
STAGE_OF_LABEL = {
    "Assessed for eligibility": "Assessed for eligibility", "Excluded": "Excluded", "Randomised": "Randomised",
    "In run-in at data cut-off": "In run-in at cut", "Allocated": "Allocated",
    "Received allocated intervention": "Received allocated intervention",
    "Did not receive allocated intervention": "Did not receive allocated intervention",
    "Completed follow-up": "Completed", "Ongoing": "Ongoing", "Died": "Died", "Discontinued": "Discontinued",
    "Lost to follow-up": "Lost to follow-up", "Analysed, intention to treat": "Analysed (ITT)",
    "Analysed, primary endpoint": "Analysed (primary endpoint)",
}
LINE_RE = re.compile(r"^(?P<indent>[•–\s]*)(?P<label>.*) \(n=(?P<n>\d+)\)$")


# --------------------------------------------------------------------------- reading the figure back
def _rects(fig) -> dict[str, tuple[float, float, float, float]]:
    return {s.name: (min(s.x0, s.x1), max(s.x0, s.x1), min(s.y0, s.y1), max(s.y0, s.y1))
            for s in fig.layout.shapes if s.type == "rect"}


def _inside(x, y, r) -> bool:
    return r[0] <= x <= r[1] and r[2] <= y <= r[3]


def _box_lines(fig) -> dict[str, list[tuple[str, str, int | None]]]:
    """Box name -> its text lines as (indent, label, n); each text annotation must sit in
    exactly one box."""
    rects = _rects(fig)
    out = {name: [] for name in rects}
    for a in fig.layout.annotations:
        if a.showarrow or not a.text:
            continue
        holders = [name for name, r in rects.items() if _inside(a.x, a.y, r)]
        assert len(holders) == 1, (a.text, holders)
        for line in a.text.split("<br>"):
            plain = re.sub(r"<[^>]+>", "", line)
            m = LINE_RE.match(plain)
            out[holders[0]].append((m["indent"].strip(), m["label"], int(m["n"])) if m else ("", plain, None))
    return out


def _figure_rows(fig) -> pd.DataFrame:
    """The (stage, group, reason, n) rows the figure shows, reasons in lower case."""
    rows = []
    for box, lines in _box_lines(fig).items():
        kind = box.split(":")
        for indent, label, n in lines:
            if n is None:
                continue
            if len(kind) == 3:                        # consort:<alloc|follow-up|analysis>:<group>
                group = kind[2]
                if indent == "–":
                    rows.append(("Discontinued", group, label.lower(), n))
                else:
                    rows.append((STAGE_OF_LABEL[label], group, "", n))
            elif kind[1] in ("Assessed for eligibility", "Excluded", "Randomised", "In run-in at cut"):
                rows.append((STAGE_OF_LABEL[label], "All", "", n))
            else:                                     # an exclusion category box, e.g. Screen failure
                reason = label if indent == "" else f"{kind[1]}: {label}"
                rows.append(("Excluded", "All", reason.lower(), n))
    return _sorted(pd.DataFrame(rows, columns=["stage", "group", "reason", "n"]))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["stage", "group", "reason"]).reset_index(drop=True)


def _table_rows(consort: pd.DataFrame) -> pd.DataFrame:
    t = consort.assign(reason=consort["reason"].fillna("").str.lower(), n=consort["n"].astype(int))
    return _sorted(t[["stage", "group", "reason", "n"]])


def _segments(fig):
    """Arrows and connector lines as (x0, y0, x1, y1)."""
    segs = [(a.ax, a.ay, a.x, a.y) for a in fig.layout.annotations if a.showarrow]
    segs += [(s.x0, s.y0, s.x1, s.y1) for s in fig.layout.shapes if s.type == "line"]
    return segs


def _assert_layout(fig):
    rects = _rects(fig)
    for (na, a), (nb, b) in itertools.combinations(rects.items(), 2):
        overlap = a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]
        assert not overlap, f"boxes {na} and {nb} overlap: {a} {b}"
    xr, yr = sorted(fig.layout.xaxis.range), sorted(fig.layout.yaxis.range)
    for name, r in rects.items():
        assert xr[0] <= r[0] and r[1] <= xr[1] and yr[0] <= r[2] and r[3] <= yr[1], f"{name} outside the plot"
    for x0, y0, x1, y1 in _segments(fig):             # no arrow or line through a box's inside
        assert x0 == x1 or y0 == y1, "connectors are vertical or horizontal"
        for name, r in rects.items():
            lo_x, hi_x, lo_y, hi_y = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
            crosses = lo_x < r[1] - 1 and r[0] + 1 < hi_x or (x0 == x1 and r[0] + 1 < x0 < r[1] - 1)
            crosses_y = lo_y < r[3] - 1 and r[2] + 1 < hi_y or (y0 == y1 and r[2] + 1 < y0 < r[3] - 1)
            assert not (crosses and crosses_y), f"connector {(x0, y0, x1, y1)} runs through {name}"


def _assert_subcounts(fig):
    """Each box's parts add up to it."""
    boxes = _box_lines(fig)
    n = lambda box, label: next(k for _i, lab, k in boxes[box] if lab == label)
    categories = [b for b in boxes if b.split(":")[1] not in (
        "Assessed for eligibility", "Excluded", "Randomised", "In run-in at cut") and b.count(":") == 1]
    assert {b.split(":")[1] for b in categories} == {"Screen failure", "Run-in drop-out"}
    heads = []
    for box in categories:
        head, *reasons = boxes[box]
        assert head[0] == "" and all(i == "•" for i, _l, _k in reasons)
        assert head[2] == sum(k for _i, _l, k in reasons), box
        heads.append(head[2])
    assert n("consort:Excluded", "Excluded") == sum(heads)
    in_run_in = (n("consort:In run-in at cut", "In run-in at data cut-off")
                 if "consort:In run-in at cut" in boxes else 0)
    assert n("consort:Assessed for eligibility", "Assessed for eligibility") == \
        n("consort:Excluded", "Excluded") + in_run_in + n("consort:Randomised", "Randomised")
    groups = [b.split(":", 2)[2] for b in boxes if b.startswith("consort:alloc:")]
    assert sum(n(f"consort:alloc:{g}", "Allocated") for g in groups) == n("consort:Randomised", "Randomised")
    for g in groups:
        allocated = n(f"consort:alloc:{g}", "Allocated")
        assert allocated == n(f"consort:alloc:{g}", "Received allocated intervention") + \
            n(f"consort:alloc:{g}", "Did not receive allocated intervention")
        follow = boxes[f"consort:follow-up:{g}"]
        assert sum(k for i, _l, k in follow if i == "•") == allocated, g
        reasons = [k for i, _l, k in follow if i == "–"]
        assert sum(reasons) == n(f"consort:follow-up:{g}", "Discontinued"), g


# --------------------------------------------------------------------------- expected counts, by hand
def _expected_enrolment(root) -> pd.DataFrame:
    s = pd.read_parquet(root / "clinical" / "screening.parquet")
    adsl = pd.read_parquet(root / "clinical" / "adsl.parquet")
    rows = [("Assessed for eligibility", "", len(s)), ("Randomised", "", len(adsl))]
    for outcome, category in (("SCREEN FAILURE", "Screen failure"), ("RUN-IN DROP-OUT", "Run-in drop-out")):
        d = s[s["OUTCOME"] == outcome]
        rows.append(("Excluded", category, len(d)))
        rows += [("Excluded", f"{category}: {r}", k) for r, k in d["REASON"].fillna("Not recorded").value_counts().items()]
    rows.append(("Excluded", "", int(s["OUTCOME"].isin(["SCREEN FAILURE", "RUN-IN DROP-OUT"]).sum())))
    if (s["OUTCOME"] == "IN RUN-IN").any():
        rows.append(("In run-in at cut", "", int((s["OUTCOME"] == "IN RUN-IN").sum())))
    out = pd.DataFrame(rows, columns=["stage", "reason", "n"]).assign(group="All")
    out["reason"] = out["reason"].str.lower()
    return out


def _expected_per_group(root, arm_of: pd.Series | None, paramcd: str) -> pd.DataFrame:
    adsl = pd.read_parquet(root / "clinical" / "adsl.parquet")
    adtte = pd.read_parquet(root / "clinical" / "adtte.parquet")
    group = adsl["USUBJID"].map(arm_of) if arm_of is not None else pd.Series("All", index=adsl.index)
    dcs = adsl["DCSREAS"].fillna("").str.upper()
    died = adsl["DTHFL"].eq("Y") | dcs.eq("DEATH")
    lost = dcs.str.contains("LOST") & ~died
    disc = adsl["EOSSTT"].eq("DISCONTINUED") & ~died & ~lost
    received = adsl["SAFFL"].eq("Y") | adsl["TRTSDT"].notna()
    primary = adsl["USUBJID"].isin(adtte.loc[adtte["PARAMCD"] == paramcd, "USUBJID"])
    flags = {"Allocated": pd.Series(True, index=adsl.index), "Received allocated intervention": received,
             "Did not receive allocated intervention": ~received,
             "Completed": adsl["EOSSTT"].eq("COMPLETED") & ~died, "Ongoing": adsl["EOSSTT"].eq("ONGOING") & ~died,
             "Discontinued": disc, "Died": died, "Lost to follow-up": lost,
             "Analysed (ITT)": adsl["ITTFL"].eq("Y"), "Analysed (primary endpoint)": primary}
    rows = []
    for g in group.unique():
        m = group == g
        rows += [(stage, g, "", int((m & f).sum())) for stage, f in flags.items()]
        rows += [("Discontinued", g, r.lower(), k) for r, k in adsl.loc[m & disc, "DCSREAS"].value_counts().items()]
    return pd.DataFrame(rows, columns=["stage", "group", "reason", "n"])


# --------------------------------------------------------------------------- the demo trial
@pytest.fixture(scope="module")
def views(demo_snapshot, blinded_only_snapshot):
    """Blinded: a deployment with no allocation anywhere near it; unblinded: the DSMB's."""
    return (open_view(blinded_only_snapshot, "steering"),
            open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation"))


@pytest.fixture(scope="module")
def arm_of(demo_snapshot, study):
    alloc = pd.read_parquet(demo_snapshot / "allocation" / "allocation.parquet")
    labels = dict(zip(study.arm_codes, study.arm_labels))
    return alloc.set_index("USUBJID")["ARMCD"].map(labels)


@pytest.mark.parametrize("which", ["blinded", "unblinded"])
def test_every_box_is_its_table_row_and_the_table_is_the_data(views, which, demo_snapshot, arm_of, study):
    view = views[0] if which == "blinded" else views[1]
    consort = build_table("consort", view)
    fig = plot_consort(consort)
    # every row of the table drawn once, with its number, and no number that is not a row
    pd.testing.assert_frame_equal(_figure_rows(fig), _table_rows(consort))
    # the table against counts made here from the Parquet files
    expected = pd.concat([_expected_enrolment(demo_snapshot),
                          _expected_per_group(demo_snapshot, arm_of if which == "unblinded" else None,
                                              study.survival_paramcd)])
    pd.testing.assert_frame_equal(_table_rows(consort), _sorted(expected[["stage", "group", "reason", "n"]]),
                                  check_dtype=False)


@pytest.mark.parametrize("which", ["blinded", "unblinded"])
def test_boxes_do_not_overlap_and_subcounts_add_up(views, which):
    view = views[0] if which == "blinded" else views[1]
    consort = build_table("consort", view)
    fig = plot_consort(consort)
    _assert_layout(fig)
    _assert_subcounts(fig)


def test_screen_failures_and_run_in_drop_outs_apart_with_every_reason(views, demo_snapshot):
    fig = plot_consort(build_table("consort", views[1]))
    boxes = _box_lines(fig)
    s = pd.read_parquet(demo_snapshot / "clinical" / "screening.parquet")
    for box, outcome in (("consort:Screen failure", "SCREEN FAILURE"), ("consort:Run-in drop-out", "RUN-IN DROP-OUT")):
        shown = {label: k for i, label, k in boxes[box] if i == "•"}
        assert shown == s.loc[s["OUTCOME"] == outcome, "REASON"].value_counts().to_dict(), box


def test_blinded_diagram_is_pooled_and_names_no_arm(views):
    fig = plot_consort(build_table("consort", views[0]), subtitle="Data cut-off 2021-01-01 · pooled over arms")
    texts = [a.text or "" for a in fig.layout.annotations] + [s.name or "" for s in fig.layout.shapes]
    texts += [str(getattr(tr, "name", "") or "") + str(getattr(tr, "text", "") or "") for tr in fig.data]
    texts.append(fig.layout.title.text or "")
    blob = " ".join(texts)
    assert not [tok for tok in ARM_TOKENS if tok in blob]
    assert [n for n in _rects(fig) if n.startswith("consort:alloc:")] == ["consort:alloc:All"]
    assert POOLED_LABEL in blob


def test_unblinded_diagram_has_a_column_per_arm(views, study):
    fig = plot_consort(build_table("consort", views[1]))
    assert [n for n in _rects(fig) if n.startswith("consort:alloc:")] == \
        [f"consort:alloc:{a}" for a in views[1].arm_levels]
    rects = _rects(fig)
    a, b = (rects[f"consort:alloc:{arm}"] for arm in views[1].arm_levels)
    assert a[1] < b[0] and a[2] == b[2]                 # side by side, same row
    boxes = _box_lines(fig)
    assert [boxes[f"consort:alloc:{arm}"][0][1] for arm in views[1].arm_levels] == list(views[1].arm_levels)


# --------------------------------------------------------------------------- small inline trials
def _trial(n_arms=3, n_reasons=12, in_run_in=2):
    """Screening with many screen-failure reasons (more than the old cut at 8), drop-outs, people
    still in run-in; randomised people spread over ``n_arms`` arms with every follow-up status."""
    sf_reasons = [f"Criterion {i:02d}" for i in range(n_reasons)]
    outcomes, reasons = [], []
    for i, r in enumerate(sf_reasons):
        outcomes += ["SCREEN FAILURE"] * (i % 3 + 1)
        reasons += [r] * (i % 3 + 1)
    outcomes += ["SCREEN FAILURE", "RUN-IN DROP-OUT", "RUN-IN DROP-OUT", "RUN-IN DROP-OUT"]
    reasons += [None, "Riluzole intolerance", "Rapid deterioration", "Rapid deterioration"]
    outcomes += ["IN RUN-IN"] * in_run_in + ["RANDOMISED"] * 12
    reasons += [None] * (in_run_in + 12)
    screening = pd.DataFrame({"SITEID": "S1", "OUTCOME": outcomes, "REASON": reasons})
    arms = [f"Arm {chr(65 + i)}" for i in range(n_arms)]
    status = [("COMPLETED", None, None), ("DISCONTINUED", "ADVERSE EVENT", None),
              ("DISCONTINUED", "DEATH", "Y"), ("DISCONTINUED", "LOST TO FOLLOW-UP", None),
              ("ONGOING", None, None), ("DISCONTINUED", "WITHDRAWAL BY SUBJECT", None)]
    adsl = pd.DataFrame({"USUBJID": [f"P{i}" for i in range(12)],
                         "ARM": [arms[i % n_arms] for i in range(12)],
                         "EOSSTT": [status[i % 6][0] for i in range(12)],
                         "DCSREAS": [status[i % 6][1] for i in range(12)],
                         "DTHFL": [status[i % 6][2] for i in range(12)],
                         "SAFFL": ["N" if i == 5 else "Y" for i in range(12)], "ITTFL": "Y",
                         "TRTSDT": [None if i == 5 else "2020-01-01" for i in range(12)]})
    return screening, adsl


@pytest.mark.parametrize("n_arms", [1, 2, 3, 4])
def test_inline_trials_any_number_of_arms(n_arms):
    screening, adsl = _trial(n_arms)
    group_col = "ARM" if n_arms > 1 else None
    consort = summarize_consort(screening, adsl, group_col=group_col)
    fig = plot_consort(consort, title=None)
    pd.testing.assert_frame_equal(_figure_rows(fig), _table_rows(consort))
    _assert_layout(fig)
    _assert_subcounts(fig)
    shown = [label for i, label, _k in _box_lines(fig)["consort:Screen failure"] if i == "•"]
    assert len(shown) == 13 and "Not recorded" in shown      # 12 reasons + a missing one, none cut


def test_in_run_in_box_only_when_the_table_has_the_row():
    screening, adsl = _trial(2, in_run_in=0)
    fig = plot_consort(summarize_consort(screening, adsl, group_col="ARM"))
    assert "consort:In run-in at cut" not in _rects(fig)
    screening, adsl = _trial(2, in_run_in=3)
    fig = plot_consort(summarize_consort(screening, adsl, group_col="ARM"))
    assert ("", "In run-in at data cut-off", 3) in _box_lines(fig)["consort:In run-in at cut"]


def test_missing_required_row_is_an_error_not_a_zero():
    screening, adsl = _trial(2)
    consort = summarize_consort(screening, adsl, group_col="ARM")
    with pytest.raises(ValueError, match="Randomised"):
        plot_consort(consort[consort["stage"] != "Randomised"])


def test_old_call_with_max_reasons_still_lists_every_reason():
    screening, adsl = _trial(2)
    fig = plot_consort(summarize_consort(screening, adsl, group_col="ARM"), max_reasons=4)
    assert len([1 for i, _l, _k in _box_lines(fig)["consort:Screen failure"] if i == "•"]) == 13


def test_long_labels_widen_the_diagram_and_keep_boxes_apart():
    screening, adsl = _trial(1)
    screening.loc[screening["OUTCOME"] == "SCREEN FAILURE", "REASON"] = "A very long exclusion reason " * 4
    adsl["DCSREAS"] = adsl["DCSREAS"].where(adsl["DCSREAS"].isna(), "OTHER REASON, WRITTEN OUT AT LENGTH " * 3)
    fig = plot_consort(summarize_consort(screening, adsl))
    _assert_layout(fig)
    assert fig.layout.width > 900
