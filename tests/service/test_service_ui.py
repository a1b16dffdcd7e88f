"""The web UI: pages render with no external resources, the session cookie and CSRF
protections hold, and (in headless Chromium) a team signs in, submits and sees the figures."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from service_helpers import (  # noqa: F401 - fixtures
    base_program,
    live_service,
    make_team,
    models,
    program_dir,
    service_settings,
    sqlite_service,
    sqlite_url,
)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def test_pages_render_and_need_nothing_from_elsewhere(sqlite_service, models):
    service = sqlite_service
    token = service.team("alpha")
    service.wait(token, service.submit(token, models["truth"], group="u > 0.5").json()["id"])
    for path in ("/", "/programs/synthetic", "/programs/synthetic/leaderboard", "/programs/synthetic/history",
                 "/programs/synthetic/heatmap", "/login"):
        page = service.client.get(path)
        assert page.status_code == 200, path
        assert "text/html" in page.headers["content-type"]
        assert "script-src 'none'" in page.headers["content-security-policy"]
        # Every resource is served by the app itself: no absolute URL in src or href of a resource.
        assert not re.search(r'(src|href)="(https?:)?//', page.text.replace('href="http://testserver', "")), path
        assert "<script" not in page.text
    program = service.client.get("/programs/synthetic").text
    assert "skl2onnx" in program and "to_onnx" in program and "groupwise bounty submit --server" in program
    assert service.client.get("/static/style.css").status_code == 200
    board = service.client.get("/programs/synthetic/leaderboard").text
    assert re.search(r"<td>alpha</td>", board)
    heat = service.client.get("/programs/synthetic/heatmap").text
    assert re.search(r'<th scope="row">alpha</th><td class="heat-9"', heat)
    history = service.client.get("/programs/synthetic/history").text
    assert 'id="trajectory"' in history and "<code>u &gt; 0.5</code>" in history
    assert service.client.get("/my/submissions", follow_redirects=False).status_code == 303


def test_sign_in_session_cookie_csrf_and_revocation(sqlite_service, models):
    service = sqlite_service
    client = service.client
    token = service.team("alpha")
    login = client.get("/login")
    # Without the form's CSRF token, nothing is done.
    assert client.post("/login", data={"token": token, "csrf": "forged"}).status_code == 403
    wrong = client.post("/login", data={"token": "gwb_nope", "csrf": _csrf(login.text)})
    assert wrong.status_code == 401 and "unknown or has been revoked" in wrong.text
    ok = client.post("/login", data={"token": token, "csrf": _csrf(login.text), "next": "https://evil.example/"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "groupwise_session=" in cookie
    assert token not in ok.headers["set-cookie"]
    mine = client.get("/my/submissions")
    assert mine.status_code == 200 and "Submissions of alpha" in mine.text
    form = client.get("/programs/synthetic/submit").text
    files = {"model": ("h.onnx", models["truth"].read_bytes(), "application/octet-stream")}
    forged = client.post("/programs/synthetic/submit", data={"group": "u > 0.5", "csrf": "forged"}, files=files)
    assert forged.status_code == 403
    sent = client.post("/programs/synthetic/submit", data={"group": "u > 0.5", "csrf": _csrf(form)}, files=files, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"].startswith("/my/submissions?queued=")
    bad = client.post("/programs/synthetic/submit", data={"csrf": _csrf(form)}, files=files)
    assert bad.status_code == 400 and "exactly one group" in bad.text
    # Revoking the token ends the browser session at once.
    token_id = client.get("/api/v1/me/tokens", headers=service.auth(token)).json()[0]["id"]
    client.delete(f"/api/v1/admin/tokens/{token_id}", headers=service.auth(service.admin))
    assert client.get("/my/submissions", follow_redirects=False).status_code == 303
    # The admin page is only for the admin.
    admin_login = client.get("/login")
    client.post("/login", data={"token": service.admin, "csrf": _csrf(admin_login.text)})
    admin = client.get("/admin")
    assert admin.status_code == 200 and "Holdout budgets" in admin.text and "sign-in" in admin.text


def _chrome():
    exe, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if exe is None or driver is None:
        pytest.skip("headless Chromium and its driver are not installed: apt-get install chromium chromium-driver (the CI script does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install selenium (the CI script does)")
    options = webdriver.ChromeOptions()
    options.binary_location = exe
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1400",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    # A click that submits a form returns before the next page has loaded; lookups wait for it.
    browser.implicitly_wait(15)
    return browser


def test_a_team_signs_in_submits_and_sees_the_figures_in_chromium(sqlite_url, program_dir, models, tmp_path):
    from selenium.webdriver.common.by import By

    with live_service(service_settings(sqlite_url), program_dir) as (url, _):
        token = make_team(url, "browser-team")
        browser = _chrome()
        try:
            browser.get(f"{url}/programs/synthetic/submit")  # redirected to sign in
            assert "/login" in browser.current_url
            browser.find_element(By.ID, "token").send_keys(token)
            browser.find_element(By.ID, "login-button").click()
            assert browser.find_element(By.ID, "signed-in-team").text == "browser-team"
            assert browser.find_element(By.ID, "group")  # the submit form, where sign-in was asked for
            assert browser.current_url.endswith("/programs/synthetic/submit")
            browser.find_element(By.ID, "group").send_keys("u > 0.5")
            browser.find_element(By.ID, "model").send_keys(str(models["truth"]))
            browser.find_element(By.ID, "submit-button").click()
            assert "Submission" in browser.find_element(By.ID, "queued-notice").text
            deadline = time.monotonic() + 90
            while True:
                decision = browser.find_element(By.CSS_SELECTOR, "#my-submissions tbody tr td.decision").text
                if decision or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
                browser.refresh()
            assert decision == "accepted"

            browser.get(f"{url}/programs/synthetic/leaderboard")
            cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr:first-child td")]
            assert cells[1] == "browser-team" and cells[3] == "1"

            browser.get(f"{url}/programs/synthetic/heatmap")
            row = browser.find_element(By.CSS_SELECTOR, "#heatmap tbody tr")
            assert row.find_element(By.TAG_NAME, "th").text == "browser-team"
            hot = row.find_elements(By.CSS_SELECTOR, "td.heat-9")
            assert hot and hot[0].value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent")

            browser.get(f"{url}/programs/synthetic/history")
            image = browser.find_element(By.ID, "trajectory")
            assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 100
            assert len(browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")) >= 2
            browser.save_screenshot(str(tmp_path / "history.png"))
        finally:
            browser.quit()
