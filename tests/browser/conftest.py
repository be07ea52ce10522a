"""Browser fixtures: real logged runs, a real ``tracker-server`` on loopback, headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, or ``$CHROMIUM``) driven by Playwright for Python;
WebGL runs on SwiftShader. Screenshots of every test land in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from viewer_runs import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, XSS_LABELS, Server, log_run  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: timing measurements at 100k and 1M points")


@pytest.fixture(scope="session")
def playwright_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (make browser installs it)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def logged(tmp_path_factory):
    """The runs every viewer test looks at, logged once per session."""
    root = tmp_path_factory.mktemp("runs")
    main = log_run(root, project="vision", name="mlp-baseline", n=600, sprite=True, steps=(0, 1, 2), seed=1,
                   analyze=True, extra_reductions=[("pca", 2)], raw_embedding=True)
    xss = log_run(root, project="xss", name=XSS_LABELS[0], labels=XSS_LABELS, n=200, steps=(0,),
                  title=XSS_LABELS[1], group=XSS_LABELS[2], seed=2)
    return {"root": root, "main": main, "xss": xss}


@pytest.fixture(scope="session")
def server(logged, tmp_path_factory):
    with Server(logged["root"], tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv


class PageProbe:
    """A page plus what it reported: console errors, page errors, failed requests, dialogs."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def js(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg) if arg is not None else self.page.evaluate(expr)

    def wait(self, expr: str, timeout: float = 30.0, arg=None):
        """Poll a JS expression until truthy (wait_for_function needs eval, which the CSP forbids)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expr, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {expr}; errors: {self.errors}")
            time.sleep(0.05)

    def open_view(self, url: str, timeout: float = 60.0):
        self.page.goto(url)
        self.wait("!!(window.__viewer && ['ready', 'error'].includes(window.__viewer.state))", timeout)
        state = self.js("[window.__viewer.state, window.__viewer.error]")
        assert state[0] == "ready", f"viewer failed: {state[1]}; errors: {self.errors}"


@pytest.fixture
def probe(playwright_browser, request):
    context = playwright_browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    probe = PageProbe(page)
    yield probe
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    finally:
        context.close()
