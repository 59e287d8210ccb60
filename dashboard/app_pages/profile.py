"""Participant profile: one participant's whole course on one timeline (``analysis.outputs.profile``,
the same as ``mirocals profile SUBJECT`` and the closed report's appendix of profiles of deaths).

Pick a participant by subject id (the list follows the sidebar's site filter), or arrive with
``?subject=ID`` from a listing. Blinded roles see the blinded view's profile: no arm, no Treg or
eosinophil value, no arm-revealing adverse-event term. Unblinded roles see the arm and every
laboratory parameter; each profile they open is written to the audit log."""
import streamlit as st

from analysis.outputs.profile import SubjectNotFound, display_timeline, fig_profile
from analysis.outputs.base import figure_subtitle

from dashboard import audit, profiles, snapshots, widgets

PAGE = "profile"
ctx = widgets.page_setup(PAGE, "Participant profile")

ids = profiles.subjects(ctx)
if ids.empty:
    st.info("No participant is randomised in this snapshot" + (" for the chosen sites." if ctx.filters.active else "."))
    st.stop()
names = {x.id: x.name for x in snapshots.load_study_config(ctx.snapshot.clinical_dir).sites}
listing = ids.assign(site_name=ids["site"].map(names))
options = ids["USUBJID"].tolist()
pick = st.session_state.pop("profile_pick", None)          # a row clicked in the list (previous run)
rows = ((pick or {}).get("selection") or {}).get("rows") or []
if rows and rows[0] < len(options):
    st.session_state["profile_subject"] = options[rows[0]]
wanted = st.query_params.get("subject")                   # a link from a listing: ?subject=ID
if wanted in options and wanted != st.session_state.get("_profile_link"):
    st.session_state["profile_subject"] = wanted           # a new link wins over the last choice
st.session_state["_profile_link"] = wanted
subject = st.selectbox("Participant (type to search by subject id)", options, index=None, key="profile_subject",
                       placeholder="Choose a participant")
if subject is None:               # the list to pick from: click a row to open its profile
    shown = listing.rename(columns={"USUBJID": "Subject", "site": "Site", "site_name": "Site name"})
    st.markdown(f"**Participants** ({len(listing)}" + (" at the chosen sites)" if ctx.filters.active else ")"))
    st.dataframe(shown, hide_index=True, width="stretch", height=widgets.natural_height(len(shown)),
                 on_select="rerun", selection_mode="single-row", key="profile_pick")
    st.caption("Choose a participant above or click a row.")
    widgets._csv_download(ctx, PAGE, lambda: listing, "participants")
    st.stop()
if st.query_params.get("subject") != subject:
    st.query_params["subject"] = subject

try:
    profile = profiles.get_profile(ctx, subject)
except SubjectNotFound as exc:
    st.warning(str(exc))
    st.stop()
if ctx.unblinded:                 # which participant an unblinded reader opened
    seen = (ctx.snapshot.snapshot_hash, subject, ctx.mask_arms)
    if st.session_state.get("_audit_profile") != seen:
        st.session_state["_audit_profile"] = seen
        audit.log_ctx(ctx, PAGE, "view", detail=f"participant {subject}")

cols = st.columns(4)
for i, (label, value) in enumerate((k, v) for k, v in profile.summary.items() if k != "Subject"):
    cols[i % 4].markdown(f"**{label}**  \n{value}")

view = snapshots.get_view(profiles._unfiltered(ctx))
fig = fig_profile(profile, view, subtitle=figure_subtitle(view))
widgets.show_figure(ctx, PAGE, fig, f"profile {subject}")
shown = display_timeline(profile)
categories = st.multiselect("Show", sorted(set(profile.timeline["category"]), key=list(profile.timeline["category"]).index),
                            key="profile_categories", placeholder="Every category")
if categories:
    keep = profile.timeline["category"].isin(categories).to_numpy()
    shown, machine = shown[keep], profile.timeline[keep]
else:
    machine = profile.timeline
widgets.show_table(ctx, PAGE, machine, f"profile {subject}", shown=shown,
                   notes=[f"Data cut-off {ctx.snapshot.cut_date}; study day 0 = randomisation."]
                   + ([f"Not shown: {'; '.join(profile.notes)}."] if profile.notes else []))
