"""Reusable UI pieces: sign-in form, sidebar, page guard and header, tables and figures with
downloads. Each ``show_*`` function owns the session-state keys it uses."""
from __future__ import annotations

import re
from typing import Callable

import pandas as pd
import streamlit as st

from dashboard import audit, auth, caches, cell_size, context, figure_export, snapshots

PAGE_ROWS = 500           # rows of a table sent to the browser at a time
# fixed to the top of the window (it stays on screen while the page scrolls), centred so that it
# leaves Streamlit's own header buttons free
BANNER = ("<div role='alert' data-testid='unblinded-banner' style='position:fixed;top:0.45rem;left:50%;"
          "transform:translateX(-50%);z-index:1000001;background:#b00020;color:#fff;padding:0.35rem 1.2rem;"
          "border-radius:4px;font-weight:700;letter-spacing:0.04em;text-align:center;"
          "box-shadow:0 1px 4px rgba(0,0,0,0.35)'>UNBLINDED - CONFIDENTIAL</div>")
TAB_TITLE = "MIROCALS monitoring"
UNBLINDED_TAB_TITLE = "UNBLINDED · MIROCALS monitoring"


# --------------------------------------------------------------------------- sign-in
def _client_address() -> str:
    """The client's address for sign-in throttling: the peer Streamlit sees, or, behind a
    reverse proxy that sets it (env ``MIROCALS_TRUST_PROXY=1``), the last ``X-Forwarded-For``
    entry (the one the proxy appended)."""
    import os
    try:
        forwarded = st.context.headers.get("X-Forwarded-For") or ""
    except Exception:
        forwarded = ""
    if os.environ.get("MIROCALS_TRUST_PROXY", "").lower() in ("1", "true", "yes"):
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()
    try:
        address = st.context.ip_address
    except Exception:
        address = None
    # uvicorn (under Streamlit) replaces a loopback peer's address with its X-Forwarded-For
    # (FORWARDED_ALLOW_IPS defaults to 127.0.0.1): without MIROCALS_TRUST_PROXY that header is the
    # client's own claim, so an address taken from it counts as the loopback peer it came from
    if address and forwarded and address in {a.strip() for a in forwarded.split(",")}:
        address = None
    # Streamlit reports localhost as None: one shared bucket, so the per-address throttle always
    # applies (behind a proxy on the same host, set MIROCALS_TRUST_PROXY=1 to tell clients apart)
    return address or "local"


def _instance_notice() -> None:
    from dashboard.instance import InstanceError, instance_kind
    try:
        kind = instance_kind()
    except InstanceError:
        return
    if kind == "demo":
        st.warning("**Demo instance.** This is one mixed demo instance with demo accounts (password "
                   "`demo-<role>`, for example `demo-dsmb`): blinded and unblinded roles sign in to the "
                   "same server. Production runs two instances: a blinded one (steering committee, "
                   "investigators, authors before database lock) with no allocation reachable, and an "
                   "unblinded one (DSMB, trial statisticians), each behind an authenticating reverse proxy.")
    elif kind == "blinded":
        st.caption("Blinded instance: steering committee, investigators and authors (before database "
                   "lock). DSMB members and statisticians use the unblinded instance.")
    else:
        st.caption("Unblinded instance: DSMB members and trial statisticians (and authors after "
                   "database lock). Everything shown here is logged.")


def _preload_charts() -> None:
    """A hidden, empty chart on the sign-in page: the browser fetches and compiles the charting
    library (plotly.js, loaded on a page's first chart) while the user types, instead of after the
    sign-in. In a fresh browser the first page's chart came 1.7 s after its header (2.3 s from
    the click; measured with /usr/bin/chromium at load 3). It holds no data: an empty figure."""
    import plotly.graph_objects as go
    st.markdown("<style>.st-key-chart_preload{display:none}</style>", unsafe_allow_html=True)
    with st.container(key="chart_preload"):
        st.plotly_chart(go.Figure(), config={"staticPlot": True, "displayModeBar": False}, key="chart_preload_fig")


