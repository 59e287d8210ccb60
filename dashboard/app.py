"""MIROCALS monitoring dashboard: ``streamlit run dashboard/app.py``.

This file is both the served application and its entry script:

* ``streamlit run`` finds ``app = st.App(...)`` below and serves it through uvicorn: this
  file's own script behind ``dashboard.server.MIDDLEWARE``, which answers 404 for
  ``/_stcore/metrics``, ``/media/`` and the other endpoints the dashboard does not use; and
  starts, once per server process, the cache warm-up (``dashboard.caches.start_warm_up``: the
  first sign-in after a restart finds its pages built) and the persistent figure-export browser.
  (uvicorn imports this module as ``app``, so ``__name__`` is not ``"__main__"`` then.)
* Each session runs it as ``__main__``: page config, the instance check (a blinded instance with
  an allocation in reach shows an error page and nothing else), the sign-in gate, the sidebar and
  ``st.navigation`` over the pages in ``dashboard/app_pages/`` that the signed-in role may open.
  Every page still checks the role itself (``widgets.page_setup``), because a page left out of
  the navigation is reachable by URL. ``AppTest.from_file("dashboard/app.py")`` runs this part.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` from a checkout
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

if __name__ != "__main__":
    from dashboard.server import MIDDLEWARE, start_background_work  # noqa: E402
    app = st.App(Path(__file__).resolve(), middleware=MIDDLEWARE)
    start_background_work()        # server start: cache warm-up and the figure-export browser
else:
    from dashboard import widgets  # noqa: E402
    from dashboard.instance import startup_problems_cached  # noqa: E402
    from dashboard.pages_registry import pages_for  # noqa: E402

    # no page_icon: a Material icon favicon is fetched from fonts.gstatic.com, a third-party
    # request from every dashboard page
    st.set_page_config(page_title=widgets.TAB_TITLE, layout="wide")

    problems = startup_problems_cached()
    if problems:
        st.title("MIROCALS monitoring")
        st.error("This instance refuses to serve data:\n\n" + "\n".join(f"- {p}" for p in problems)
                 + "\n\nA blinded instance (MIROCALS_INSTANCE=blinded) must have no allocation configured or "
                 "readable from its data path; an unblinded one needs its allocation.")
        st.stop()
    session = widgets.require_login()
    widgets.show_sidebar(session)
    navigation = st.navigation([st.Page(f"app_pages/{p.file}", title=p.title, icon=p.icon, url_path=p.url)
                                for p in pages_for(session["role"])])
    navigation.run()
