"""MIROCALS monitoring dashboard: ``streamlit run dashboard/app.py``.

Thin entry script: page config, sign-in gate, sidebar, and ``st.navigation`` over the pages in
``dashboard/app_pages/`` that the signed-in role may open. Every page still checks the role
itself (``widgets.page_setup``), because a page left out of the navigation is reachable by URL.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` from a checkout
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import widgets  # noqa: E402
from dashboard.pages_registry import pages_for  # noqa: E402

st.set_page_config(page_title="MIROCALS monitoring", page_icon=":material/monitoring:", layout="wide")

session = widgets.require_login()
widgets.show_sidebar(session)
navigation = st.navigation([st.Page(f"app_pages/{p.file}", title=p.title, icon=p.icon, url_path=p.url)
                            for p in pages_for(session["role"])])
navigation.run()
