"""The patient profile (issue 14): one participant's whole course, blinded and unblinded, through
the view and through ``mirocals profile``.

Blinding attack: a blinded insider opens the profile of every participant of the demo and looks
for the arm, a Treg or eosinophil value, or an arm-revealing adverse-event term (injection-site
reaction, influenza-like illness) in the summary, the timeline, its CSV and the Markdown."""
from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest

from analysis.outputs.profile import SubjectNotFound, build_profile, profile_markdown
from data_access.views import open_view
from tests.conftest import ARM_TOKENS

REVEALING = re.compile(r"treg|regulatory t|eosinophil|injection.?site|influenza.?like|flu.?like|IL2LD|PBO", re.I)


def test_blinded_profiles_of_every_participant_hold_no_arm_and_no_revealing_value(blinded_only_snapshot):
    view = open_view(blinded_only_snapshot, "steering")
    ids = view.table("adsl", columns=["USUBJID"])["USUBJID"].tolist()
    assert len(ids) > 100
    for subject in ids:
        p = build_profile(view, subject)
        text = " ".join([profile_markdown(p, view), p.timeline.to_csv(index=False), repr(p.summary),
                         p.scores.to_csv(index=False)])
        assert "Arm" not in p.summary
        assert not any(tok in text for tok in ARM_TOKENS), subject
        assert not REVEALING.search(text), (subject, REVEALING.search(text).group(0))


def test_unblinded_profile_shows_the_arm_and_every_lab_parameter(demo_snapshot):
    view = open_view(demo_snapshot, "dsmb")
    alloc = pd.read_parquet(demo_snapshot / "allocation" / "allocation.parquet")
    lab = view.table("adlb", columns=["USUBJID", "PARAMCD"])
    subject = lab[lab["PARAMCD"] == "TREG"]["USUBJID"].value_counts().index[0]   # the most Treg records
    p = build_profile(view, subject)
    assert p.summary["Arm"] == alloc.set_index("USUBJID").loc[subject, "ARM"]
    n_treg = int(((lab["USUBJID"] == subject) & (lab["PARAMCD"] == "TREG")).sum())
    assert n_treg > 3
    assert p.timeline["event"].str.startswith("Regulatory T cells (count)").sum() == n_treg
    blinded = build_profile(open_view(demo_snapshot, "steering"), subject)
    assert not blinded.timeline["event"].str.contains("Regulatory T", regex=False).any()
    # the blinded profile is the unblinded one without the withheld rows, not a different course
    withheld = p.timeline["event"].str.contains(REVEALING) | p.timeline["detail"].str.contains("arm ", regex=False)
    assert len(blinded.timeline) == len(p.timeline) - int(p.timeline["event"].str.contains(REVEALING).sum())
    assert withheld.any()


def test_timeline_counts_match_the_datasets(demo_snapshot):
    view = open_view(demo_snapshot, "steering")
    adsl = view.table("adsl")
    subject = adsl.loc[adsl["DTHFL"] == "Y", "USUBJID"].iloc[0]          # someone who died
    p = build_profile(view, subject)
    t = p.timeline
    ex = view.table("adex", where=f"USUBJID = '{subject}'")
    ae = view.table("adae", where=f"USUBJID = '{subject}'")
    q = view.table("adqs", where=f"USUBJID = '{subject}' AND PARAMCD = 'ALSFRST'")
    assert (t["category"] == "Treatment").sum() == len(ex) > 0
    assert (t["category"] == "Adverse event").sum() == len(ae)
    assert (t["category"] == "ALSFRS-R").sum() == q["ADT"].nunique()
    assert (t["event"].str.startswith("SAE: ")).sum() == int((ae["AESER"] == "Y").sum())
    death = t[t["event"] == "Died"]
    dthdt = pd.Timestamp(adsl.set_index("USUBJID").loc[subject, "DTHDT"])
    assert len(death) == 1 and death["date"].iloc[0] == dthdt
    assert death["day"].iloc[0] == (dthdt - pd.Timestamp(adsl.set_index("USUBJID").loc[subject, "RANDDT"])).days
    assert t["date"].dropna().is_monotonic_increasing
    assert not t["event"].str.contains("not due").any()          # only visits due by the cut
    assert sorted(p.scores["PARAMCD"].unique()) == sorted(["ALSFRST", "BULBAR", "FINEMOT", "GROSSMOT", "RESP"])