def show_login() -> None:
    """The sign-in form (and the single sign-on button when ``[auth]`` is configured)."""
    st.title("MIROCALS monitoring")
    st.caption("Sign in to see trial data.")
    _instance_notice()
    message = st.session_state.pop("auth_message", None)
    if message:
        st.info(message)
    with st.form("login_form"):
        username = st.text_input("User name", key="login_user", max_chars=auth.NAME_MAX_CHARS)
        password = st.text_input("Password", type="password", key="login_password", max_chars=256)
        submitted = st.form_submit_button("Sign in")
    _preload_charts()
    credentials = auth.load_credentials()
    auth.dummy_hash(auth.credentials_cost(credentials))   # made once per process, before any attempt
    if submitted:
        address = _client_address()
        attempt = auth.attempt_sign_in(username, password, credentials, address=address)
        if attempt.account:
            account = attempt.account
            st.session_state.pop(auth.EXPIRED_KEY, None)
            st.session_state[auth.SESSION_KEY] = auth.make_session(account)
            audit.log_event(account["user"], account["role"], "sign-in", "sign-in")
            st.rerun()
        if attempt.worth_logging:
            action = "sign-in-refused" if attempt.outcome == "refused" else "sign-in-failed"
            detail = f"from {auth.safe_name(address)}" + (f"; refused {attempt.refused_count} in a row"
                                                          if attempt.outcome == "refused" else "")
            audit.log_event(attempt.user, "", "sign-in", action, detail=detail)
        st.error(attempt.message)
    if auth.oidc_configured():
        _show_oidc()


def _show_oidc() -> None:
    user = st.user
    if not user.get("is_logged_in"):
        st.button("Sign in with single sign-on", on_click=st.login, key="login_oidc")
        return
    # an identity kept from before (a session that expired or signed out, or an old cookie) is not
    # a sign-in: single sign-on must be done again
    if st.session_state.get(auth.EXPIRED_KEY) or not auth.oidc_identity_fresh(user.to_dict()):
        st.info("Your single sign-on has expired: sign in again.")
        st.button("Sign in again with single sign-on", on_click=st.logout, key="relogin_oidc")
        return
    email = user.get("email")
    role, reason, why = auth.oidc_role(user.to_dict(), auth.load_credentials())
    if role is None:
        if not st.session_state.get("_oidc_refused"):     # audited once per session, not per rerun
            st.session_state["_oidc_refused"] = True
            audit.log_event(auth.safe_name(email), "", "sign-in", "sign-in-failed", detail=f"oidc: {reason}")
        st.error(why)
        st.button("Sign out", on_click=st.logout, key="logout_oidc")
        return
    st.session_state[auth.SESSION_KEY] = auth.make_session(
        {"user": email, "role": role, "name": user.get("name") or email}, method="oidc")
    audit.log_event(auth.safe_name(email), role, "sign-in", "sign-in", detail="oidc")
    st.rerun()


def require_login() -> dict:
    """The signed-in user's session record; shows the sign-in form and stops otherwise. A single
    sign-on session that expired also ends its identity (``st.logout``), so coming back needs a
    new sign-in."""
    session = auth.get_session(st.session_state)
    if session is None:
        if st.session_state.get(auth.EXPIRED_KEY) == "oidc" and st.user.get("is_logged_in"):
            st.session_state[auth.EXPIRED_KEY] = "oidc-ended"
            st.logout()
        show_login()
        st.stop()
    return session


def _sign_out() -> None:
    session = st.session_state.get(auth.SESSION_KEY) or {}
    if session:
        audit.log_event(session["user"], session["role"], "sign-out", "sign-out")
    auth.sign_out(st.session_state)
    st.session_state["auth_message"] = "You have signed out."
    st.session_state[auth.EXPIRED_KEY] = session.get("method", "password")
    if session.get("method") == "oidc":
        st.logout()


