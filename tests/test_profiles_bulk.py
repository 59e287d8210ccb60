"""The closed report's appendix builds the profiles of every participant who died at once
(issue 15, render time): ``build_profiles`` reads each dataset once for all of them and must
give exactly the profiles ``build_profile`` gives one by one (the dashboard and
``mirocals profile``), in a blinded and an unblinded view."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.outputs.profile import SubjectNotFound, build_profile, build_profiles, profile_markdown
from data_access.views import open_view


def _same(a, b):
    assert a.subject == b.subject and a.summary == b.summary and a.notes == b.notes
    pd.testing.assert_frame_equal(a.timeline, b.timeline)
    pd.testing.assert_frame_equal(a.scores, b.scores)


@pytest.mark.parametrize("role", ["steering", "dsmb"])
def test_profiles_built_together_equal_the_profiles_built_one_by_one(demo_snapshot, role):
    extra = {"allocation_dir": demo_snapshot / "allocation"} if role == "dsmb" else {}
    view = open_view(demo_snapshot, role, **extra)
    adsl = view.table("adsl")
    died = adsl[adsl["DTHFL"] == "Y"].sort_values(["DTHDT", "USUBJID"])["USUBJID"].tolist()
    alive = adsl[adsl["DTHFL"] != "Y"]["USUBJID"].tolist()
    subjects = died[:12] + alive[:4] + died[:1]          # deaths, survivors, and one asked for twice
    together = build_profiles(view, subjects)
    assert [p.subject for p in together] == subjects
    for subject, p in zip(subjects, together):
        one = build_profile(view, subject)
        _same(p, one)
        assert profile_markdown(p, view, compact=True) == profile_markdown(one, view, compact=True)
        assert ("Arm" in p.summary) == (role == "dsmb")
    assert together[0] is not together[-1]            # a repeated subject is a copy, not the same object
    assert (together[0].timeline["category"] == "Vital status").any()


def test_every_dataset_is_read_once_for_all_the_profiles(demo_snapshot):
    view = open_view(demo_snapshot, "dsmb", allocation_dir=demo_snapshot / "allocation")
    ids = view.table("adsl", columns=["USUBJID"])["USUBJID"].tolist()[:30]
    queries = []
    real = view._query
    view._query = lambda q: queries.append(q) or real(q)
    build_profiles(view, ids)
    reads = [q for q in queries if "USUBJID IN (" in q]
    names = [q.split(" FROM ")[1].split()[0] for q in reads]
    assert len(names) == len(set(names)) and {'"adsl"', '"adae"', '"adlb"', '"adex"'} <= set(names), names


def test_an_unknown_subject_among_many_is_named(demo_snapshot):
    view = open_view(demo_snapshot, "steering")
    ids = view.table("adsl", columns=["USUBJID"])["USUBJID"].tolist()[:3]
    with pytest.raises(SubjectNotFound, match="NOT-A-SUBJECT"):
        build_profiles(view, [*ids, "NOT-A-SUBJECT"])
    assert build_profiles(view, []) == []


def test_many_participants_read_whole_datasets_and_give_the_same_profiles(demo_snapshot, monkeypatch):
    # past _IN_LIST_MAX participants (a large trial's deaths) each dataset is read whole and
    # filtered here instead of through an IN list: the same profiles
    import analysis.outputs.profile as profile
    view = open_view(demo_snapshot, "steering")
    ids = view.table("adsl", columns=["USUBJID"])["USUBJID"].tolist()[5:15]
    listed = build_profiles(view, ids)
    monkeypatch.setattr(profile, "_IN_LIST_MAX", 3)
    for a, b in zip(listed, build_profiles(view, ids)):
        _same(a, b)
