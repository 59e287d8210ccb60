"""One participant's whole course (issue 14): the patient profile a DSMB member or a medical
monitor opens to judge a death or a serious adverse event. Defined once here; the dashboard's
Participant page, ``mirocals profile SUBJECT`` and the closed report's appendix of profiles of
deaths render it unchanged.

Everything is read through the view, one participant at a time (DuckDB filters the rows), so a
blinded view's profile holds what the view holds and nothing more: no arm (the view has no
allocation), no Treg or eosinophil value and no arm-revealing adverse-event term (the view withholds
them). An unblinded view's profile shows the arm in its summary and every laboratory parameter.

``build_profile(view, subject)`` returns a :class:`Profile`: ``summary`` (label -> display text),
``timeline`` (one row per dated event: date, study day, category, event, detail; the machine
table, also the CSV), ``scores`` (ALSFRS-R total and domains by visit, for the figure).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.display import format_number

TIMELINE_COLUMNS = ("date", "day", "category", "event", "detail")
CATEGORY_ORDER = ["Screening", "Randomisation", "Visit", "ALSFRS-R", "Respiratory function", "Laboratory",
                  "Treatment", "Adverse event", "Concomitant care", "Protocol deviation", "End of study",
                  "Vital status"]
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/ ]{0,63}$")


class SubjectNotFound(LookupError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class Profile:
    subject: str
    summary: dict
    timeline: pd.DataFrame
    scores: pd.DataFrame
    notes: list


def _rows(view, name: str, subject: str) -> pd.DataFrame | None:
    """The participant's rows of dataset ``name`` (None when the snapshot has no such dataset);
    arm columns of an unblinded view are left out (the summary states the arm once)."""
    if name not in view.datasets:
        return None
    literal = "'" + subject.replace("'", "''") + "'"
    df = view.table(name, where=f"USUBJID = {literal}")
    arm_cols = {c for c in (getattr(view, "group_col", None), view.study.col("arm"), view.study.col("armcd")) if c}
    return df.drop(columns=[c for c in df.columns if c in arm_cols or c in ("ARM", "ARMCD", "MASKCD")])


def _date(value):
    if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(value):
        return pd.NaT
    return pd.Timestamp(value).normalize()


def _text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def _words(code) -> str:
    text = _text(code)
    return text.capitalize() if text.isupper() else text


def _value(v, unit) -> str:
    if v is None or pd.isna(v):
        return "—"
    digits = 0 if float(v).is_integer() or abs(float(v)) >= 100 else (1 if abs(float(v)) >= 10 else 2)
    unit = _text(unit)
    return format_number(float(v), digits) + (f" {unit}" if unit else "")


def build_profile(view, subject: str) -> Profile:
    """The profile of ``subject`` (USUBJID) in ``view``. Raises :class:`SubjectNotFound` naming
    the subject when it is not in the snapshot's ADSL."""
    subject = str(subject).strip()
    if not _SUBJECT.match(subject):
        raise SubjectNotFound(f"{subject!r} is not a subject identifier (letters, digits, - . / and spaces)")
    adsl = view.table("adsl", where="USUBJID = '" + subject.replace("'", "''") + "'")
    if adsl.empty:
        raise SubjectNotFound(f"subject {subject} is not in this snapshot (ADSL, cut-off {view.cut_date})")
    s = adsl.iloc[0]
    rand = _date(s.get("RANDDT"))
    events: list[dict] = []
    notes: list[str] = []

    def add(date, category, event, detail=""):
        d = _date(date)
        events.append({"date": d, "day": (d - rand).days if pd.notna(d) and pd.notna(rand) else np.nan,
                       "category": category, "event": event, "detail": detail})

    site_names = {x.id: x.name for x in view.study.sites}
    site = _text(s.get(view.study.col("site")))
    summary = {"Subject": subject, "Site": f"{site} {site_names[site]}" if site in site_names else site}
    group_col = getattr(view, "group_col", None)
    if group_col and group_col in adsl.columns and not view.blinded:
        summary["Arm"] = _text(s[group_col])
    for label, col in (("Country", "COUNTRY"), ("Site of onset", "ONSET"), ("Sex", "SEX"), ("Age, years", "AGE"),
                       ("Randomised", "RANDDT"), ("Baseline ALSFRS-R total", "BLALSFRS"),
                       ("Slow vital capacity at baseline, % predicted", "SVCPCT"), ("Status at the cut-off", "EOSSTT")):
        if col in adsl.columns and _text(s[col]):
            v = s[col]
            summary[label] = (f"{_date(v):%Y-%m-%d}" if col.endswith("DT") else
                              {"M": "Male", "F": "Female"}.get(v, _words(v)) if isinstance(v, str)
                              else format_number(float(v), 0))

    add(s.get("SCRNDT"), "Screening", "Screened")
    add(rand, "Randomisation", "Randomised", "; ".join(x for x in (
        f"stratum {_text(s.get('STRATUM'))}" if _text(s.get("STRATUM")) else "",
        f"arm {summary['Arm']}" if "Arm" in summary else "") if x))

    visits = _visit_rows(view, subject)
    for r in visits.itertuples(index=False):
        status = str(r.status).replace("_", " ")
        if status in ("not due", "not expected"):
            continue
        add(r.assessment_date if status == "done" else r.target_date, "Visit", f"{r.AVISIT}: {status}",
            "" if status == "done" else f"target {pd.Timestamp(r.target_date):%Y-%m-%d}, window to "
                                        f"{pd.Timestamp(r.window_end):%Y-%m-%d}")

    scores = pd.DataFrame(columns=["AVISIT", "ADT", "ADY", "PARAMCD", "PARAM", "AVAL"])
    func = view.study.functional_dataset
    q = _rows(view, func, subject)
    if q is not None and len(q):
        total = view.study.functional_total
        domains = list(view.study.raw.get("endpoints", {}).get("functional_domains", []))
        scores = q[q["PARAMCD"].isin([total, *domains])][["AVISIT", "ADT", "ADY", "PARAMCD", "PARAM", "AVAL"]]
        for (visit, adt), x in scores.groupby(["AVISIT", "ADT"], sort=False):
            tot = x.loc[x["PARAMCD"] == total, "AVAL"]
            parts = [f"{_domain_name(p)} {format_number(v, 0)}" for p, v in zip(x["PARAMCD"], x["AVAL"])
                     if p != total and pd.notna(v)]
            add(adt, "ALSFRS-R", f"Total {format_number(tot.iloc[0], 0) if len(tot) else '—'} of 48",
                f"{visit}" + (f"; {', '.join(parts)}" if parts else ""))
    else:
        notes.append(f"no functional score ({func}) for this participant")

    resp_name = view.study.raw.get("endpoints", {}).get("respiratory_dataset", "adresp")
    for name, category in ((resp_name, "Respiratory function"), (view.study.raw.get("endpoints", {}).get(
            "lab_dataset", "adlb"), "Laboratory")):
        d = _rows(view, name, subject)
        if d is None:
            continue
        for r in d.sort_values(["ADT", "PARAMCD"]).itertuples(index=False):
            add(r.ADT, category, f"{getattr(r, 'PARAM', r.PARAMCD)}: {_value(r.AVAL, getattr(r, 'AVALU', None))}",
                _text(getattr(r, "AVISIT", "")))

    ex = _rows(view, "adex", subject)
    if ex is not None:
        from analysis.outputs.care import treatment_settings
        per = treatment_settings(view.study)["doses_per_cycle"]
        for r in ex.sort_values("CYCLE").itertuples(index=False):
            add(r.ASTDT, "Treatment", f"Cycle {int(r.CYCLE)}: {int(r.NDOSES)} of {per} doses", "; ".join(b for b in (
                "" if pd.isna(getattr(r, "AENDT", pd.NaT)) else f"to {pd.Timestamp(r.AENDT):%Y-%m-%d}",
                _words(getattr(r, "EXADJ", None))) if b))

    ae = _rows(view, view.study.ae_dataset, subject)
    if ae is not None:
        for r in ae.sort_values("ASTDT").itertuples(index=False):
            serious = _text(getattr(r, "AESER", "")) == "Y"
            bits = [_words(getattr(r, "AESEV", "")), "serious" if serious else "",
                    _words(getattr(r, "AEREL", "")), _words(getattr(r, "AEOUT", "")),
                    "" if pd.isna(getattr(r, "AENDT", pd.NaT)) else f"ended {pd.Timestamp(r.AENDT):%Y-%m-%d}"]
            add(r.ASTDT, "Adverse event", ("SAE: " if serious else "") + _text(r.AEDECOD),
                "; ".join(b for b in bits if b))

    cm = _rows(view, "adcm", subject)
    if cm is not None:
        for r in cm.itertuples(index=False):
            name = _text(getattr(r, "CMDECOD", "")) or _text(getattr(r, "CMTRT", ""))
            detail = "; ".join(b for b in (_words(getattr(r, "CMCAT", "")), _text(getattr(r, "CMCLAS", ""))) if b)
            add(getattr(r, "ASTDT", pd.NaT), "Concomitant care", name, detail)
    else:
        notes.append("no concomitant-care dataset (adcm) in this snapshot")
    dv = _rows(view, "addv", subject)
    if dv is not None:
        for r in dv.itertuples(index=False):
            important = _text(getattr(r, "DVIMPFL", getattr(r, "DVSCAT", "")))
            add(getattr(r, "ASTDT", pd.NaT), "Protocol deviation", _text(getattr(r, "DVTERM", "")),
                "; ".join(b for b in (_words(getattr(r, "DVCAT", "")),
                                      "important" if important in ("Y", "IMPORTANT") else
                                      "minor" if important in ("N", "MINOR", "NON-IMPORTANT") else "") if b))
    else:
        notes.append("no protocol-deviation dataset (addv) in this snapshot")

    if _text(s.get("DTHFL")) == "Y" or pd.notna(_date(s.get("DTHDT"))):
        add(s.get("DTHDT"), "Vital status", "Died")
    elif pd.notna(_date(s.get("LSTALVDT"))):
        add(s.get("LSTALVDT"), "Vital status", "Last known alive")
    if pd.notna(_date(s.get("EOSDT"))):
        add(s.get("EOSDT"), "End of study", _words(s.get("EOSSTT")), _words(s.get("DCSREAS")))

    timeline = pd.DataFrame(events, columns=list(TIMELINE_COLUMNS))
    order = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    timeline = (timeline.assign(_o=timeline["category"].map(order), _n=np.arange(len(timeline)))
                .sort_values(["date", "_o", "_n"], na_position="last", kind="mergesort")
                .drop(columns=["_o", "_n"]).reset_index(drop=True))
    timeline["day"] = timeline["day"].astype("Int64")
    return Profile(subject, summary, timeline, scores.reset_index(drop=True), notes)