@pytest.mark.parametrize("subject", ["NOT-A-SUBJECT", "x' OR '1'='1", ""])
def test_an_unknown_or_malformed_subject_is_named_and_refused(blinded_only_snapshot, subject):
    view = open_view(blinded_only_snapshot, "steering")
    with pytest.raises(SubjectNotFound) as exc:
        build_profile(view, subject)
    assert subject.strip() in str(exc.value)


def test_profile_on_the_command_line(blinded_only_snapshot, demo_snapshot, tmp_path, monkeypatch):
    log = tmp_path / "audit.log"
    monkeypatch.setenv("MIROCALS_AUDIT_LOG", str(log))
    view = open_view(blinded_only_snapshot, "steering")
    subject = view.table("adsl", columns=["USUBJID"])["USUBJID"].iloc[0]

    def run(*args):
        return subprocess.run([sys.executable, "-m", "mirocals", "profile", *args], capture_output=True, text=True)
    md = run(subject, "--data", str(blinded_only_snapshot))
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith(f"### Participant {subject}") and "| Date | Study day |" in md.stdout
    assert not any(tok in md.stdout for tok in ARM_TOKENS) and not REVEALING.search(md.stdout)
    csv = run(subject, "--data", str(blinded_only_snapshot), "--format", "csv")
    assert csv.stdout.splitlines()[0] == "date,day,category,event,detail"
    # the CSV is the profile's own timeline
    assert len(csv.stdout.splitlines()) == len(build_profile(view, subject).timeline) + 1
    assert not log.exists()                                     # blinded: nothing audited
    missing = run("MIR-XX99-9999", "--data", str(blinded_only_snapshot))
    assert missing.returncode == 2 and "MIR-XX99-9999 is not in this snapshot" in missing.stderr
    unbl = run(subject, "--data", str(demo_snapshot / "clinical"), "--view", "unblinded",
               "--allocation", str(demo_snapshot / "allocation"))
    assert unbl.returncode == 0 and "- **Arm**: " in unbl.stdout
    assert '"action": "profile"' in log.read_text() and subject in log.read_text()


# --------------------------------------------------------------------------- the dashboard page
def _most_treg_subject(demo_snapshot) -> str:
    lab = pd.read_parquet(demo_snapshot / "clinical" / "adlb.parquet", columns=["USUBJID", "PARAMCD"])
    return lab[lab["PARAMCD"] == "TREG"]["USUBJID"].value_counts().index[0]


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_participant_page_blinded_and_unblinded(role, demo_snapshot, tmp_path, monkeypatch):
    from tests.test_dashboard_apptest import TREG_TOKENS, rendered_text, sign_in, visit
    log = tmp_path / "audit.log"
    for var, value in (("MIROCALS_DATA", demo_snapshot), ("MIROCALS_ALLOCATION", demo_snapshot / "allocation"),
                       ("MIROCALS_AUDIT_LOG", log)):
        monkeypatch.setenv(var, str(value))
    subject = _most_treg_subject(demo_snapshot)
    at = sign_in(role)
    visit(at, "profile.py")
    assert len(at.dataframe[0].value) == 220                 # the list to pick from
    at.selectbox(key="profile_subject").set_value(subject)
    at.run()
    assert not at.exception, at.exception
    text = rendered_text(at)
    timeline = at.dataframe[0].value
    assert (timeline["Category"] == "Treatment").sum() > 5 and "ALSFRS-R" in set(timeline["Category"])
    assert at.get("plotly_chart")
    if role == "steering":
        for token in ARM_TOKENS + TREG_TOKENS:
            assert token not in text, token
        assert not log.exists() or "participant" not in log.read_text()
    else:
        assert "Regulatory T cells (count)" in text and "**Arm**" in text
        assert f"participant {subject}" in log.read_text()


