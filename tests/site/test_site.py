"""The built documentation site (``mkdocs build`` into site/) in a real headless browser: every page loads without
a console error, its images render, and the search finds an API name. Debian's ``chromium``, driven by
Playwright with that executable (no browser is downloaded). The docs tox env builds the site first and requires
the browser (NEURENIX_REQUIRE_BROWSER=1); elsewhere a missing site or browser skips."""

from __future__ import annotations

import functools
import http.server
import os
import pathlib
import shutil
import threading

import pytest

SITE = pathlib.Path(__file__).resolve().parents[2] / "site"
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
REQUIRED = bool(os.environ.get("NEURENIX_REQUIRE_BROWSER"))


def _missing(what: str):
    if REQUIRED:
        pytest.fail(f"{what} (NEURENIX_REQUIRE_BROWSER is set)")
    pytest.skip(what)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request on stderr
        pass


@pytest.fixture(scope="module")
def server():
    """The site over HTTP on a free local port (search's worker does not run from file:// URLs)."""
    if not (SITE / "index.html").is_file():
        _missing("the site is not built (mkdocs build)")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        _missing("no chromium executable (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; its browsers are not needed)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


PAGES = sorted(str(p.relative_to(SITE).parent) for p in SITE.rglob("index.html")
               if "assets" not in p.parts and p.parent.name != "404") if SITE.is_dir() else []


@pytest.mark.parametrize("page", PAGES or ["."])
def test_page_loads_without_errors_and_its_images_render(server, browser, page):
    tab = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    response = tab.goto(f"{server}/{'' if page == '.' else page + '/'}", wait_until="networkidle")
    assert response.ok, f"{page}: HTTP {response.status}"
    broken = tab.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                          ".map(i => i.src)")
    tab.close()
    assert not errors, f"{page}: console errors {errors}"
    assert not broken, f"{page}: images that do not render: {broken}"


def test_search_finds_an_api_name(server, browser):
    tab = browser.new_page(viewport={"width": 1280, "height": 800})  # the header's search box is shown
    tab.goto(server + "/", wait_until="networkidle")
    box = "input[data-md-component='search-query']"
    # the index loads in a web worker, slowly on a CI machine busy with other test environments; a query typed
    # before it is ready may be dropped, so it is typed again every 10 s, for a minute at most
    for attempt in range(6):
        tab.fill(box, "")
        tab.click(box)
        tab.keyboard.type("meta_learn")
        try:
            tab.wait_for_selector(".md-search-result__item", state="attached", timeout=10_000)
            break
        except Exception:  # playwright's TimeoutError
            if attempt == 5:
                raise
    links = tab.eval_on_selector_all(".md-search-result__item a", "links => links.map(a => a.href)")
    tab.close()
    assert any(link.endswith("#neurenix.meta.MetaLearningModel.meta_learn") for link in links), links[:5]
