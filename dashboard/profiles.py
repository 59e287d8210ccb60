"""The Participant page's cached profiles (``analysis.outputs.profile``): one per snapshot hash,
view kind, role class, view arguments and subject, like every other cached output
(``dashboard.caches``). A blinded profile is built from a blinded view, so it never holds the arm
or an arm-revealing value; the cache key keeps blinded and unblinded profiles apart."""
from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from dashboard import caches, context
from dashboard.snapshots import get_view


def _unfiltered(ctx: context.Context) -> context.Context:
    return dataclasses.replace(ctx, filters=context.Filters())


@st.cache_data(max_entries=256, show_spinner=False)
def _cached_profile(subject: str, view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                    view_args: tuple):
    from analysis.outputs.profile import build_profile
    ctx = caches._context_from(view_kind, role_class, snapshot_hash, filters_key, view_args)
    return build_profile(get_view(ctx), subject)


def get_profile(ctx: context.Context, subject: str):
    """The profile of ``subject`` for the context's view (the sidebar filter does not apply: one
    participant is chosen by name)."""
    return _cached_profile(subject=subject, **caches._key(_unfiltered(ctx)))


@st.cache_data(max_entries=64, show_spinner=False)
def _cached_subjects(view_kind: str, role_class: str, snapshot_hash: str, filters_key: tuple,
                     view_args: tuple) -> pd.DataFrame:
    ctx = caches._context_from(view_kind, role_class, snapshot_hash, filters_key, view_args)
    view = get_view(ctx)
    site = view.study.col("site")
    adsl = view.table("adsl", columns=["USUBJID", site])
    return adsl.rename(columns={site: "site"}).sort_values("USUBJID").reset_index(drop=True)


def subjects(ctx: context.Context) -> pd.DataFrame:
    """USUBJID and site of every randomised participant of the context's filter (the filter's
    minimum cell size is checked by ``page_setup`` before this runs)."""
    return _cached_subjects(**caches._key(ctx))