# --------------------------------------------------------------------------- sidebar
def show_sidebar(session: dict) -> None:
    """Who is signed in, sign-out, the snapshot picker and the country/site/onset filters."""
    sb = st.sidebar
    if auth.is_unblinded_role(session["role"]):      # the sidebar says it too, and so does the browser tab
        st.set_page_config(page_title=UNBLINDED_TAB_TITLE)
        sb.markdown("<div style='background:#b00020;color:#fff;font-weight:700;text-align:center;"
                    "padding:0.2rem;border-radius:4px'>UNBLINDED</div>", unsafe_allow_html=True)
    sb.markdown(f"**{session['name']}**  \nrole: `{session['role']}`")
    sb.button("Sign out", on_click=_sign_out, key="sign_out")
    found = _snapshots()
    if not found:                      # nothing to filter: the page says why (no_snapshot_message)
        return
    snapshots.session_snapshot(found, st.session_state)      # the session keeps its snapshot (issue 16)
    if len(found) > 1:
        labels = [s.label for s in found]
        sb.selectbox("Snapshot", labels, key="flt_snapshot", on_change=snapshots.choose_snapshot,
                     args=(found, st.session_state))
    study = snapshots.load_study_config()
    countries = sorted({s.country for s in study.sites})
    sb.multiselect("Country", countries, key="flt_country", placeholder="All countries")
    chosen = st.session_state.get("flt_country") or countries
    sites = [s.id for s in study.sites if s.country in chosen]
    sb.multiselect("Site", sites, key="flt_site", placeholder="All sites",
                   format_func=lambda s: f"{s} {study.site_by_id[s].name}")
    onsets = list(study.strata_levels.get("ONSET", ()))      # an ALS stratum: other trials have none
    if onsets:
        sb.multiselect("Onset", onsets, key="flt_onset", placeholder="All onsets")
    if auth.is_unblinded_role(session["role"]) and any(s.allocation_dir for s in found):
        sb.toggle(f"Mask arms ({' / '.join(study.masked_labels)})", key="mask_arms")


def no_snapshot_message() -> str:
    """Why there is no data to show, in the app's words: the folder, the variable that set it, what
    a snapshot folder holds and what to do."""
    import os
    root, _allocation = snapshots.load_data_settings()
    source = ("set by the environment variable MIROCALS_DATA" if os.environ.get("MIROCALS_DATA")
              else "the built-in demo folder (MIROCALS_DATA is not set)")
    where = "does not exist" if not root.exists() else "holds no snapshot"
    return (f"No data to show: the data folder {root} ({source}) {where}. A snapshot is a folder holding "
            "clinical/manifest.json and the datasets, as `mirocals demo --out DIR` or `mirocals import` write "
            "them; MIROCALS_DATA may point at one snapshot or at a folder of snapshots (one sub-folder per data "
            "cut). Set MIROCALS_DATA to such a folder and restart the dashboard.")


def _snapshots() -> list[context.Snapshot]:
    root, allocation = snapshots.load_data_settings()
    return snapshots.discover_snapshots(str(root), allocation)


def _filters() -> context.Filters:
    study = snapshots.load_study_config()
    sites = tuple(sorted(st.session_state.get("flt_site") or ()))
    valid_sites = {s.id for s in study.sites if s.country in (st.session_state.get("flt_country") or
                                                              {x.country for x in study.sites})}
    return context.Filters(tuple(sorted(st.session_state.get("flt_country") or ())),
                         tuple(s for s in sites if s in valid_sites),
                         tuple(sorted(st.session_state.get("flt_onset") or ()))
                         if study.strata_levels.get("ONSET") else ())


