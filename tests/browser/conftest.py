"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the live test server."""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("VBIP_CHROMIUM", "/usr/bin/chromium")

# Playwright starts Chromium with a fresh temporary profile of its own.
# Playwright's sync API keeps an event loop in the test thread; the ORM calls the tests make
# around it are ordinary synchronous calls, so Django's async-safety guard does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        if os.environ.get("VBIP_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM}, and VBIP_REQUIRE_BROWSER is set (CI)")
        pytest.skip(f"Chromium not found at {CHROMIUM} (install Debian's 'chromium' package; CI does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (make test installs requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def sign_in(page, live_server, username, password="pw-for-tests-only"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
