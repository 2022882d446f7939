"""Harness for browser tests: Debian's chromium, headless, driven by Selenium
against a real `nno serve` (the black-box suite's Host, imported from
tests/integration/conftest.py, never copied).

One host for the whole run (each test module makes platforms of its own),
one browser per test module (a fresh profile in a temporary folder), its
cookies and storage cleared before each test. The browser reaches nothing
but loopback: every name resolves to nothing except localhost and
*.localhost, and chromium's background services are off.

When a test fails, a screenshot, the page's HTML, the browser console log
and the host's log are saved under {build}/e2e-artifacts/{test}/ and the
path is printed in the failure report.
"""
import importlib.util
import json
import os
import re
import shutil
import tempfile
import urllib.parse

import pytest
from selenium import webdriver
from selenium.common.exceptions import (StaleElementReferenceException,
                                        TimeoutException, WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_harness():
    """tests/integration/conftest.py as a module of its own name (a second
    module called `conftest` would clash with this one)."""
    path = os.path.join(_HERE, "..", "integration", "conftest.py")
    spec = importlib.util.spec_from_file_location("nno_integration_harness",
                                                  path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


harness = _load_harness()
Host = harness.Host
BUILD = harness.BUILD
ARTIFACTS = os.path.join(BUILD, "e2e-artifacts")
BASE = "nno.localhost"
CHROMIUM = os.environ.get("NNO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("NNO_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1280, 900)
# Seconds a wait gives the page: generous, for the sanitizer build on a
# busy 2-core machine; a passing run never waits this long.
WAIT = float(os.environ.get("NNO_E2E_WAIT", "20"))
PASSWORD = "correct horse battery"


# -- the host -----------------------------------------------------------------

@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """One host with its core plugins (registry, iam, provisioning) and the
    builtin default stack; tests make platforms of their own in it."""
    h = Host(tmp_path_factory.mktemp("e2e-host"), workers=2, core=True)
    h.start()
    yield h
    h.stop()


def make_platform(host, pid, signup=True, user_scopes=None, tenants=(),
                  **fields):
    """Platform `pid` with the default stack active, sign-up allowed (unless
    told otherwise), `user_scopes` if given, and `tenants` as (id, parent or
    None) pairs. Returns the platform's JSON."""
    p = host.platform(pid, **fields)
    access = {"signup": signup}
    if user_scopes is not None:
        access["user_scopes"] = list(user_scopes)
    st, _, body = host.api("PUT", "/platforms/%s/access" % pid, access)
    assert st == 200, body
    for tid, parent in tenants:
        t = {"id": tid, "name": tid.upper()}
        if parent:
            t["parent"] = parent
        st, _, body = host.api("POST", "/platforms/%s/tenants" % pid, t)
        assert st == 201, body
    return p


def sign_up(host, pid, email, password=PASSWORD, name=None):
    """A user of platform `pid` made through POST /auth/sign-up (by path);
    returns the answer's JSON (user, session, token)."""
    body = {"email": email, "password": password}
    if name:
        body["name"] = name
    st, _, data = host.json("POST", "/p/%s/auth/sign-up" % pid,
                            body=json.dumps(body),
                            headers={"Content-Type": "application/json"})
    assert st == 201, data
    return data


# -- the browser --------------------------------------------------------------

def _options(profile):
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for arg in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-dev-shm-usage",
            "--window-size=%d,%d" % WINDOW,
            "--user-data-dir=" + profile,
            # Loopback only: no proxy from the environment, and nothing
            # else resolves.
            "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, "
            "EXCLUDE *.localhost, EXCLUDE 127.0.0.1",
            "--no-first-run", "--no-default-browser-check",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--disable-extensions",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--lang=en-US"):
        o.add_argument(arg)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return o


class Browser:
    """One chromium for a test module. `log` collects every browser console
    entry since the current test began (console-api, javascript, network,
    security: CSP violations are logged as errors)."""

    def __init__(self, host, profile):
        self.host = host
        self.profile = profile
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER),
                                       options=_options(profile))
        self.driver.set_page_load_timeout(WAIT)
        self.log = []
        self.origins = set()

    def quit(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass

    # -- state between tests ---------------------------------------------
    def reset(self):
        """Forget every cookie, cached file and storage of the origins this
        browser visited; start on about:blank with an empty log."""
        d = self.driver
        d.get("about:blank")
        d.execute_cdp_cmd("Network.clearBrowserCookies", {})
        d.execute_cdp_cmd("Network.clearBrowserCache", {})
        for origin in self.origins:
            d.execute_cdp_cmd("Storage.clearDataForOrigin",
                              {"origin": origin, "storageTypes": "all"})
        self.drain()
        self.log = []

    def drain(self):
        try:
            self.log.extend(self.driver.get_log("browser"))
        except WebDriverException:
            pass
        return self.log

    # -- URLs -------------------------------------------------------------
    def origin(self, pid=None):
        """The console origin of platform `pid`, or the core API host's."""
        name = "console.%s.%s" % (pid, BASE) if pid else BASE
        return "http://%s:%d" % (name, self.host.port)

    def console_url(self, pid, route=None):
        return self.origin(pid) + "/" + ("#" + route if route else "")

    def get(self, url):
        p = urllib.parse.urlsplit(url)
        self.origins.add("%s://%s" % (p.scheme, p.netloc))
        self.driver.get(url)

    # -- waiting ----------------------------------------------------------
    def until(self, fn, what, timeout=WAIT):
        """Wait until `fn(driver)` is truthy; return its value. A timeout
        fails the test naming `what` and the page's current state."""
        def probe(d):
            try:
                return fn(d)
            except (StaleElementReferenceException, WebDriverException):
                return False
        try:
            return WebDriverWait(self.driver, timeout, 0.05).until(probe)
        except TimeoutException:
            raise AssertionError("timed out after %gs waiting for %s; at %s, "
                                 "shell=%r, state=%r" %
                                 (timeout, what, self.driver.current_url,
                                  self.js("return document.documentElement"
                                          ".dataset.shell"),
                                  self.state()))

    def js(self, script, *args):
        try:
            return self.driver.execute_script(script, *args)
        except WebDriverException:
            return None

    def ready(self):
        """Wait for the shell's readiness mark (data-shell="ready")."""
        self.until(lambda d: d.execute_script(
            "return document.documentElement.dataset.shell") == "ready",
            'data-shell="ready"')

    def open(self, pid, route=None):
        """Load platform `pid`'s console (a new document) and wait until the
        shell is ready."""
        self.get(self.console_url(pid, route))
        self.ready()

    def find(self, css):
        """The visible element matching `css`, or None."""
        for el in self.driver.find_elements(By.CSS_SELECTOR, css):
            try:
                if el.is_displayed():
                    return el
            except StaleElementReferenceException:
                pass
        return None

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, css, timeout=WAIT):
        """Wait for a visible element matching `css`; return it."""
        return self.until(lambda d: self.find(css), css, timeout)

    def wait_gone(self, css, timeout=WAIT):
        self.until(lambda d: self.find(css) is None, "no " + css, timeout)

    def view(self, pattern):
        """Wait until the routed view `pattern` (e.g. /notes/{id}) is
        mounted; return #view."""
        return self.wait('#view[data-route="%s"]' % pattern)

    def route(self):
        """The hash route the page is on, without '#'."""
        return urllib.parse.unquote(
            urllib.parse.urlsplit(self.driver.current_url).fragment)

    def state(self):
        """data-state of the shown #state, or None."""
        return self.js("var s = document.getElementById('state');"
                       "return s && s.offsetParent !== null"
                       " ? s.dataset.state : null;")

    def wait_state(self, name):
        return self.until(lambda d: self.state() == name and
                          self.find("#state"), 'state "%s"' % name)

    def fill(self, css, text):
        el = self.wait(css)
        el.clear()
        el.send_keys(text)
        return el

    def click(self, css):
        el = self.wait(css)
        el.click()
        return el

    # -- the shell's flows ------------------------------------------------
    def sign_in(self, email, password=PASSWORD):
        """Fill and submit the sign-in form shown now."""
        self.wait("form#sign-in")
        self.fill("#sign-in input#email", email)
        self.fill("#sign-in input#password", password)
        self.click('#sign-in button[type="submit"]')

    def signed_in(self, email):
        """Wait for the top bar showing `email` as the current user."""
        self.until(lambda d: (self.find("header#topbar #current-user") and
                              email in self.find("#current-user").text),
                   "#current-user showing " + email)

    def fetch(self, url, method="GET"):
        """fetch() from the page (same-origin credentials); returns
        {status, type, text}."""
        return self.driver.execute_async_script("""
            const [url, method, done] = arguments;
            fetch(url, {method, credentials: 'same-origin'})
              .then(async r => done({status: r.status,
                                     type: r.headers.get('content-type'),
                                     text: await r.text()}))
              .catch(e => done({status: 0, type: null, text: String(e)}));
        """, url, method)

    def session_token(self, pid):
        """The session cookie's value on platform `pid`'s console host (read
        through the DevTools protocol: it is HttpOnly)."""
        host = "console.%s.%s" % (pid, BASE)
        cookies = self.driver.execute_cdp_cmd("Network.getAllCookies", {})
        for c in cookies["cookies"]:
            if c["domain"] == host and c["name"] in ("__Host-nno_session",
                                                     "nno_session"):
                return c["value"]
        return None

    def errors(self, allow=()):
        """Console entries at SEVERE since the test began, except those
        matching a pattern of `allow` and the browser's own /favicon.ico
        request (made when a page names no icon; not the page's doing)."""
        out = []
        for e in self.drain():
            if e.get("level") != "SEVERE":
                continue
            if any(re.search(a, e.get("message", ""))
                   for a in tuple(allow) + (FAVICON,)):
                continue
            out.append(e)
        return out