# --------------------------------------------------------------------------- page guard
def page_setup(page: str, title: str, roles=auth.ROLES, unblinded_only: bool = False) -> context.Context:
    """Check the signed-in role BEFORE any data is read; then show the header.

    Stops the page with an access-denied message when the user is not signed in, the role is not
    in ``roles``, or the page needs an unblinded view the role does not have. Every page calls
    this first, because a page left out of the navigation can still be reached by its URL.
    """
    session = auth.get_session(st.session_state)
    if session is None:
        st.error("Access denied: please sign in.")
        st.stop()
    role = session["role"]
    if role not in roles or (unblinded_only and not auth.is_unblinded_role(role)):
        st.error(f"Access denied: the {title} page is not available to the {role} role.")
        st.stop()
    found = _snapshots()
    if not found:
        st.error(no_snapshot_message())
        st.stop()
    snapshot, newer = snapshots.session_snapshot(found, st.session_state)   # kept until the user chooses
    kind = snapshots.view_kind_for(role, snapshot)
    problem = snapshots.snapshot_problem(snapshot, kind == "unblinded")     # changed after publication
    if problem:
        st.error(problem)
        st.stop()
    if unblinded_only and kind != "unblinded":
        st.error("Access denied: this page needs the allocation. " + snapshots.allocation_missing_message(snapshot))
        st.stop()
    ctx = context.Context(session["user"], role, kind, snapshot, _filters(),
                        mask_arms=auth.is_unblinded_role(role) and bool(st.session_state.get("mask_arms")))
    show_header(ctx, title)
    snapshots.show_snapshot_notices(found, snapshot, newer)
    if not ctx.unblinded and auth.is_unblinded_role(role):   # the role may see arms, the deployment cannot
        st.warning(snapshots.allocation_missing_message(snapshot), icon=":material/lock:")
    if ctx.unblinded:
        _log_page_view(ctx, page)
    counts = caches.cell_counts(ctx) if ctx.filters.active and not ctx.unblinded else None
    if counts and counts["reason"]:        # minimum cell size: the page shows counts only
        show_counts_only(ctx, cell_size.SmallCellError(counts["reason"], counts["randomised"], counts["screened"]))
        st.stop()
    return ctx


_VIEWED = "_audit_viewed"


def _log_page_view(ctx: context.Context, page: str) -> None:
    """Log an unblinded page view once per view: when the page, snapshot, filters or arm masking
    differ from the previous run of this session (navigation, a new snapshot or filter), not on
    the reruns that a widget on the page triggers (a tab, a page of a table, a download)."""
    shown = (ctx.user, ctx.role, page, ctx.view_kind, ctx.snapshot.snapshot_hash, ctx.filters.key(), ctx.mask_arms)
    if st.session_state.get(_VIEWED) == shown:
        return
    st.session_state[_VIEWED] = shown
    detail = []
    if ctx.filters.active:
        detail.append("filtered: " + "; ".join(", ".join(v) for v in ctx.filters.key() if v))
    if ctx.mask_arms:
        detail.append("arms masked")
    audit.log_ctx(ctx, page, "view", detail=" · ".join(detail) or None)


def show_header(ctx: context.Context, title: str) -> None:
    if ctx.unblinded:
        st.markdown(BANNER, unsafe_allow_html=True)
    st.title(title)
    if ctx.unblinded:
        scope = "unblinded, by arm" + (" (arms masked)" if ctx.mask_arms else "")
    elif auth.is_unblinded_role(ctx.role):
        scope = "pooled over arms: **no allocation configured**"
    else:
        scope = "blinded, pooled over arms"
    flt = ctx.filters
    parts = [f"Data cut-off **{ctx.snapshot.cut_date}**", f"snapshot `{ctx.snapshot.snapshot_hash[:12]}`",
             scope]
    if flt.active:
        parts.append("filtered: " + ", ".join(", ".join(v) for v in flt.key() if v))
        counts = caches.cell_counts(ctx)
        parts.append(_selected_text(counts))
        st.sidebar.caption(_selected_text(counts).capitalize()
                           + (" · counts only" if counts["reason"] and not ctx.unblinded else ""))
    st.caption(" · ".join(parts))
    if ctx.role == "author" and not ctx.unblinded:
        st.caption("Authors see pooled results until database lock is recorded.")


