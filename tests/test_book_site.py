"""The built book, opened in a real headless Chromium: the equations rendered, the figures loaded.

``make docs`` builds the site into ``docs/_build/html``; CI (``.ci/run``) builds it before the
tests and installs Chromium and its driver from the Debian packages where they are missing. The
site is served from this machine by a local HTTP server, and the browser is told that every other
host does not exist, so a page that reached for a CDN (MathJax, fonts, a theme's scripts) would
show it here: MathJax must come from the build itself.

Where the site is not built or Chromium is missing, the tests skip and say which, and how to
get it.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SITE = Path(__file__).resolve().parents[1] / "docs" / "_build" / "html"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SITE / "index.html").is_file(),
        reason=f"the book is not built ({SITE / 'index.html'} is missing): run `make docs` first (CI does)",
    ),
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None,
        reason="Chromium or chromedriver is not installed: `apt-get install chromium chromium-driver` (CI does)",
    ),
]

#: Waits for MathJax's typesetting to finish (or finds there is no MathJax on the page).
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!document.querySelector('script[src*="mathjax"]')) { done("no MathJax"); return; }
const started = Date.now();
(function wait() {  // the script is loaded asynchronously: on a busy machine it may not have run yet
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        MathJax.startup.promise.then(() => done("typeset"), (e) => done("failed: " + e));
    } else if (Date.now() - started > 30000) {
        done("MathJax did not start within 30 s");
    } else {
        setTimeout(wait, 100);
    }
})();
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base class names it `format`
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        # Every host but this machine's server is unknown: nothing may come from the network.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser: Any, url: str) -> str:
    browser.get(url)
    return str(browser.execute_async_script(WAIT_FOR_MATHJAX))


def _resources_from_elsewhere(browser: Any, site_url: str) -> list[str]:
    names = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [n for n in names if not n.startswith(site_url) and not n.startswith("data:")]


def _assert_equations_rendered(browser: Any) -> None:
    rendered = browser.execute_script("return document.querySelectorAll('mjx-container').length")
    assert rendered > 0, "no equation was typeset by MathJax"
    errors = browser.execute_script("return document.querySelectorAll('mjx-merror, [data-mjx-error]').length")
    assert errors == 0, f"{errors} equations failed to typeset"
    text = browser.execute_script("return document.body.innerText")
    assert "$$" not in text and "\\frac" not in text, "raw TeX is left on the page"


def _assert_figures_loaded(browser: Any, at_least: int) -> None:
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img, main img'))"
        ".map(i => [i.getAttribute('src'), i.complete ? i.naturalWidth : 0])"
    )
    assert len(widths) >= at_least, f"expected at least {at_least} figures, found {len(widths)}"
    broken = [src for src, width in widths if width <= 0]
    assert not broken, f"figures that did not load: {broken}"


def test_index_renders_its_equation_offline(browser: Any, site_url: str) -> None:
    assert _open(browser, f"{site_url}/index.html") == "typeset"
    assert "twolayer" in browser.title
    _assert_equations_rendered(browser)
    assert _resources_from_elsewhere(browser, site_url) == []


def test_derivation_page_shows_every_step_typeset(browser: Any, site_url: str) -> None:
    assert _open(browser, f"{site_url}/guide/backprop.html") == "typeset"
    _assert_equations_rendered(browser)
    text = browser.execute_script("return document.body.innerText")
    assert "refuted" in text and "proved" in text  # SymPy's verdicts, written at build time
    assert _resources_from_elsewhere(browser, site_url) == []


def test_gallery_page_shows_its_figures(browser: Any, site_url: str) -> None:
    pages = sorted((SITE / "auto_examples").glob("plot_*.html"))
    assert pages, "the gallery has no pages"
    page = next((p for p in pages if "moderated" in p.name), pages[0])
    assert _open(browser, f"{site_url}/auto_examples/{page.name}") in {"typeset", "no MathJax"}
    _assert_figures_loaded(browser, at_least=1)
    assert _resources_from_elsewhere(browser, site_url) == []
