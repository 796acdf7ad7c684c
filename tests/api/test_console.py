"""The web console at /console, driven end to end in headless Chromium against a real server.

The console signs every call in the browser (SigV4 with WebCrypto), so these tests are the proof
that its signatures, its paging and its error handling agree with the server, not only that the
page renders. Debian's chromium is used (``make browser``); Playwright never downloads one here.
Screenshots of each page land in tests/artifacts/console/<backend>/ for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import Backend
from tests.server import ALICE, RunningServer, running_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run `make browser`")

# Five vectors in 3-d; the query [0.9, 0.1, 0] is nearest to "a" (euclidean distance ~0.141).
VECTORS = [
    ("a", "[1, 0, 0]", '{"genre": "drama"}'),
    ("b", "[0, 1, 0]", '{"genre": "comedy"}'),
    ("c", "[0, 0, 1]", ""),
    ("d", "[1, 1, 0]", '{"genre": "drama", "note": "long text"}'),
    ("e", "[0, 1, 1]", ""),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser for the module: starting Chromium costs more than a whole console walk-through."""
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Console:
    """The page plus the few steps every test repeats; screenshots are numbered in the order taken."""

    def __init__(self, page: Any, srv: RunningServer, shots: Path) -> None:
        self.page = page
        self.srv = srv
        self.shots = shots
        self.n = 0
        page.on("dialog", lambda d: d.accept())  # the console's delete confirmations

    def shot(self, name: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(self.shots / f"{self.n:02d}-{name}.png"), full_page=True)

    def login(self, secret: str) -> None:
        self.page.fill("#login-key", ALICE.access_key_id)
        self.page.fill("#login-secret", secret)
        self.page.click("#login-submit")

    def rows(self, selector: str, attr: str) -> list[str]:
        return [str(el.get_attribute(attr)) for el in self.page.query_selector_all(f"{selector} tbody tr")]


@pytest.fixture
def shots(backend: Backend) -> Path:
    out = ARTIFACTS / backend.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"console screenshots: {out}")
    return out