# --------------------------------------------------------------------------- outputs
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _file_stem(ctx: context.Context, name: str) -> str:
    """``mirocals_<output>_<blinded|unblinded>[_<filter>]_<cut date>_<hash>``: the active filter
    ("uk", "fr08", "uk-bulbar") and the cut date travel with every download."""
    kind = "unblinded" if ctx.unblinded else "blinded"
    flt = ctx.filters.slug()
    return (f"mirocals_{_slug(name)}_{kind}{f'_{flt}' if flt else ''}_{ctx.snapshot.cut_date}_"
            f"{ctx.snapshot.snapshot_hash[:8]}")


def _log_download(ctx: context.Context, page: str, what: str) -> None:
    audit.log_ctx(ctx, page, "download", detail=what)


def _csv_download(ctx: context.Context, page: str, table: Callable[[], pd.DataFrame], name: str) -> None:
    """A CSV download of the whole frame ``table()``, built (and the frame fetched) only when the
    user clicks, for this session only (``dashboard.downloads``: no link, session checked and
    audited on every serve)."""
    from dashboard import downloads
    stem = _file_stem(ctx, name)
    downloads.offer(ctx, page, "Download CSV", f"{stem}.csv", "text/csv",
                    lambda: table().to_csv(index=False).encode(), key=f"dl_{_slug(name)}_csv")


def _page_of(df: pd.DataFrame, name: str, page_rows: int) -> pd.DataFrame:
    """The rows of the page picked in this table's page selector (state key ``pg_<name>``), shown
    with a row-range caption; the whole frame when it fits on one page."""
    n = len(df)
    if n <= page_rows:
        return df
    pages = -(-n // page_rows)
    key = f"pg_{_slug(name)}"
    if st.session_state.get(key, 1) > pages:      # the table shrank (filter, snapshot): clamp
        st.session_state[key] = pages
    left, right = st.columns([1, 5], vertical_alignment="bottom")
    current = int(left.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=key))
    start = (current - 1) * page_rows
    stop = min(start + page_rows, n)
    right.caption(f"Rows {start + 1:,}-{stop:,} of {n:,} (page {current:,} of {pages:,}); "
                  "the CSV download holds all rows.")
    return df.iloc[start:stop]


def show_table(ctx: context.Context, page: str, df: pd.DataFrame | None, name: str, caption: str | None = None,
               height: int | None = None, page_rows: int = PAGE_ROWS, shown: pd.DataFrame | None = None,
               notes=(), table: Callable[[], pd.DataFrame] | None = None, links_to_profile: bool = False) -> None:
    """A table with its CSV download. The screen shows ``shown`` (a display table made once and
    cached: an output's, or the display form of ``df``) or else the display form of ``df`` by the
    shared rules (human labels, formatted values; ``analysis.display_table.format_table``), made
    on each run for the page of rows shown; then the footnotes ``notes`` (one caption, a line
    each). The CSV download is the machine table, every row and column unchanged: ``df``, or
    ``table()`` fetched only when the download is clicked (``df`` None then). At most
    ``page_rows`` rows are sent to the browser at a time (a page selector and a row-range
    caption appear above longer tables)."""
    if caption:
        st.caption(caption)
    if shown is None:
        from analysis.display_table import format_table
        shown = format_table(_page_of(df, name, page_rows), None,
                             snapshots.load_study_config(ctx.snapshot.clinical_dir))
    else:
        shown = _page_of(shown, name, page_rows)
    if links_to_profile and PROFILE_COLUMN in shown.columns:
        _profile_links(shown, name, height)
    else:
        st.dataframe(shown, hide_index=True, width="stretch", height=height or natural_height(len(shown)))
    if notes:
        st.caption("  \n".join(notes))
    _csv_download(ctx, page, table or (lambda: df), name)



