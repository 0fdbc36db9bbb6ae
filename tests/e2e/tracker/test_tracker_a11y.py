"""Accessibility of the tracker's main pages (docs/tracker.md): every form control has a
label, the keyboard reaches everything with a visible focus ring in document order, text
contrast is at least 7:1 (WCAG AAA) where the page draws it, and at a tablet's 768 x 1024 no
page scrolls sideways."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.serve_process import Server
from tests.e2e.tracker.kit import BROWSER_MARKS, open_as, shot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = BROWSER_MARKS

# (user, page, what shows the page is drawn)
PAGES = [
    ("coord.silva", "/app/worklist.html", ".folders .count"),
    ("coord.silva", "/app/case.html?task=task-okafor", "#coordination #services"),
    ("coord.silva", "/app/dashboard.html", "#chart-turnaround-distribution"),
    ("expert.cardiology", "/app/case.html?task=task-okafor", "#report-form"),
    ("expert.cardiology", "/app/queue.html", "table.cases"),
    ("dr.walsh", "/app/case.html?task=task-whitfield", "#co-request"),
    ("dr.walsh", "/app/cases.html", "table.cases"),
    ("insurer.maple", "/app/dashboard.html", "#csv-download"),
]
IDS = [f"{u}:{p.split('/')[-1]}" for u, p, _ in PAGES]

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(c => c.type !== 'hidden')
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
     && !c.getAttribute('aria-labelledby') && !(c.tagName === 'BUTTON' && c.textContent.trim()))
  .map(c => c.outerHTML.slice(0, 120))"""

# The WCAG contrast ratio of each visible text node's colour against its nearest opaque
# background (the page draws text on flat colours only), lowest first.
CONTRAST = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bg = (el) => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3); } return [255, 255, 255]; };
  const out = [];
  const walk = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const t = walk.currentNode; const el = t.parentElement;
    if (!t.textContent.trim() || !el || el.closest('svg') || !el.getClientRects().length) continue;
    const st = getComputedStyle(el); if (st.visibility === 'hidden') continue;
    const a = lum(rgb(st.color).slice(0, 3)), b = lum(bg(el));
    out.push({ ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), text: t.textContent.trim().slice(0, 40), color: st.color });
  }
  return out.sort((x, y) => x.ratio - y.ratio).slice(0, 3);
}"""


def opened(browser: Browser, server: Server, credentials: dict[str, Any], user: str, path: str, ready: str,
           viewport: dict[str, int]) -> Page:  # fmt: skip
    page = browser.new_context(viewport=viewport).new_page()  # type: ignore[arg-type]
    open_as(page, server, credentials, user, path)
    page.locator(ready).first.wait_for()
    return page


@pytest.mark.parametrize(("user", "path", "ready"), PAGES, ids=IDS)
def test_every_control_has_a_label_and_text_has_contrast(
    browser: Browser, server: Server, credentials: dict[str, Any], user: str, path: str, ready: str
) -> None:
    page = opened(browser, server, credentials, user, path, ready, {"width": 1280, "height": 900})
    assert page.evaluate(UNLABELLED) == []
    worst = page.evaluate(CONTRAST)
    assert worst and worst[0]["ratio"] >= 7, worst
    page.context.close()


@pytest.mark.parametrize(("user", "path", "ready"), PAGES, ids=IDS)
def test_a_tablet_in_portrait_does_not_scroll_sideways(
    browser: Browser, server: Server, credentials: dict[str, Any], user: str, path: str, ready: str
) -> None:
    page = opened(browser, server, credentials, user, path, ready, {"width": 768, "height": 1024})
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    shot(page, f"tablet-{user}-{path.split('/')[-1].split('.')[0]}")
    page.context.close()


def test_the_keyboard_walks_the_case_page_in_order_with_a_visible_focus(
    browser: Browser, server: Server, credentials: dict[str, Any]
) -> None:
    page = opened(browser, server, credentials, "coord.silva", "/app/case.html?task=task-okafor",
                  "#coordination #services", {"width": 1280, "height": 900})  # fmt: skip
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    seen: list[tuple[float, str]] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        info = page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
              return { tag: e.tagName, type: e.type, id: e.id, y: e.getBoundingClientRect().top + scrollY,
                       outline: s.outlineStyle, width: parseFloat(s.outlineWidth), inMain: !!e.closest('main') }; }"""
        )
        if not info["inMain"]:
            break
        # Focus visible. A date input's focus sits in its day/month/year fields, which Chromium
        # highlights itself (the host's outline is not reliably computed there).
        if info["type"] != "date":
            assert info["outline"] != "none" and info["width"] >= 2, info
        seen.append((info["y"], info["tag"]))
    assert len(seen) > 10  # the coordination forms are reachable
    ys = [y for y, _ in seen]
    assert ys == sorted(ys), "tab order follows the page from top to bottom"
    # A coordination form works from the keyboard alone: focus its status select, Escape-free.
    select = page.locator("#services li[data-task='coord-okafor-video'] select[data-field=status]")
    select.focus()
    assert page.evaluate("document.activeElement.dataset.field") == "status"