def _domain_name(code: str) -> str:
    return {"BULBAR": "bulbar", "FINEMOT": "fine motor", "GROSSMOT": "gross motor", "RESP": "respiratory"}.get(code, code)


def _visit_rows(view, subject: str) -> pd.DataFrame:
    """The participant's scheduled visits and their status at the cut (the ``visit-status``
    output, derived once per view); empty when the study has no functional dataset."""
    from analysis.outputs import TableUnavailable, build_table
    try:
        status = build_table("visit-status", view)
    except (TableUnavailable, KeyError):
        return pd.DataFrame(columns=["AVISIT", "status", "target_date", "window_end", "assessment_date"])
    return status[status["USUBJID"] == subject]


def display_timeline(profile: Profile) -> pd.DataFrame:
    """The timeline as people read it: Date (YYYY-MM-DD), Study day, Category, Event, Details."""
    t = profile.timeline
    return pd.DataFrame({"Date": t["date"].map(lambda d: "—" if pd.isna(d) else f"{d:%Y-%m-%d}"),
                         "Study day": t["day"].map(lambda d: "—" if pd.isna(d) else str(int(d))),
                         "Category": t["category"], "Event": t["event"], "Details": t["detail"].replace("", "—")})


COMPACT_DROP = ("Laboratory", "Visit", "Screening")


