"""One participant's whole course (issue 14): the patient profile a DSMB member or a medical
monitor opens to judge a death or a serious adverse event. Defined once here; the dashboard's
Participant page, ``mirocals profile SUBJECT`` and the closed report's appendix of profiles of
deaths render it unchanged.

Everything is read through the view, only the rows of the participants asked for (DuckDB filters
them; ``build_profiles`` reads each dataset once for many participants), so a blinded view's
profile holds what the view holds and nothing more: no arm (the view has no allocation), no Treg or
eosinophil value and no arm-revealing adverse-event term (the view withholds them). An unblinded view's profile shows the arm in its summary and every laboratory parameter.

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
    return build_profiles(view, [subject])[0]


# above this many participants a dataset is read whole and filtered here, not through an IN list
_IN_LIST_MAX = 500


def build_profiles(view, subjects) -> list[Profile]:
    """The profiles of ``subjects`` (USUBJIDs) in ``view``, in the order given: the same profiles
    as :func:`build_profile` one by one, but each dataset is read once for all of them and the
    timelines are built and sorted together (the closed report's appendix of deaths). Raises
    :class:`SubjectNotFound` naming the first subject that is malformed or not in ADSL."""
    subjects = [str(x).strip() for x in subjects]
    for subject in subjects:
        if not _SUBJECT.match(subject):
            raise SubjectNotFound(f"{subject!r} is not a subject identifier (letters, digits, - . / and spaces)")
    if not subjects:
        return []
    wanted = list(dict.fromkeys(subjects))
    adsl = _read(view, "adsl", wanted, keep_arm=True)
    rows = {}
    for i, u in enumerate(adsl["USUBJID"]):
        rows.setdefault(u, i)
    for subject in wanted:
        if subject not in rows:
            raise SubjectNotFound(f"subject {subject} is not in this snapshot (ADSL, cut-off {view.cut_date})")
    ev = _Events()
    summaries, rands, notes = {}, {}, {subject: [] for subject in wanted}
    site_names = {x.id: x.name for x in view.study.sites}
    group_col = getattr(view, "group_col", None)
    for subject in wanted:
        s = adsl.iloc[rows[subject]]
        summaries[subject] = summary = _summary(view, s, subject, site_names, group_col, adsl.columns)
        rands[subject] = rand = _date(s.get("RANDDT"))
        ev.add(subject, s.get("SCRNDT"), "Screening", "Screened")
        ev.add(subject, rand, "Randomisation", "Randomised", "; ".join(x for x in (
            f"stratum {_text(s.get('STRATUM'))}" if _text(s.get("STRATUM")) else "",
            f"arm {summary['Arm']}" if "Arm" in summary else "") if x))

    for r in _records(_visit_rows(view, wanted)):
        status = str(r["status"]).replace("_", " ")
        if status in ("not due", "not expected"):
            continue
        ev.add(r["USUBJID"], r["assessment_date"] if status == "done" else r["target_date"], "Visit",
               f"{r['AVISIT']}: {status}",
               "" if status == "done" else f"target {pd.Timestamp(r['target_date']):%Y-%m-%d}, window to "
                                           f"{pd.Timestamp(r['window_end']):%Y-%m-%d}")

    score_cols = ["AVISIT", "ADT", "ADY", "PARAMCD", "PARAM", "AVAL"]
    scores = {}
    func = view.study.functional_dataset
    q = _read(view, func, wanted)
    if q is not None and len(q):
        total = view.study.functional_total
        domains = list(view.study.raw.get("endpoints", {}).get("functional_domains", []))
        sc = q[q["PARAMCD"].isin([total, *domains])]
        scores = {u: sc.iloc[idx][score_cols].reset_index(drop=True)
                  for u, idx in sc.groupby("USUBJID", sort=False).indices.items()}
        # one line per visit and date (groupby(["AVISIT", "ADT"], sort=False) per participant:
        # first-seen order, rows with no visit or date left out), the total first, then the domains
        visits: dict[tuple, list] = {}
        for u, visit, adt, code, value in zip(sc["USUBJID"], sc["AVISIT"], sc["ADT"], sc["PARAMCD"], sc["AVAL"]):
            if pd.isna(visit) or pd.isna(adt):
                continue
            visits.setdefault((u, visit, adt), []).append((code, value))
        for (u, visit, adt), x in visits.items():
            tot = [v for code, v in x if code == total]
            parts = [f"{_domain_name(code)} {format_number(v, 0)}" for code, v in x if code != total and pd.notna(v)]
            ev.add(u, adt, "ALSFRS-R", f"Total {format_number(tot[0], 0) if tot else '—'} of 48",
                   f"{visit}" + (f"; {', '.join(parts)}" if parts else ""))
    for subject in wanted:
        if subject not in scores:
            notes[subject].append(f"no functional score ({func}) for this participant")

    endpoints = view.study.raw.get("endpoints", {})
    for name, category in ((endpoints.get("respiratory_dataset", "adresp"), "Respiratory function"),
                           (endpoints.get("lab_dataset", "adlb"), "Laboratory")):
        d = _read(view, name, wanted)
        if d is None:
            continue
        for r in _records(d.sort_values(["ADT", "PARAMCD"], kind="stable")):
            ev.add(r["USUBJID"], r["ADT"], category,
                   f"{r['PARAM'] if 'PARAM' in r else r['PARAMCD']}: {_value(r['AVAL'], r.get('AVALU'))}",
                   _text(r.get("AVISIT", "")))

    ex = _read(view, "adex", wanted)
    if ex is not None:
        from analysis.outputs.care import treatment_settings
        per = treatment_settings(view.study)["doses_per_cycle"]
        for r in _records(ex.sort_values("CYCLE", kind="stable")):
            end = "" if pd.isna(r.get("AENDT", pd.NaT)) else f"to {pd.Timestamp(r['AENDT']):%Y-%m-%d}"
            ev.add(r["USUBJID"], r["ASTDT"], "Treatment", f"Cycle {int(r['CYCLE'])}: {int(r['NDOSES'])} of {per} doses",
                   "; ".join(b for b in (end, _words(r.get("EXADJ"))) if b))

    ae = _read(view, view.study.ae_dataset, wanted)
    if ae is not None:
        for r in _records(ae.sort_values("ASTDT", kind="stable")):
            serious = _text(r.get("AESER", "")) == "Y"
            bits = [_words(r.get("AESEV", "")), "serious" if serious else "", _words(r.get("AEREL", "")),
                    _words(r.get("AEOUT", "")),
                    "" if pd.isna(r.get("AENDT", pd.NaT)) else f"ended {pd.Timestamp(r['AENDT']):%Y-%m-%d}"]
            ev.add(r["USUBJID"], r["ASTDT"], "Adverse event", ("SAE: " if serious else "") + _text(r["AEDECOD"]),
                   "; ".join(b for b in bits if b))

    cm = _read(view, "adcm", wanted)
    if cm is not None:
        for r in _records(cm):
            ev.add(r["USUBJID"], r.get("ASTDT", pd.NaT), "Concomitant care",
                   _text(r.get("CMDECOD", "")) or _text(r.get("CMTRT", "")),
                   "; ".join(b for b in (_words(r.get("CMCAT", "")), _text(r.get("CMCLAS", ""))) if b))
    dv = _read(view, "addv", wanted)
    if dv is not None:
        for r in _records(dv):
            important = _text(r["DVIMPFL"] if "DVIMPFL" in r else r.get("DVSCAT", ""))
            ev.add(r["USUBJID"], r.get("ASTDT", pd.NaT), "Protocol deviation", _text(r.get("DVTERM", "")),
                   "; ".join(b for b in (_words(r.get("DVCAT", "")),
                                         "important" if important in ("Y", "IMPORTANT") else
                                         "minor" if important in ("N", "MINOR", "NON-IMPORTANT") else "") if b))
    for subject in wanted:
        if cm is None:
            notes[subject].append("no concomitant-care dataset (adcm) in this snapshot")
        if dv is None:
            notes[subject].append("no protocol-deviation dataset (addv) in this snapshot")

    for subject in wanted:
        s = adsl.iloc[rows[subject]]
        if _text(s.get("DTHFL")) == "Y" or pd.notna(_date(s.get("DTHDT"))):
            ev.add(subject, s.get("DTHDT"), "Vital status", "Died")
        elif pd.notna(_date(s.get("LSTALVDT"))):
            ev.add(subject, s.get("LSTALVDT"), "Vital status", "Last known alive")
        if pd.notna(_date(s.get("EOSDT"))):
            ev.add(subject, s.get("EOSDT"), "End of study", _words(s.get("EOSSTT")), _words(s.get("DCSREAS")))

    timelines = ev.timelines(rands)
    empty_scores = pd.DataFrame(columns=score_cols)
    profiles = {u: Profile(u, summaries[u], timelines[u], scores.get(u, empty_scores).copy(), notes[u])
                for u in wanted}
    seen: set = set()
    return [_copy(profiles[u]) if u in seen or seen.add(u) else profiles[u] for u in subjects]


def _copy(p: Profile) -> Profile:
    return Profile(p.subject, dict(p.summary), p.timeline.copy(), p.scores.copy(), list(p.notes))


class _Events:
    """Timeline events of many participants, in the order they are added per participant (the
    order that breaks ties of date and category)."""

    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, subject, date, category, event, detail=""):
        self.rows.append((subject, _date(date), category, event, detail))

    def timelines(self, rands: dict) -> dict[str, pd.DataFrame]:
        """Per participant: date, study day (from randomisation), category, event, detail, sorted by
        date (undated last), the category's place in CATEGORY_ORDER, then the order added."""
        ev = pd.DataFrame(self.rows, columns=["USUBJID", "date", "category", "event", "detail"])
        rand = pd.to_datetime(ev["USUBJID"].map(rands))
        ev.insert(2, "day", (ev["date"] - rand).dt.days.astype("Int64"))
        order = {c: i for i, c in enumerate(CATEGORY_ORDER)}
        ev = (ev.assign(_o=ev["category"].map(order), _n=np.arange(len(ev)))
              .sort_values(["date", "_o", "_n"], na_position="last", kind="mergesort"))
        cols = list(TIMELINE_COLUMNS)
        return {u: ev.iloc[idx][cols].reset_index(drop=True)
                for u, idx in ev.groupby("USUBJID", sort=False).indices.items()}


def _read(view, name: str, subjects: list, keep_arm: bool = False) -> pd.DataFrame | None:
    """The rows of dataset ``name`` for ``subjects``, read once (None when the snapshot has no such
    dataset); arm columns of an unblinded view are left out (the summary states the arm once)
    unless ``keep_arm``."""
    if name not in view.datasets:
        return None
    if len(subjects) <= _IN_LIST_MAX:
        literals = ", ".join("'" + s.replace("'", "''") + "'" for s in subjects)
        df = view.table(name, where=f"USUBJID = {literals}" if len(subjects) == 1 else f"USUBJID IN ({literals})")
    else:
        df = view.table(name)
        df = df[df["USUBJID"].isin(subjects)].reset_index(drop=True)
    if keep_arm:
        return df
    arm_cols = {c for c in (getattr(view, "group_col", None), view.study.col("arm"), view.study.col("armcd")) if c}
    return df.drop(columns=[c for c in df.columns if c in arm_cols or c in ("ARM", "ARMCD", "MASKCD")])


def _records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict("records")


def _summary(view, s, subject, site_names, group_col, columns) -> dict:
    site = _text(s.get(view.study.col("site")))
    summary = {"Subject": subject, "Site": f"{site} {site_names[site]}" if site in site_names else site}
    if group_col and group_col in columns and not view.blinded:
        summary["Arm"] = _text(s[group_col])
    for label, col in (("Country", "COUNTRY"), ("Site of onset", "ONSET"), ("Sex", "SEX"), ("Age, years", "AGE"),
                       ("Randomised", "RANDDT"), ("Baseline ALSFRS-R total", "BLALSFRS"),
                       ("Slow vital capacity at baseline, % predicted", "SVCPCT"), ("Status at the cut-off", "EOSSTT")):
        if col in columns and _text(s[col]):
            v = s[col]
            summary[label] = (f"{_date(v):%Y-%m-%d}" if col.endswith("DT") else
                              {"M": "Male", "F": "Female"}.get(v, _words(v)) if isinstance(v, str)
                              else format_number(float(v), 0))
    return summary


def _domain_name(code: str) -> str:
    return {"BULBAR": "bulbar", "FINEMOT": "fine motor", "GROSSMOT": "gross motor", "RESP": "respiratory"}.get(code, code)


def _visit_rows(view, subjects: list) -> pd.DataFrame:
    """The participants' scheduled visits and their status at the cut (the ``visit-status``
    output, derived once per view); empty when the study has no functional dataset."""
    from analysis.outputs import TableUnavailable, build_table
    try:
        status = build_table("visit-status", view)
    except (TableUnavailable, KeyError):
        return pd.DataFrame(columns=["USUBJID", "AVISIT", "status", "target_date", "window_end", "assessment_date"])
    return status[status["USUBJID"].isin(subjects)]


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
