"""The documentation site as a reader opens it: from disk (site/index.html, no server), in a real browser
(Debian's chromium, driven by playwright). A menu link leads to a page, the search finds a word, the math
is typeset (MathJax from the site itself), and nothing is fetched from the network. The screenshots it
takes are docs/img/site-*.png when LMPSHEAR_REGENERATE=1."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Chromium as the machine's probe starts it: headless, no sandbox (root), no background connections
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)], cwd=ROOT, check=True, env=env
    )
    return out


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the docs extra: pip install -e '.[docs]'")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is missing: `bash .ci/browser-up` installs it")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        yield browser
        browser.close()


@pytest.mark.full
def test_the_site_opened_from_disk_navigates_searches_and_typesets_math(site, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto((site / "index.html").as_uri())
    assert page.locator("header .md-header__topic").first.inner_text().strip() == "lmpshear"
    # a menu link leads to a page (NAME.html: use_directory_urls is off), not to a directory listing
    page.click("nav.md-nav--primary >> text=Getting started")
    page.wait_for_load_state()
    assert page.url.endswith("/getting-started.html") and "Getting started" in page.locator("h1").first.inner_text()
    shot("getting-started", page)
    # the search runs from file:// (the offline plugin's inlined index, our own iframe worker)
    page.locator("input.md-search__input").first.click(force=True)
    page.keyboard.type("watershed")
    page.wait_for_selector(".md-search-result__item", timeout=20000)
    titles = page.locator(".md-search-result__item").all_inner_texts()
    assert any("clusters" in t.lower() for t in titles), titles
    # a formula is typeset as SVG by the site's own MathJax
    page.goto((site / "concepts" / "clusters.html").as_uri())
    page.wait_for_selector(".arithmatex svg", timeout=20000)
    assert page.locator(".arithmatex svg").count() >= 10
    assert "\\(" not in page.locator("article").inner_text()  # no raw TeX left
    # no page shows TeX or e^{...}-style math as raw text outside its code
    prose = (
        "els => els.map(a => { const c = a.cloneNode(true); "
        "c.querySelectorAll('code, pre').forEach(x => x.remove()); return c.innerText; })"
    )
    for html in sorted(site.rglob("*.html")):
        if html.name == "404.html":
            continue
        page.goto(html.as_uri())
        page.wait_for_load_state()
        if page.locator(".arithmatex").count():
            page.wait_for_selector(".arithmatex svg", timeout=20000)
        text = " ".join(page.eval_on_selector_all("article", prose))
        raw = [m for m in ("^{", "_{", "\\(", "\\frac", "\\sum", "$") if m in text]
        assert not raw, (html.relative_to(site), raw)
    page.goto((site / "concepts" / "lengths.html").as_uri())
    page.wait_for_selector(".arithmatex svg", timeout=20000)
    assert page.locator(".arithmatex svg").count() >= 6
    page.goto((site / "tutorials" / "flow-curve.html").as_uri())
    page.wait_for_load_state()
    shot("tutorial", page)
    page.goto((site / "index.html").as_uri())
    page.wait_for_load_state()
    shot("home", page)
    # code blocks wrap: none scrolls sideways
    page.goto((site / "concepts" / "run-spec.html").as_uri())
    widths = page.eval_on_selector_all("pre > code", "els => els.map(e => e.scrollWidth - e.clientWidth)")
    assert widths and max(widths) <= 1, widths
    assert all(url.startswith("file://") for url in fetched), [u for u in fetched if not u.startswith("file://")]
    # and the site ships no source of its hooks
    assert not (site / "hooks.py").exists()


def shot(name: str, page) -> None:
    """The page as a reader sees it: into docs/img/site-NAME.png when asked to (LMPSHEAR_REGENERATE=1)."""
    if os.environ.get("LMPSHEAR_REGENERATE") == "1":
        page.screenshot(path=str(ROOT / "docs" / "img" / f"site-{name}.png"))
