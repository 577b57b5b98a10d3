"""The page of ``strangers web`` in a real browser: two headless Chromium windows, two
``strangers web`` processes and one ``strangers serve`` seed on 127.0.0.1, driven as two people
would: interests and language, Start, match, typing, messages both ways, save the log, keep in
touch, Stop / Really? (Esc Esc), New, and a stranger who goes away; and question mode's strangers'
side (a page that discusses the question of a ``strangers ask``).

Screenshots: written to ``docs/img/web-*.png`` when ``STRANGERS_SCREENSHOTS=1`` (to refresh the
ones kept in the repository), otherwise to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webproc import WebProcess  # noqa: E402

from strangers.testing import chat, serve  # noqa: E402

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="Chromium is not installed (apt-get install -y chromium chromium-driver)"),
]

MATCH_TIMEOUT = 30.0
STEP_TIMEOUT = 10.0
REPO_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"


class Page:
    """One person's browser window on one ``strangers web``."""

    def __init__(self, driver, name: str, shots: Path) -> None:
        self.driver = driver
        self.name = name
        self.shots = shots

    def __getitem__(self, element_id: str):
        return self.driver.find_element(By.ID, element_id)

    def log(self) -> str:
        return self["log"].text

    def wait(self, what: Callable[[], object], timeout: float = STEP_TIMEOUT, about: str = "") -> object:
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda _driver: what())
        except TimeoutException:
            raise AssertionError(f"{self.name}: waited {timeout} s for {about}; log:\n{self.log()}") from None

    def wait_log(self, text: str, timeout: float = STEP_TIMEOUT) -> None:
        self.wait(lambda: text in self.log(), timeout, repr(text))

    def add_interests(self, *interests: str) -> None:
        box = self["interest-input"]
        for interest in interests:
            box.send_keys(interest, Keys.ENTER)

    def press(self, key: str) -> None:
        self.driver.find_element(By.TAG_NAME, "body").send_keys(key)

    def in_view(self, element_id: str) -> bool:
        """Whether the element is shown inside the window (nobody has to scroll to it)."""
        return self.driver.execute_script(
            "const box = document.getElementById(arguments[0]).getBoundingClientRect();"
            "return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;", element_id)

    def log_at_bottom(self) -> bool:
        return self.driver.execute_script(
            "const log = document.getElementById('log');"
            "return log.scrollHeight - log.scrollTop - log.clientHeight < 2;")

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"web-{name}.png"))


@pytest.fixture
def shots(tmp_path) -> Path:
    if os.environ.get("STRANGERS_SCREENSHOTS"):
        REPO_IMAGES.mkdir(parents=True, exist_ok=True)
        return REPO_IMAGES
    return tmp_path


@pytest.fixture
def browsers(monkeypatch) -> Iterator[Callable[..., object]]:
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_AVOID_STATS", "true")  # Selenium Manager is not used (paths given), and quiet if it were

    started = []

    def launch(*extra: str):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=900,760", "--no-first-run", "--disable-extensions",
                     # nothing but our pages: no update checks, pings, metrics or phishing lookups
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-domain-reliability", "--disable-client-side-phishing-detection",
                     "--no-pings", "--disable-default-apps", "--lang=en-US"):
            options.add_argument(flag)
        for flag in extra:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        started.append(driver)
        return driver

    yield launch
    for driver in started:
        driver.quit()


@pytest.fixture
def webs() -> Iterator[list[WebProcess]]:
    started: list[WebProcess] = []
    yield started
    for web in started:
        web.stop()


