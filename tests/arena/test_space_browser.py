"""The Space in a real browser, as a person uses it: Debian's chromium driven by Playwright (headless, a fresh
profile, every request outside 127.0.0.1 refused). Type a speech, press Compare, wait until every column has
finished streaming, read the answers; see the crisis banner and held answers for a crisis speech; try an
example in one click; get two anonymous answers, vote, and see the names revealed. A crisis speech holds the
answers until the visitor presses "Show the research answers" and offers no vote; the input limit shows a
counter; an empty speech gives one message. Screenshots are saved."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from fault_server import serve_faults
from space_helpers import STYLES, launched, responder, space_config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it); never a Playwright download
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--host-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
SPEECH = "I moved here for work two years ago and I still don't have a single friend I could call."
CRISIS = "I've been hurting myself again and lately I think everyone would be better off without me."
WAIT = 30_000  # ms


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium before the tests")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    refused: list[str] = []

    def only_loopback(route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 1100})
        context.route("**/*", only_loopback)
        try:
            yield context.new_page(), refused
        finally:
            context.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("space")
    with serve_faults(responder=responder, token_delay=0.03) as backend:
        with launched(space_config(backend.url, tmp)) as (_, url):
            yield url, backend, tmp


def columns_done(page, ids: list[str]) -> None:
    for i in ids:
        page.locator(f"#{i}").get_by_text(" words · ").wait_for(timeout=WAIT)


def test_compare_vote_and_crisis_banner_in_the_browser(browser_page, site, tmp_path):
    page, refused = browser_page
    url, backend, tmp = site
    page.goto(url)
    page.get_by_text("not a substitute for professional help").wait_for(timeout=WAIT)

    # compare: type, press, wait for every column to finish streaming, read the answers
    page.locator("#speech textarea").fill(SPEECH)
    page.locator("#compare-btn").click()
    columns_done(page, [f"stats-{i}" for i in range(3)])
    for i, answer in enumerate(STYLES.values()):
        assert page.locator(f"#answer-{i}").inner_text().strip() == answer
    assert not page.locator("#crisis-banner").is_visible()
    page.screenshot(path=str(tmp_path / "space-compare.png"), full_page=True)

    # a crisis speech: the banner and resources first, the answers held until the visitor asks for them
    page.locator("#speech textarea").fill(CRISIS)
    page.locator("#compare-btn").click()
    banner = page.locator("#crisis-banner")
    banner.get_by_text("local emergency services").wait_for(timeout=WAIT)
    assert "988" in banner.inner_text() and "Samaritans 116 123" in banner.inner_text()
    page.locator("#stats-0").get_by_text("Answer held").wait_for(timeout=WAIT)
    show = page.locator("#show-answers")
    show.wait_for(timeout=WAIT)
    assert backend.calls(CRISIS) == [] and page.locator("#answer-0").inner_text().strip() == ""
    page.screenshot(path=str(tmp_path / "space-crisis-held.png"), full_page=True)
    backend.token_delay = 0.3
    show.click()  # asked explicitly: the answers stream below the banner, which stays above them
    page.locator("#stats-0").get_by_text("answering").wait_for(timeout=WAIT)
    assert banner.is_visible() and banner.bounding_box()["y"] < page.locator("#answer-0").bounding_box()["y"]
    backend.token_delay = 0.03
    columns_done(page, [f"stats-{i}" for i in range(3)])
    assert len(backend.calls(CRISIS)) == 3 and not show.is_visible()
    page.screenshot(path=str(tmp_path / "space-crisis.png"), full_page=True)

    # the input limit is visible: a counter, and a message when pasted text is cut
    page.locator("#speech textarea").fill("x" * 700)
    page.locator("#speech-count").get_by_text("600 / 600 characters: the limit").wait_for(timeout=WAIT)
    assert len(page.locator("#speech textarea").input_value()) == 600
    # an empty speech: one message, not "Error" in every column
    page.locator("#speech textarea").fill("")
    page.locator("#compare-btn").click()
    page.get_by_text("at least 10 characters").first.wait_for(timeout=WAIT)
    assert "Error" not in page.locator("#answer-0").inner_text() + page.locator("#stats-0").inner_text()

    # one click on an example fills the speech and compares
    page.get_by_text("Anxiety: I keep having these moments").first.click()  # the Compare tab's examples
    page.wait_for_function("document.querySelector('#speech textarea').value.startsWith('I keep having')",
                           timeout=WAIT)
    banner.wait_for(state="hidden", timeout=WAIT)  # the new comparison's first update: no crisis, columns reset
    columns_done(page, [f"stats-{i}" for i in range(3)])
    assert page.locator("#answer-0").inner_text().strip() == STYLES["warm"]

    # blind A/B: two anonymous answers, a vote, the names revealed
    page.get_by_role("tab", name="Blind A/B").click()
    page.locator("#ab-speech textarea").fill(SPEECH)
    page.locator("#ab-btn").click()
    columns_done(page, ["ab-stats-A", "ab-stats-B"])
    answers = [page.locator(f"#ab-answer-{s}").inner_text().strip() for s in "AB"]
    assert set(answers) <= set(STYLES.values()) and answers[0] != answers[1]
    assert "policy-" not in page.locator("body").inner_text().split("Blind A/B", 1)[-1].split("Your vote")[0]
    page.get_by_text("B is better").click()
    page.locator("#vote-btn").click()
    page.locator("#reveal").get_by_text("was saved").wait_for(timeout=WAIT)
    by_text = {v: f"policy-{k}" for k, v in STYLES.items()}
    reveal = page.locator("#reveal").inner_text()
    assert f"A was {by_text[answers[0]]}" in reveal and f"B was {by_text[answers[1]]}" in reveal
    assert page.locator("#vote-btn").is_disabled()
    page.screenshot(path=str(tmp_path / "space-vote.png"), full_page=True)
    vote = (tmp / "votes" / "votes.jsonl").read_text().splitlines()[-1]
    assert f'"chosen_model": "{by_text[answers[1]]}"' in vote

    # a crisis speech in the blind A/B tab: the banner, no answers, no vote offered
    page.locator("#ab-speech textarea").fill(CRISIS)
    page.locator("#ab-btn").click()
    page.locator("#ab-prompt").get_by_text("blind votes are not taken").wait_for(timeout=WAIT)
    assert page.locator("#ab-crisis-banner").is_visible() and page.locator("#vote-btn").is_disabled()
    assert CRISIS not in (tmp / "votes" / "votes.jsonl").read_text()

    assert all((tmp_path / f"space-{n}.png").stat().st_size > 10_000 for n in ("compare", "crisis-held", "crisis", "vote"))
    keep = os.environ.get("PSYCOPREF_SCREENSHOTS")  # a folder to keep the screenshots in (e.g. for a review)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in tmp_path.glob("space-*.png"):
            shutil.copy(png, Path(keep) / png.name)
    assert all(urlparse(u).hostname != "127.0.0.1" for u in refused)  # anything else was refused, never fetched