def compact_profile(profile: Profile, doses_per_cycle: int = 5) -> Profile:
    """The profile for a report's appendix: no laboratory values, visits or screening, and only the
    cycles in which a dose was missed (a line says how many cycles were complete)."""
    t = profile.timeline
    cycles = t[t["category"] == "Treatment"]
    full = cycles["event"].str.endswith(f": {doses_per_cycle} of {doses_per_cycle} doses")
    keep = ~t["category"].isin(COMPACT_DROP) & ~(t["category"].eq("Treatment") & t["event"].str.endswith(
        f": {doses_per_cycle} of {doses_per_cycle} doses"))
    summary = {**profile.summary, "Treatment cycles": f"{len(cycles)} started, {int(full.sum())} with every dose"}
    return Profile(profile.subject, summary, t[keep].reset_index(drop=True), profile.scores, profile.notes)


def profile_markdown(profile: Profile, view, compact: bool = False) -> str:
    """The profile as Markdown (``mirocals profile --format md``; ``compact``: the closed report's
    appendix, see :func:`compact_profile`)."""
    if compact:
        from analysis.outputs.care import treatment_settings
        profile = compact_profile(profile, treatment_settings(view.study)["doses_per_cycle"])
    lines = [f"### Participant {profile.subject}", ""]
    lines += [f"- **{k}**: {v}" for k, v in profile.summary.items() if k != "Subject"]
    shown = display_timeline(profile)
    lines += ["", "| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |" for row in shown.itertuples(index=False)]
    pooled = "blinded view: no arm, no arm-revealing laboratory parameter or adverse-event term" if view.blinded \
        else "unblinded view"
    lines += ["", f"*Data cut-off {view.cut_date}; {pooled}" + (f"; {'; '.join(profile.notes)}" if profile.notes
                                                                 else "") + ".*"]
    return "\n".join(lines)