def test_two_people_chat_in_their_browsers(procs, webs, browsers, shots, tmp_path, monkeypatch):
    monkeypatch.setenv("STRANGERS_SAVE_DIR", str(tmp_path / "saved"))  # "Save the log" writes here
    seed, addr = serve()
    procs.append(seed)
    web_a = WebProcess(bootstrap=addr)
    webs.append(web_a)
    words = tmp_path / "words.txt"
    words.write_text("broccoli\n")
    web_b = WebProcess("-i", "jazz", "--filter-words", str(words), bootstrap=addr)  # -i: interests given
    webs.append(web_b)
    a = Page(browsers(), "A", shots)
    b = Page(browsers(), "B", shots)
    a.driver.get(web_a.wait_url())
    b.driver.get(web_b.wait_url())

    # the front page: interests are edited before Start (B's came from -i, and can be added to)
    b.wait(lambda: [chip.text.rstrip("×").strip() for chip in b.driver.find_elements(By.CSS_SELECTOR, ".chip")]
           == ["jazz"], about="the -i interest as a chip")
    a.add_interests("Cinema")
    b.add_interests("cinema")
    a.wait(lambda: a.driver.find_elements(By.CSS_SELECTOR, ".chip"), about="a chip for the interest")
    # the language: the node's (--lang or the locale) on the front page, changeable before Start
    a.wait(lambda: len(Select(a["lang"]).options) > 30, about="the languages")
    Select(a["lang"]).select_by_value("fr")
    Select(b["lang"]).select_by_value("fr")
    assert a["input"].get_attribute("disabled") is not None  # nothing to type into before a chat
    a.shot("front")

    a["start"].click()
    a.wait_log("Looking for someone you can chat with... (French (fr) speakers first)", MATCH_TIMEOUT)
    assert a["stop"].text.startswith("Stop")
    a.shot("searching")
    b["start"].click()

    # matched: common interests, the same safety code on both pages, how the bytes travel
    a.wait_log("You both like cinema.", MATCH_TIMEOUT)
    b.wait_log("You both like cinema.", MATCH_TIMEOUT)
    assert a["safety-code"].text and a["safety-code"].text == b["safety-code"].text
    assert a["path"].text == "direct connection"
    assert "Stranger has disconnected" not in a.log()
    a.wait_log("The stranger speaks French (fr).")

    # typing, then messages both ways
    a["input"].send_keys("hello from a")
    b.wait(lambda: b["typing"].is_displayed(), about="'Stranger is typing...'")
    b.shot("typing")
    a["input"].send_keys(Keys.ENTER)
    b.wait_log("Stranger: hello from a")
    a.wait_log("You: hello from a")
    a.wait(lambda: a.driver.find_elements(By.CSS_SELECTOR, "#log .said.you.delivered"), about="delivered mark")
    b.wait(lambda: not b["typing"].is_displayed(), about="typing to stop with the message")
    assert a["input"].get_attribute("value") == ""
    b["input"].send_keys("héllo back <b>not bold</b>")
    b["send"].click()
    a.wait_log("Stranger: héllo back <b>not bold</b>")  # text, never HTML
    assert not a.driver.find_elements(By.CSS_SELECTOR, "#log b")
    a.shot("chat")

    # "Great chat? Save the log" writes the conversation, only when pressed
    assert not (tmp_path / "saved").exists()
    a["save"].click()
    a.wait_log("The conversation is saved in ")
    saved = list((tmp_path / "saved").iterdir())
    assert len(saved) == 1 and "héllo back <b>not bold</b>" in saved[0].read_text(encoding="utf-8")
    assert str(saved[0]) in a.log()

    # Keep in touch, by mutual consent: A offers, B is asked and agrees with the button in its log
    a["keep"].click()
    a.wait_log("You offered to keep in touch. Nothing is exchanged unless the stranger agrees.")
    b.wait_log("Stranger wants to keep in touch: Keep")
    assert "kept in touch" not in a.log()
    b.shot("keep")
    b.driver.find_element(By.CSS_SELECTOR, "#log .keep button").click()
    # (both pages share the test's data directory: the second contact saved there is "stranger-2")
    for page in (a, b):
        page.wait_log('You kept in touch: the stranger is saved as "stranger')
        page.wait_log('Run "strangers contact stranger')

    # B's safety tools on the page: a warning before a link, a hidden word, Show it, Report
    a["input"].send_keys("add me on example.com/me", Keys.ENTER)
    b.wait_log("Careful: the next message holds a link.")
    b.wait_log("Stranger: add me on example.com/me")
    a["input"].send_keys("I love broccoli", Keys.ENTER)
    b.wait_log("Stranger: [a message hidden by your word filter]")
    assert "I love broccoli" not in b.log()
    b.driver.find_element(By.CSS_SELECTOR, "#log .hidden button").click()
    b.wait_log("Stranger (revealed): I love broccoli")
    b["report"].click()
    b.wait_log("Report saved in ")
    b.shot("safety")

    # Stop with Omegle's confirm-once habit: Esc says "Really?", a second Esc leaves
    b.press(Keys.ESCAPE)
    b.wait(lambda: b["stop"].text.startswith("Really?"), about="'Really?'")
    assert "disconnected" not in a.log()
    b.shot("really")
    b.press(Keys.ESCAPE)
    b.wait_log("You have disconnected.")
    a.wait_log("Stranger has disconnected.")
    a.wait(lambda: a["stop"].text.startswith("New"), about="the New button")
    assert a["input"].get_attribute("disabled") is not None
    # after a chat: the log's end and New in sight (the interests come back between them), the log
    # can still be saved and the stranger reported, but not kept in touch with nor blocked
    a.wait(lambda: a.in_view("stop") and a.log_at_bottom(), about="New and the log's end in sight")
    assert a["save"].is_displayed() and a["report"].is_displayed()
    assert not a["keep"].is_displayed() and not a["block"].is_displayed()
    a.shot("disconnected")

    # B changes its language after the chat and presses New: the same node, searching in the new lane;
    # then Stop (Esc, Esc) so that B keeps out of what follows
    Select(b["lang"]).select_by_value("de")
    b["stop"].click()
    b.wait_log("Looking for someone you can chat with... (German (de) speakers first)")
    b.press(Keys.ESCAPE)
    b.press(Keys.ESCAPE)
    b.wait_log("You stopped looking.")

    # New, with one more interest (the page reopens its node with them): a third stranger, who
    # likes cinema too, arrives (the two who just parted do not meet again at once, §5.4)
    a.add_interests("jazz")
    Select(a["lang"]).select_by_value("")  # any language: the third stranger told none
    third = chat(addr, "-i", "cinema")
    procs.append(third)
    third.wait_for("ready", timeout=MATCH_TIMEOUT)
    a.press(Keys.ESCAPE)  # Esc on a finished chat is New
    a.wait_log("You both like cinema.", MATCH_TIMEOUT)
    assert third.wait_for("matched", timeout=STEP_TIMEOUT)["common_interests"] == ["cinema"]
    a["input"].send_keys("again", Keys.ENTER)
    assert third.wait_for("message")["text"] == "again"
    third.send({"cmd": "send", "text": "hi from a terminal"})
    a.wait_log("Stranger: hi from a terminal")

    # the stranger goes away (their strangers stops): the page says so
    third.close_stdin()
    a.wait_log("Stranger has disconnected.", MATCH_TIMEOUT)
    a.wait(lambda: a["stop"].text.startswith("New"), about="the New button")
    assert "You have disconnected." not in a.log()
    assert web_a.stop() == 0  # SIGTERM: a clean stop


