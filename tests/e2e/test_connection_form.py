"""The JobMojito connection form in the Airflow 3 UI, in headless Chromium (Debian's package).

Logs in through the simple auth manager's login page, opens Admin -> Connections -> Add
Connection, picks the JobMojito type, checks the relabelled standard fields and the provider's
extra fields, fills and saves the form, and checks the result through the REST API.

Screenshots go to ``.test_output/e2e/``. With ``JOBMOJITO_E2E_DOCS=1`` the test also refreshes
``docs/connection-form.png``, the picture on the documentation's connection page.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.deployment import REPO, Deployment

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS_SCREENSHOT = REPO / "docs" / "connection-form.png"
WAIT = 30  # seconds for any one thing to appear in the browser

CONN_ID = "jobmojito_from_ui"
RELABELLED = {"API base URL": "host", "Sign-in e-mail": "login", "Access token or password": "password"}
EXTRA_FIELDS = {
    "Timeout (s)": "timeout",
    "Max retries": "max_retries",
    "Backoff factor (s)": "backoff_factor",
    "Backoff max (s)": "backoff_max",
    "Supabase URL": "supabase_url",
    "Supabase anon key": "supabase_anon_key",
    "Embed base URL": "embed_base_url",
}
TYPED_EXTRAS = {"timeout": "20", "max_retries": "3", "backoff_factor": "0.25"}
EMBED_BASE_URL = "https://careers.example.com/embed"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Debian's chromedriver (so Selenium Manager downloads nothing)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: `make test-e2e` installs it (pip install --group e2e)")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium or chromium-driver is missing: run scripts/install_e2e_deps.sh")

    profile = tempfile.mkdtemp(prefix="jobmojito-e2e-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # Without these, Chromium's own background connections are refused here and it stalls.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # Tall enough for the whole Add Connection dialog to fit, for the screenshots.
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_connection_form(deployment: Deployment, browser: Any, output_dir: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    # The dialog re-renders as its data arrives: an element read mid-render may have been replaced.
    wait = WebDriverWait(browser, WAIT, ignored_exceptions=(StaleElementReferenceException,))
    shots = output_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    def visible(css: str) -> Any:
        return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def clickable(xpath: str) -> Any:
        return wait.until(ec.element_to_be_clickable((By.XPATH, xpath)))

    def labels(dialog: Any) -> set[str]:
        """The visible field labels of the dialog, without the required-field asterisk."""
        return {
            label.text.replace("*", "").strip()
            for label in dialog.find_elements(By.TAG_NAME, "label")
            if label.is_displayed()
        }

    def labels_once_shown(dialog: Any, expected: set[str]) -> set[str]:
        """The labels, once ``expected`` are among them: the type's field behaviour and the extra
        fields are applied as their metadata arrives, which can come after the inputs show."""
        with contextlib.suppress(TimeoutException):  # the assertion that follows shows what is there
            wait.until(lambda _: expected <= labels(dialog))
        return labels(dialog)

    def enter_number(name: str, text: str) -> None:
        """Put ``text`` into a number field as one edit, as a paste does, and check it reads back.

        Not key by key: Airflow 3.3's number fields store ``Number(text)`` after each key and
        render it back, so when the render for "0" lands after the "." key (on a loaded machine),
        "0." shows as "0" and "0.25" is saved as 25.
        """
        box = field(name)
        box.click()
        browser.execute_cdp_cmd("Input.insertText", {"text": text})
        assert box.get_attribute("value") == text

    # Log in: the UI sends us to the simple auth manager's login page.
    browser.get(f"{deployment.api_url}/")
    wait.until(ec.url_contains("/auth/login"))
    visible("input[name=username]").send_keys(deployment.admin_user)
    visible("input[name=password]").send_keys(deployment.admin_password)
    browser.save_screenshot(str(shots / "01-login.png"))
    clickable("//button[@type='submit']").click()
    wait.until(lambda driver: "/auth/login" not in driver.current_url)

    # Admin -> Connections -> Add Connection.
    clickable("//button[@aria-label='Admin']").click()
    clickable("//*[@role='menuitem'][normalize-space()='Connections']").click()
    wait.until(ec.url_contains("/connections"))
    clickable("//button[normalize-space()='Add Connection']").click()
    dialog = visible("[role=dialog]")
    field = _fields(dialog, By)

    field("connection_id").send_keys(CONN_ID)
    connection_type = dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]")
    connection_type.send_keys("JobMojito")
    # The option is clicked once listed: Enter pressed before the list of types arrives picks none.
    clickable("//*[@role='option'][normalize-space()='JobMojito']").click()
    visible("[role=dialog] input[name=host]")
    assert "JobMojito" in dialog.text

    # Standard fields: relabelled, with our placeholders; schema and port hidden.
    shown = labels_once_shown(dialog, set(RELABELLED))
    assert set(RELABELLED) <= shown, shown
    assert not shown & {"Host", "Login", "Password", "Schema", "Port"}, shown
    assert field("host").get_attribute("placeholder") == "https://cool.jobmojito.com/functions/v1"
    assert field("password").get_attribute("type") == "password"
    token = deployment.mint_token()
    field("host").send_keys(f"{deployment.sandbox_url}/functions/v1")
    field("password").send_keys(token)
    browser.execute_script("document.activeElement.blur()")  # no caret or focus ring in the picture
    standard_png = dialog.screenshot_as_png
    (shots / "02-standard-fields.png").write_bytes(standard_png)

    # Extra fields: the provider's conn-fields, with their labels.
    clickable("//*[@role='dialog']//button[normalize-space()='Extra Fields']").click()
    visible("[role=dialog] input[name=element_timeout]")
    shown = labels_once_shown(dialog, set(EXTRA_FIELDS))
    assert set(EXTRA_FIELDS) <= shown, shown
    assert field("element_supabase_anon_key").get_attribute("type") == "password"  # format: password
    for name, value in TYPED_EXTRAS.items():
        enter_number(f"element_{name}", value)
    field("element_embed_base_url").send_keys(EMBED_BASE_URL)
    browser.execute_script("document.activeElement.blur()")
    # What Save sends: every field as entered, after the last render.
    entered = {f"element_{name}": value for name, value in TYPED_EXTRAS.items()}
    entered["element_embed_base_url"] = EMBED_BASE_URL
    assert {name: field(name).get_attribute("value") for name in entered} == entered
    extra_png = dialog.screenshot_as_png
    (shots / "03-extra-fields.png").write_bytes(extra_png)

    clickable("//*[@role='dialog']//button[normalize-space()='Save']").click()
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, "[role=dialog]")))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "table"), CONN_ID))
    browser.save_screenshot(str(shots / "04-saved.png"))

    # What the form saved, through the REST API.
    saved = deployment.api("GET", f"/connections/{CONN_ID}")
    assert saved["conn_type"] == "jobmojito"
    assert saved["host"] == f"{deployment.sandbox_url}/functions/v1"
    assert not saved["login"]
    assert saved["password"] != token  # the API masks it
    extra = json.loads(saved["extra"])
    assert extra["timeout"] == 20
    assert extra["max_retries"] == 3
    assert extra["backoff_factor"] == 0.25
    assert extra["embed_base_url"] == EMBED_BASE_URL
    assert set(extra) <= set(EXTRA_FIELDS.values())
    assert not any(extra.get(name) for name in ("backoff_max", "supabase_url", "supabase_anon_key"))

    # And the hook accepts it as saved (the form stores unset extras as null): Airflow's own
    # connection test, with the stored password.
    result = deployment.api(
        "POST", "/connections/test", json={"connection_id": CONN_ID, "conn_type": "jobmojito"}
    )
    assert result["status"] is True, result
    assert "the access token was accepted" in result["message"]
    deployment.timings["browser: log in, fill, save and check the connection form"] = (
        time.monotonic() - started
    )

    composite = _side_by_side(browser, standard_png, extra_png, shots / "connection-form.png")
    if os.environ.get("JOBMOJITO_E2E_DOCS", "").lower() in ("1", "true", "yes"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(composite, DOCS_SCREENSHOT)


def _fields(dialog: Any, by: Any) -> Any:
    def field(name: str) -> Any:
        return dialog.find_element(by.CSS_SELECTOR, f"[name={name}]")

    return field


def _side_by_side(browser: Any, left: bytes, right: bytes, target: Path) -> Path:
    """One picture of both halves of the form (the dialog shows one section at a time).

    Composed by the browser itself, so no imaging library is needed.
    """
    from selenium.webdriver.common.by import By

    images = "".join(
        f'<img style="display:block;border:1px solid #ccd;border-radius:8px" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for png in (left, right)
    )
    page = (
        '<html><body style="margin:0;background:#f4f6fa">'
        f'<div id="both" style="display:inline-flex;gap:16px;padding:16px;align-items:flex-start">{images}'
        "</div></body></html>"
    )
    page_file = target.with_suffix(".html")
    page_file.write_text(page)
    size = browser.get_window_size()
    browser.set_window_size(2000, size["height"])  # wide enough for both, side by side
    try:
        browser.get(page_file.as_uri())
        target.write_bytes(browser.find_element(By.ID, "both").screenshot_as_png)
    finally:
        browser.set_window_size(size["width"], size["height"])
        page_file.unlink()
    return target