def keep_widget_state(ctx: context.Context, *keys: str) -> None:
    """Keep the values of the widgets ``keys`` while they are not drawn: a lazy tab draws only when
    open, and Streamlit forgets a widget's value on a run that does not draw it. Call at the top of
    the page, before the widgets: a value is copied aside on every run that has it and put back
    when the widget comes back (for the same snapshot: its options may differ on another)."""
    for key in keys:
        kept = f"_kept_{ctx.snapshot.snapshot_hash[:16]}_{key}"
        if key in st.session_state:
            st.session_state[kept] = st.session_state[key]
        elif kept in st.session_state:
            st.session_state[key] = st.session_state[kept]

PROFILE_COLUMN = "Subject"


def _open_profile_of_point(event, key: str) -> None:
    """A clicked chart point whose customdata names participants ("A, B"): the Participant page
    opens on the first of them."""
    points = list(((event or {}).get("selection") or {}).get("points") or []) if isinstance(event, dict) else \
        list(getattr(getattr(event, "selection", None), "points", None) or [])
    for point in points:
        data = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if isinstance(data, str) and data.strip():
            del st.session_state[key]
            st.switch_page("app_pages/profile.py", query_params={"subject": data.split(",")[0].strip()})


def _profile_links(shown: pd.DataFrame, name: str, height: int | None) -> None:
    """A listing whose rows open the participant's profile: click a row and the Participant page
    opens on that subject (``?subject=ID``)."""
    key = f"rows_{_slug(name)}"
    event = st.dataframe(shown, hide_index=True, width="stretch", height=height or natural_height(len(shown)),
                         on_select="rerun", selection_mode="single-row", key=key)
    rows = list(getattr(getattr(event, "selection", None), "rows", None) or [])
    st.caption("Click a row to open the participant's profile.")
    if rows and rows[0] < len(shown):
        subject = str(shown[PROFILE_COLUMN].iloc[rows[0]])
        del st.session_state[key]                  # back on this page, the row is no longer chosen
        st.switch_page("app_pages/profile.py", query_params={"subject": subject})


ROW_PX, HEADER_PX, SCREEN_ROWS = 35, 38, 30


def natural_height(rows: int) -> int:
    """A table's height in pixels: every row shown (no box of 10 rows to scroll inside) up to about
    a screen (``SCREEN_ROWS``), then it scrolls inside; longer tables are paginated (``PAGE_ROWS``)."""
    return HEADER_PX + ROW_PX * max(1, min(rows, SCREEN_ROWS)) + 2


def show_named_table(ctx: context.Context, page: str, name: str, caption: str | None = None, **kwargs) -> None:
    """Output ``name`` (``analysis.outputs``) for the context: its title, display table and
    footnotes (cells, method, filter, population and N, cut-off) as the reports and the CLI show
    them, with the machine table as the CSV download. ``caption``: page-specific words shown
    above it (after the title).

    A rerun looks up the cached display table only; the machine table is looked up when the CSV
    download is clicked (``caches.get_table``, which checks the cell size again)."""
    from analysis.outputs import OUTPUTS, TableUnavailable
    from data_access.view_base import DatasetUnreadable
    spec = OUTPUTS[name]
    try:
        shown, notes = caches.get_display(ctx, name, **kwargs)
    except TableUnavailable as exc:      # e.g. a trial delivered without a screening log
        st.info(str(exc))
        return
    except DatasetUnreadable as exc:     # a damaged file the output reads without declaring it
        show_unreadable(spec.title, exc)
        return
    except cell_size.SmallCellError as exc:  # a blinded filter below the minimum cell size
        show_small_cell_notice(exc)
        return
    except Exception as exc:                 # e.g. a model on a filter holding one arm only
        show_filtered_failure(ctx, spec.title, exc)
        return
    st.markdown(f"**{spec.title}**")
    show_table(ctx, page, None, name, caption, shown=shown, notes=notes,
               table=lambda: caches.get_table(ctx, name, **kwargs), links_to_profile=spec.listing)