def fig_profile(profile: Profile, view, subtitle: str | None = None):
    """ALSFRS-R total (and domains, dotted) by study day, with adverse events (serious ones
    marked), treatment cycles and the end of follow-up (death or last known alive)."""
    import plotly.graph_objects as go
    from analysis.theme import apply_theme
    fig = go.Figure()
    sc = profile.scores
    total = view.study.functional_total
    for code, x in sc.groupby("PARAMCD", sort=False):
        x = x.sort_values("ADY")
        fig.add_trace(go.Scatter(x=x["ADY"], y=x["AVAL"], mode="lines+markers",
                                 name="ALSFRS-R total" if code == total else _domain_name(code).capitalize(),
                                 line={"width": 3 if code == total else 1, "dash": "solid" if code == total else "dot"}))
    t = profile.timeline
    ae = t[t["category"] == "Adverse event"]
    if len(ae):
        serious = ae["event"].str.startswith("SAE: ")
        for mask, name, symbol in ((~serious, "Adverse event", "triangle-up"), (serious, "Serious adverse event", "x")):
            if mask.any():
                fig.add_trace(go.Scatter(x=ae.loc[mask, "day"].astype(float), y=[-2] * int(mask.sum()), mode="markers",
                                         name=name, marker={"symbol": symbol, "size": 10},
                                         text=ae.loc[mask, "event"], hovertemplate="%{text}<br>day %{x}<extra></extra>"))
    cyc = t[t["category"] == "Treatment"]
    if len(cyc):
        fig.add_trace(go.Scatter(x=cyc["day"].astype(float), y=[-5] * len(cyc), mode="markers", name="Treatment cycle",
                                 marker={"symbol": "line-ns-open", "size": 10}, text=cyc["event"],
                                 hovertemplate="%{text}<extra></extra>"))
    end = t[t["category"] == "Vital status"]
    for r in end.itertuples(index=False):
        if pd.notna(r.day):
            fig.add_vline(x=float(r.day), line_dash="dash", annotation_text=r.event)
    fig.update_layout(title={"text": f"Participant {profile.subject}" + (f"<br><sup>{subtitle}</sup>" if subtitle else "")},
                      xaxis_title="Study day (0 = randomisation)", yaxis_title="ALSFRS-R score (points)",
                      yaxis={"range": [-7, 50]}, height=420)
    return apply_theme(fig)