def test_participant_page_opens_from_a_link_with_the_subject(demo_snapshot, monkeypatch):
    from tests.test_dashboard_apptest import sign_in, visit
    monkeypatch.setenv("MIROCALS_DATA", str(demo_snapshot))
    subject = _most_treg_subject(demo_snapshot)
    at = sign_in("investigator")
    at.query_params["subject"] = subject
    visit(at, "profile.py")
    assert at.selectbox(key="profile_subject").value == subject
    assert at.dataframe[0].value.columns.tolist() == ["Date", "Study day", "Category", "Event", "Details"]


def test_a_row_of_the_sae_listing_opens_that_participants_profile(demo_snapshot, monkeypatch):
    """A row clicked in a listing (here the SAE listing on Safety) opens the Participant page on
    that subject; the profile shows the SAE; back on Safety the listing is shown again (the row is
    no longer chosen, so the page does not bounce)."""
    from tests.test_dashboard_apptest import sign_in, visit
    monkeypatch.setenv("MIROCALS_DATA", str(demo_snapshot))
    at = sign_in("steering")
    visit(at, "safety.py")
    sae = build_sae_display(at)
    at.session_state["rows_sae"] = {"selection": {"rows": [2], "columns": [], "cells": []}}   # as a click does
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Participant profile"
    subject = sae["Subject"].iloc[2]
    assert at.query_params["subject"] == subject and at.selectbox(key="profile_subject").value == subject
    timeline = at.dataframe[0].value
    assert timeline["Event"].str.startswith("SAE: ").any()
    visit(at, "safety.py")
    assert at.title[0].value == "Safety"


def build_sae_display(at) -> pd.DataFrame:
    """The SAE listing as the Safety page shows it (the table with a Subject and a Term column)."""
    for d in at.dataframe:
        v = d.value
        if "Subject" in v.columns and any("term" in c.lower() for c in v.columns):
            return v
    raise AssertionError("no SAE listing on the Safety page")


def test_a_censoring_mark_of_the_km_figure_opens_that_participants_profile(demo_snapshot, monkeypatch):
    """Each censoring tick of the (pooled, blinded) Kaplan-Meier names the participants censored at
    that day; a click on it opens the first one's profile, whose last contact is that day."""
    import json
    from tests.test_dashboard_apptest import sign_in, visit
    monkeypatch.setenv("MIROCALS_DATA", str(demo_snapshot))
    at = sign_in("steering")
    visit(at, "survival.py")
    km = next(c for c in at.get("plotly_chart") if any(t.get("meta") == "subjects"
                                                       for t in json.loads(c.proto.spec)["data"]))
    ticks = next(t for t in json.loads(km.proto.spec)["data"] if t.get("meta") == "subjects")
    tte = pd.read_parquet(demo_snapshot / "clinical" / "adtte.parquet")
    os_ = tte[(tte["PARAMCD"] == "OS") & (tte["CNSR"] == 1)]
    assert sum(len(c.split(", ")) for c in ticks["customdata"]) == len(os_)      # every censored participant
    import base64
    import numpy as np
    xs = ticks["x"]
    xs = np.frombuffer(base64.b64decode(xs["bdata"]), dtype=xs["dtype"]) if isinstance(xs, dict) else np.asarray(xs)
    day, names = float(xs[0]), ticks["customdata"][0]
    first = names.split(", ")[0]
    assert os_.set_index("USUBJID").loc[first, "AVAL"] == day
    at.session_state["fig_kaplan-meier"] = {"selection": {"points": [{"customdata": names, "x": day}],
                                                          "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Participant profile" and at.query_params["subject"] == first
