"""One scan of everything a blinded user can reach on the MIROCALS demo (issue 10, "done when").

As the investigator in a real browser (Debian chromium against `streamlit run dashboard/app.py`,
the mixed demo instance with the allocation configured, as the README's first command runs it):
every page's text (every tab opened in turn: tabs are lazy), every websocket frame the server sent, every CSV download delivered, every
address the browser was on, and the server's own output. Then the open report's whole folder
(rendered after a closed report into the same --out: HTML with its embedded resources decoded,
PDF text, SVG, sidecars) and every `mirocals table` a blinded view answers. None may hold an arm
(label, code, masking label), a Treg or eosinophil value, an injection-site reaction or an
influenza-like illness.
"""
from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest

from test_browser import ARGS, CHROMIUM, browser, click_tab, run_server, sign_in, wait_idle  # noqa: F401  (fixture; skips without chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# arm labels and codes as the study file spells them (a sentence's "placebo-controlled" is not one)
ARM = re.compile(r"Low-dose IL-2|IL2LD|Placebo\b(?!-controlled)|\bPBO\b|Group [AB]\b")
# arm-revealing content: Tregs, eosinophils (IL-2 raises both), IL-2's typical adverse events
REVEALING = re.compile(r"treg|regulatory t|foxp3|eosinophil|\bEOS\b|injection.?site|influenza.?like|flu.?like",
                       re.IGNORECASE)


def _hits(text: str) -> list[str]:
    found = []
    for rx in (ARM, REVEALING):
        for m in rx.finditer(text):
            found.append(text[max(0, m.start() - 60):m.end() + 60].replace("\n", " "))
    return found


def _decoded_html(html: str) -> str:
    """The HTML with every base64 data: URI (figures, fonts) decoded in place of its payload."""
    def decode(m):
        try:
            return base64.b64decode(m.group(2)).decode("utf-8", "replace")
        except ValueError:
            return ""
    return re.sub(r"data:([\w/+.-]+);base64,([A-Za-z0-9+/=]+)", decode, html)


def _browser_texts(browser, tmp: Path, data: Path) -> dict[str, str]:
    from dashboard.pages_registry import pages_for
    seen: dict[str, str] = {}
    with run_server(tmp, data=data) as (url, _audit, server_log, _proc):
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        frames: list[bytes] = []
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda payload: frames.append(payload if isinstance(payload, bytes) else payload.encode())))
        urls: list[str] = []
        page.on("framenavigated", lambda f: urls.append(f.url))
        sign_in(page, url, "investigator")
        n_downloads = 0
        for spec in pages_for("investigator"):
            page.get_by_test_id("stSidebarNav").get_by_text(spec.title, exact=True).click()
            page.get_by_text("Data cut-off").first.wait_for(timeout=60_000)
            wait_idle(page)
            tabs = page.get_by_role("tab")
            for t in range(max(tabs.count(), 1)):
                if tabs.count():           # lazy tabs (issue 13): each is drawn, and sent, when opened
                    click_tab(page, tabs.nth(t))
                where = f"{spec.title}" + (f" / {tabs.nth(t).inner_text()}" if tabs.count() else "")
                seen[f"page {where}"] = page.inner_text("body")
                buttons = page.get_by_role("button", name="Download CSV")   # the visible ones
                for i in range(buttons.count()):
                    with page.expect_download(timeout=60_000) as info:
                        buttons.nth(i).click()
                    seen[f"download {where} #{i + 1} {info.value.suggested_filename}"] = \
                        Path(info.value.path()).read_text(errors="replace")
                    n_downloads += 1
                    wait_idle(page)
        assert n_downloads >= 10, f"only {n_downloads} CSV downloads were offered to the investigator"
        seen["websocket frames"] = b"\n".join(frames).decode("utf-8", "replace")
        seen["addresses"] = "\n".join(urls + [page.url])
        context.close()
        seen["server output"] = server_log.read_text(errors="replace")
    assert len(frames) > 50 and "Data cut-off" in seen["websocket frames"]
    return seen


def _open_report_texts(folder: Path) -> dict[str, str]:
    """Every file of the open report's folder (the session's shared render, tests/report_renders.py:
    HTML, PDF and Word, intermediates kept, so the Markdown and Typst sources are read too; the
    closed report and the manuscript were rendered beside it into folders of their own)."""
    seen = {}
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".pdf" for p in files) and any(p.suffix == ".html" for p in files)
    for path in files:
        if path.suffix == ".pdf":
            text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
        elif path.suffix == ".docx":
            import zipfile
            with zipfile.ZipFile(path) as z:
                text = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
        else:
            text = path.read_bytes().decode("utf-8", "replace")
            if path.suffix == ".html":
                text = _decoded_html(text)
        seen[f"open report {path.relative_to(folder.parent)}"] = text
    return seen


def _table_texts(root: Path, capsys) -> dict[str, str]:
    from analysis.outputs import OUTPUTS
    from mirocals.cli import main
    seen = {}
    for name, spec in OUTPUTS.items():
        extra = {"projection": ["--cut", "2018-12-31"], "changes": ["--since", "2019-06-30"]}.get(name, [])
        status = main(["table", name, "--data", str(root), "--view", "blinded", *extra])
        out, err = capsys.readouterr()
        if spec.by_arm_only:
            assert status == 2 and out == "", name
        seen[f"mirocals table {name}"] = out
        # a refusal names the withheld parameter (e.g. EOS) by design, never an arm
        assert not ARM.search(err), f"{name}: {err}"
    return seen


def test_a_blinded_user_finds_no_arm_and_nothing_arm_revealing_anywhere(browser, tmp_path, capsys, demo_snapshot,
                                                                        report_renders):
    root = demo_snapshot                                    # the default MIROCALS demo, 220 randomised
    seen = _browser_texts(browser, tmp_path, root)
    seen.update(_open_report_texts(report_renders.get("open", "closed").folder("open")))
    seen.update(_table_texts(root, capsys))
    leaks = {where: hits[:3] for where, text in seen.items() if (hits := _hits(text))}
    assert not leaks, leaks
    # the scan reads real content: the pages and the report hold the pooled trial
    downloads = "\n".join(t for k, t in seen.items() if k.startswith("download "))
    assert "220" in downloads and "Respiratory" in downloads and "MIR-" in downloads
    assert any("Adverse events" in t and "Baseline characteristics" in t for k, t in seen.items()
               if k.startswith("open report") and k.endswith(".html"))


@pytest.mark.parametrize("text, leaks", [
    ("group,Low-dose IL-2,n", True), ("PBO", True), ("arm: Group B", True), ("Placebo", True),
    ("PARAMCD TREGPCT", True), ("Regulatory T cells (% of CD4)", True), ("Eosinophils (10^9/L)", True),
    ("EOS,0.21", True), ("Injection site reaction", True), ("Influenza like illness", True),
    ("a randomised, double-blind, placebo-controlled trial", False), ("EOSSTT,EOSDT", False),
    ("All participants,220", False), ("Respiratory failure", False),
])
def test_the_scan_flags_what_it_must_and_nothing_else(text, leaks):
    """The detector the scan above relies on: it would have caught the blinded Safety page's old
    Eosinophils tab, a Treg parameter under a new code, or an arm label, and it does not flag
    ordinary words."""
    assert bool(_hits(text)) is leaks