def show_unreadable(what: str, exc: Exception) -> None:
    """The note shown in place of an output whose dataset file cannot be read
    (``data_access.view_base.DatasetUnreadable``: its message names the file, the cause and what
    to do); the rest of the page still works."""
    st.warning(f"{what}: not available. {exc}", icon=":material/broken_image:")


def show_figure(ctx: context.Context, page: str, fig, name: str) -> None:
    """A plotly figure with PNG and SVG downloads rendered on click (kaleido + chromium), for
    this session only (``dashboard.downloads``)."""
    from dashboard import downloads
    key_chart = f"fig_{_slug(name)}"
    config = {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}
    if any(getattr(t, "meta", None) == "subjects" for t in fig.data):     # points that name participants
        event = st.plotly_chart(fig, width="stretch", key=key_chart, config=config, on_select="rerun",
                                selection_mode="points")
        _open_profile_of_point(event, key_chart)
        st.caption("Click a censoring mark to open that participant's profile.")
    else:
        st.plotly_chart(fig, width="stretch", key=key_chart, config=config)
    stem = _file_stem(ctx, name)
    key = (ctx.view_kind, ctx.role_class, ctx.snapshot.snapshot_hash, ctx.filters.key(), ctx.mask_arms, name)
    cols = st.columns([1, 1, 5])
    for col, fmt, mime in ((cols[0], "png", "image/png"), (cols[1], "svg", "image/svg+xml")):
        with col:
            downloads.offer(ctx, page, f"Download {fmt.upper()}", f"{stem}.{fmt}", mime,
                            lambda fmt=fmt: figure_export.figure_bytes(key, fig, fmt), key=f"dl_{_slug(name)}_{fmt}")


# --------------------------------------------------------------------------- minimum cell size
def _selected_text(counts: dict) -> str:
    """"the filter selects **12** participants (20 screened)" for the header."""
    n = counts["randomised"]
    text = f"the filter selects **{n:,}** participant{'' if n == 1 else 's'}"
    if counts.get("screened") is not None:
        text += f" ({counts['screened']:,} screened)"
    return text


def show_small_cell_notice(exc: cell_size.SmallCellError) -> None:
    """The notice shown in place of an output refused for a blinded filter below the minimum
    cell size (``cell_size.SmallCellError``): says why, names nobody."""
    st.warning(str(exc), icon=":material/group_off:")


def show_counts_only(ctx: context.Context, exc: cell_size.SmallCellError) -> None:
    """What a page shows for a blinded filter below the minimum cell size: the notice and the
    counts (randomised, screened); no listing, no figure, no download, no identifier."""
    show_small_cell_notice(exc)
    cols = st.columns(3)
    if exc.randomised is not None:
        cols[0].metric("Randomised (this filter)", f"{exc.randomised:,}")
    if exc.screened is not None:
        cols[1].metric("Screened (this filter)", f"{exc.screened:,}")
    st.caption(f"Per-subject and per-visit outputs (listings, labs and scores by visit, survival curves, "
               f"adverse events, exposure, stages, completeness) need at least "
               f"{snapshots.load_study_config(ctx.snapshot.clinical_dir).min_cell_size} participants under a filter "
               "for blinded roles. Widen the filter (or clear it) in the sidebar to see them.")


def show_filtered_failure(ctx: context.Context, what: str, exc: Exception) -> None:
    """An output that failed on a filtered subset (a model fitted to one subject, a comparison
    with one arm absent): say so and show the rest of the page. Re-raised when unfiltered (a bug).
    The exception's message is not shown, only its kind."""
    if not ctx.filters.active:
        raise exc
    n = caches.cell_counts(ctx)["randomised"]
    st.warning(f"{what}: cannot be computed on this filter ({n:,} participant{'' if n == 1 else 's'}; "
               f"{type(exc).__name__}). Widen the filter to see it.")