EVIL_PAGE = """<!doctype html><title>running</title><script>
const results = {};
function done(name, value) {
  results[name] = value;
  if (Object.keys(results).length === 3) document.title = JSON.stringify(results);
}
const socket = new WebSocket("ws://127.0.0.1:PORT/ws?t=TOKEN");
socket.onopen = () => { done("websocket", "open"); socket.send('{"cmd": "start", "interests": []}'); };
socket.onclose = () => { if (!("websocket" in results)) done("websocket", "refused"); };
fetch("http://127.0.0.1:PORT/?t=TOKEN").then((r) => r.text()).then(
  (text) => done("fetch", "read " + text.length), () => done("fetch", "refused"));
fetch("http://127.0.0.1:PORT/?t=TOKEN", {mode: "no-cors"}).then(
  () => done("no-cors", "sent"), () => done("no-cors", "refused"));
</script>"""


def test_other_sites_cannot_use_the_page_even_knowing_its_token(procs, webs, browsers, tmp_path):
    """Another site (another port of 127.0.0.1, the same *site* to a browser) that knows the URL,
    token included, cannot open the WebSocket nor read the page; a rebound name
    (``rebound.test`` resolving to 127.0.0.1) gets 403 even with the token."""
    import functools
    import http.server
    import threading

    web = WebProcess()
    webs.append(web)
    web.wait_url()
    (tmp_path / "index.html").write_text(
        EVIL_PAGE.replace("PORT", str(web.port)).replace("TOKEN", web.token))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        driver = browsers("--host-resolver-rules=MAP rebound.test 127.0.0.1")
        page = Page(driver, "evil", tmp_path)
        driver.get(f"http://127.0.0.1:{evil.server_address[1]}/index.html")
        page.wait(lambda: driver.title.startswith("{"), about="the other site's attempts")
        import json

        results = json.loads(driver.title)
        assert results["websocket"] == "refused"
        assert results["fetch"] == "refused"
        # (a no-cors request is sent but its answer is opaque to the site; ours is a 403 anyway)

        driver.get(f"http://rebound.test:{web.port}/?t={web.token}")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "wrong Host" in body and not driver.find_elements(By.ID, "log")
    finally:
        evil.shutdown()