# The page's one expected error on a signed-out boot: chromium logs the
# 401 of GET /auth/session (how the shell learns nobody is signed in).
SIGNED_OUT_BOOT = r"/auth/session - Failed to load resource: .* 401"
FAVICON = r"^\S+/favicon\.ico - Failed to load resource: "


@pytest.fixture(scope="module")
def browser(host):
    profile = tempfile.mkdtemp(prefix="nno-e2e-profile-")
    b = Browser(host, profile)
    yield b
    b.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser):
    """The module's browser, reset for this test."""
    browser.reset()
    return browser


# -- artifacts on failure -----------------------------------------------------

def _save_artifacts(item, b):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid.split("::", 1)[-1])
    out = os.path.join(ARTIFACTS, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    d = b.driver
    try:
        d.save_screenshot(os.path.join(out, "screenshot.png"))
    except WebDriverException:
        pass
    try:
        with open(os.path.join(out, "page.html"), "w") as f:
            f.write("<!-- %s -->\n" % d.current_url)
            f.write(d.page_source)
    except WebDriverException:
        pass
    with open(os.path.join(out, "console.log"), "w") as f:
        for e in b.drain():
            f.write("%s %s %s %s\n" % (e.get("timestamp"), e.get("level"),
                                       e.get("source", "-"),
                                       e.get("message")))
    try:
        shutil.copyfile(b.host.log_path, os.path.join(out, "host.log"))
    except OSError:
        pass
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when in ("setup", "call") and rep.failed:
        b = getattr(item, "funcargs", {}).get("page")
        if isinstance(b, Browser):
            out = _save_artifacts(item, b)
            rep.sections.append(("browser artifacts", out))
            print("\nbrowser artifacts: %s" % out)