def test_console_walkthrough(backend: Backend, browser: Any, shots: Path) -> None:
    expect = playwright_sync.expect
    with running_server(backend) as srv:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Chrome logs each 4xx answer as an error; anything else (a CSP refusal, say) is a bug.
        page.on(
            "console",
            lambda m: m.type == "error" and "Failed to load resource" not in m.text and errors.append(m.text),
        )
        page.set_default_timeout(10_000)
        ui = Console(page, srv, shots)

        page.goto(f"{srv.url}/console")  # redirected to /console/, where relative links resolve
        assert page.url == f"{srv.url}/console/"
        expect(page.locator("#login-form")).to_be_visible()
        ui.shot("login")

        ui.login("not-the-secret")
        expect(page.locator("#error")).to_contain_text("the secret access key is not right")
        expect(page.locator("#error")).to_contain_text("AccessDeniedException")
        assert page.evaluate("sessionStorage.length") == 0  # a refused key pair is not kept
        ui.shot("login-error")

        ui.login(ALICE.secret_access_key)
        expect(page.locator("#who-key")).to_have_text(ALICE.access_key_id)
        expect(page.locator("#bucket-list")).to_contain_text("No vector buckets yet")
        page.fill("#new-bucket", "films")
        page.click("#create-bucket")
        expect(page.locator("#bucket-list tr[data-bucket=films]")).to_be_visible()
        page.fill("#new-bucket", "Bad_Name")  # refused by the server, in plain words
        page.click("#create-bucket")
        expect(page.locator("#error")).to_contain_text("The server refused the input")
        ui.shot("buckets")

        page.click("#bucket-list a:text-is('films')")
        page.fill("#new-index", "posters")
        page.fill("#new-dimension", "3")
        page.select_option("#new-metric", "euclidean")
        page.fill("#new-nonfilterable", "note")
        page.click("#create-index")
        expect(page.locator("#index-list tr[data-index=posters]")).to_be_visible()
        ui.shot("indexes")

        page.click("#index-list a:text-is('posters')")
        expect(page.locator("#index-summary")).to_contain_text("euclidean")
        expect(page.locator("#index-summary")).to_contain_text("note")
        page.click("#tab-insert")
        for key, vector, metadata in VECTORS:
            page.fill("#put-key", key)
            page.fill("#put-vector", vector)
            page.fill("#put-metadata", metadata)
            page.click("#put-submit")
            expect(page.locator("#notice")).to_have_text(f"Inserted vector {key}.")
        page.fill("#put-key", "x")
        page.fill("#put-vector", "[1, 2]")  # caught before it is sent
        page.click("#put-submit")
        expect(page.locator("#error")).to_contain_text("dimension 3")
        ui.shot("insert")

        page.click("#tab-data")
        expect(page.locator("#vector-list tbody tr")).to_have_count(5)
        page.select_option("#page-size", "10")
        expect(page.locator("#page-next")).to_be_disabled()
        seen: list[str] = []
        page.evaluate("document.querySelector('#page-size').add(new Option('2 per page', '2'), 0)")
        page.select_option("#page-size", "2")
        for expected_rows in (2, 2, 1):
            expect(page.locator("#vector-list tbody tr")).to_have_count(expected_rows)
            expect(page.locator("#page-label")).to_contain_text(f"{expected_rows} vector")
            seen += ui.rows("#vector-list", "data-key")
            if expected_rows == 2:
                label = page.locator("#page-label").inner_text()
                page.click("#page-next")
                expect(page.locator("#page-label")).not_to_have_text(label)
        assert sorted(seen) == ["a", "b", "c", "d", "e"]
        expect(page.locator("#page-next")).to_be_disabled()
        page.click("#page-prev")
        expect(page.locator("#page-label")).to_contain_text("Page 2")
        page.select_option("#page-size", "25")
        expect(page.locator("#vector-list tbody tr")).to_have_count(5)
        expect(page.locator("#vector-list tr[data-key=d]")).to_contain_text('"note":"long text"')
        ui.shot("data")

        page.click("#tab-query")
        page.fill("#query-vector", "[0.9, 0.1, 0]")
        page.fill("#query-topk", "3")
        page.click("#query-submit")
        first = page.locator("#query-results tbody tr").first
        expect(first).to_have_attribute("data-key", "a")
        assert abs(float(first.locator("td.distance").inner_text()) - 0.141421) < 1e-3
        expect(page.locator("#query-results tbody tr")).to_have_count(3)
        page.fill("#query-filter", '{"genre": "comedy"}')
        page.click("#query-submit")
        expect(page.locator("#query-results tbody tr")).to_have_count(1)
        expect(page.locator("#query-results tbody tr").first).to_have_attribute("data-key", "b")
        page.fill("#query-filter", '{"genre": ')
        page.click("#query-submit")
        expect(page.locator("#error")).to_contain_text("The filter is not valid JSON")
        page.fill("#query-filter", "")
        page.click("#query-submit")
        expect(first).to_have_attribute("data-key", "a")
        ui.shot("query")

        page.click("#tab-data")
        page.click("#vector-list tr[data-key=c] button:text-is('Delete')")
        expect(page.locator("#notice")).to_have_text("Deleted vector c.")
        expect(page.locator("#vector-list tbody tr")).to_have_count(4)
        expect(page.locator("#vector-list tr[data-key=c]")).to_have_count(0)

        page.click("#tab-audit")
        expect(page.locator("#audit-list tr[data-op=DeleteVectors]")).to_have_count(1)
        puts = page.locator("#audit-list tr[data-op=PutVectors]")
        expect(puts).to_have_count(5)
        assert [puts.nth(i).get_attribute("data-seq") for i in range(5)] == ["0", "1", "2", "3", "4"]
        expect(page.locator("#audit-list tr[data-op=DeleteVectors]")).to_contain_text(ALICE.principal)
        expect(page.locator("#audit-list tr[data-op=DeleteVectors] td.keys")).to_have_text("c")
        page.fill("#audit-key", "c")  # only the records touching key c
        page.click("#audit-submit")
        expect(page.locator("#audit-list tbody tr")).to_have_count(2)
        page.fill("#audit-key", "")
        page.click("#audit-submit")
        expect(puts).to_have_count(5)
        ui.shot("audit")

        page.click("#audit-list tr[data-seq='1'] a:text-is('Restore to here')")  # after a and b
        expect(page.locator("#restore-seq")).to_have_value("1")
        expect(page.locator("#restore-into")).to_have_value("posters-at-1")
        page.check("#restore-by-time")
        expect(page.locator("#restore-seq")).to_be_disabled()
        page.fill("#restore-time", "yesterday")
        page.fill("#restore-into", "posters-now")
        page.click("#restore-submit")
        expect(page.locator("#error")).to_contain_text("is not an ISO 8601 time")
        page.fill("#restore-time", "2999-01-01T00:00:00Z")  # the latest state: a, b, d, e
        page.click("#restore-submit")
        expect(page.locator("#notice")).to_have_text("Restored posters as of seq 5 into posters-now.")
        page.check("#restore-by-seq")
        page.fill("#restore-into", "posters-at-1")
        page.click("#restore-submit")
        expect(page.locator("#notice")).to_have_text("Restored posters as of seq 1 into posters-at-1.")
        ui.shot("restore")
        page.click("#restore-submit")  # the name is taken now
        expect(page.locator("#error")).to_contain_text("conflicts")
        page.click("#open-restored")
        expect(page.locator("#crumbs")).to_contain_text("posters-at-1")
        expect(page.locator("#vector-list tbody tr")).to_have_count(2)
        assert sorted(ui.rows("#vector-list", "data-key")) == ["a", "b"]
        expect(page.locator("#vector-list tr[data-key=a]")).to_contain_text('"genre":"drama"')
        ui.shot("restored-data")

        page.click("#crumbs a:text-is('films')")
        expect(page.locator("#index-list tbody tr")).to_have_count(3)
        page.click("#index-list tr[data-index=posters-at-1] button:text-is('Delete')")
        expect(page.locator("#index-list tbody tr")).to_have_count(2)

        page.click("#crumbs a:text-is('Vector buckets')")
        page.fill("#new-bucket", "scratch")
        page.click("#create-bucket")
        page.click("#bucket-list tr[data-bucket=scratch] button:text-is('Delete')")
        expect(page.locator("#notice")).to_have_text("Deleted vector bucket scratch.")
        expect(page.locator("#bucket-list tbody tr")).to_have_count(1)

        page.click("#sign-out")
        expect(page.locator("#login-form")).to_be_visible()
        assert page.evaluate("sessionStorage.length") == 0
        assert errors == []
        context.close()

    # What the console did is what the API holds: boto3 sees the same data.
    with running_server(backend) as srv:
        got = srv.s3vectors().list_vectors(vectorBucketName="films", indexName="posters")["vectors"]
        assert sorted(v["key"] for v in got) == ["a", "b", "d", "e"]