def test_question_mode_in_the_browser(procs, webs, browsers, shots, tmp_path, monkeypatch):
    """Omegle's question ("spy") mode on the page, both sides: one page asks a question and watches;
    a page that ticked "Discuss questions" sees the question and that someone watches, and talks
    with a terminal stranger through the watcher, who cannot type; the watcher saves the log."""
    monkeypatch.setenv("STRANGERS_SAVE_DIR", str(tmp_path / "saved"))  # the watcher's "Save the log"
    seed, addr = serve()
    procs.append(seed)
    web_w = WebProcess("--interests-only", bootstrap=addr)
    web_b = WebProcess("-i", "films", "--interests-only", bootstrap=addr)
    webs += [web_w, web_b]
    terminal = chat(addr, "-i", "books", "--interests-only", "--questions", "--lang", "fr")
    procs.append(terminal)
    w = Page(browsers(), "watcher", shots)
    b = Page(browsers(), "B", shots)
    w.driver.get(web_w.wait_url())
    b.driver.get(web_b.wait_url())

    b.wait(lambda: b.driver.find_elements(By.CSS_SELECTOR, ".chip"), about="the -i interest as a chip")
    b["questions"].click()  # "Discuss questions": opt in
    b["start"].click()
    w.add_interests("books", "films")
    w["question-input"].send_keys("Tea or coffee?")
    w["ask"].click()
    w.wait_log("Question to discuss: Tea or coffee?", MATCH_TIMEOUT)
    try:
        w.wait(lambda: "Stranger 1 has joined" in w.log() and "Stranger 2 has joined" in w.log(), MATCH_TIMEOUT,
               "both strangers")
    except AssertionError as exc:
        while terminal._pull(0.01):
            pass
        raise AssertionError(f"{exc}\nthe terminal stranger's events: {terminal.events}") from None
    assert "speaks French (fr)" in w.log()
    assert w["input"].get_attribute("disabled") is not None  # the watcher cannot type

    b.wait_log("Question to discuss: Tea or coffee?", MATCH_TIMEOUT)
    b.wait_log("Someone is watching")
    assert not b["keep"].is_displayed()  # keeping in touch is for one-to-one chats
    assert terminal.wait_for("matched", timeout=MATCH_TIMEOUT)["question"] == "Tea or coffee?"
    terminal.send({"cmd": "send", "text": "tea, obviously"})
    b.wait_log("Stranger: tea, obviously")
    w.wait(lambda: "Stranger 1: tea, obviously" in w.log() or "Stranger 2: tea, obviously" in w.log(),
           about="the terminal's message, labelled")
    b["input"].send_keys("coffee")
    w.wait(lambda: w["typing"].is_displayed() and "is typing" in w["typing"].text, about="typing, labelled")
    b["input"].send_keys(Keys.ENTER)
    assert terminal.wait_for("message")["text"] == "coffee"
    w.wait(lambda: "Stranger 1: coffee" in w.log() or "Stranger 2: coffee" in w.log(), about="B's message")
    b.shot("question")
    w.shot("watching")

    # B leaves (Esc, Esc): the watcher's question is over, the terminal stranger is told
    b.press(Keys.ESCAPE)
    b.press(Keys.ESCAPE)
    b.wait_log("You have disconnected.")
    w.wait(lambda: w["stop"].text.startswith("New"), about="the New button")
    assert w.log().count("has disconnected.") >= 1
    w.wait_log("The question is over. New asks it again, to two new strangers.")
    assert terminal.wait_for("stranger_left", timeout=STEP_TIMEOUT)["by_us"] is False

    # the watcher saves the log: both strangers' words, labelled
    w["save"].click()
    w.wait_log("The conversation is saved in ")
    [saved] = list((tmp_path / "saved").iterdir())
    text = saved.read_text(encoding="utf-8")
    assert "Tea or coffee?" in text and "tea, obviously" in text and "coffee" in text
    assert "Stranger 1" in text and "Stranger 2" in text
