"""The web app in a real browser: Debian's Chromium, headless, driven by Playwright.

A small real index is built first: a tiny SynthUCF main set and moments set, ingested
by the real pipeline with the tiny untrained CLIP into a Qdrant Edge store. The app is
served by werkzeug on 127.0.0.1 (a free port) in a thread. Each test saves a screenshot
under ``var/test-artifacts/browser/`` (or ``$CLIPSEARCH_ARTIFACTS``).

Playwright never downloads a browser here (no ``playwright install``): it launches
``/usr/bin/chromium`` (``$CLIPSEARCH_CHROMIUM`` overrides it; ``make browser-deps``
installs it). Without Playwright or Chromium the tests skip, except under CI (``$CI``
set), where they fail.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import av
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CLIPSEARCH_CHROMIUM", "/usr/bin/chromium")
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
PAGE_K = 3  # results per page: the 5 clips make two pages
# The untrained model scores every window of a clip alike (each moment is the whole
# clip), so one moment is planted: this query's embedding becomes window 5 (5-7 s) of
# the 9.4 s moments clip, whose other windows are made orthogonal to it.
PLANTED_QUERY = "a red triangle rising"
PLANTED_PATH = "m_0002.avi"
PLANTED_WINDOW = 5
# A sequence is planted the same way in the 6.6 s moments clip (windows [0, 2], [1, 3],
# ..., [4, 6], [4.6, 6.6]): the first step's embedding is window 1, the second's
# window 4, the other windows orthogonal to both.
SEQUENCE_STEPS = ("a green circle shrinking", "a blue square growing")
SEQUENCE_PATH = "m_0001.avi"
SEQUENCE_WINDOWS = (1, 4)
TIMEOUT_MS = 30_000  # the first request of a preview transcodes it


def artifacts_dir() -> Path:
    path = Path(os.environ.get("CLIPSEARCH_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    if "CLIPSEARCH_ARTIFACTS" not in os.environ:
        path = path / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI, where a silently skipped browser suite would hide a gap."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------- the served app


@dataclass
class Served:
    url: str
    clip_ids: list[str]
    data: Path
    planted: str  # the id of the clip with the planted moment
    sequence: str  # the id of the clip with the planted sequence


@pytest.fixture(scope="module")
def served(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real index (5 clips: 3 SynthUCF clips and 2 moments clips) served over HTTP."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from clipsearch.data.collection import load_collection
    from clipsearch.data.synth import generate, generate_moments
    from clipsearch.model import load_model
    from clipsearch.pipeline.runner import IngestOptions, ingest
    from clipsearch.search import SearchService
    from clipsearch.store.base import clip_id
    from clipsearch.store.edge import QdrantEdgeStore
    from webapp import create_app
    from webapp.settings import Settings

    root = tmp_path_factory.mktemp("browser")
    generate(root / "synthucf", classes=3, groups=1, clips=1, workers=2, moments=False)
    generate_moments(root / "moments", classes=4, moments_per_class=1, long_videos=0, workers=2)
    encoder = load_model(tiny_model_dir, towers="both")
    store = QdrantEdgeStore(root / "store")
    media = root / "media"
    ids: list[str] = []
    for folder in ("synthucf", "moments"):
        collection = load_collection(root / folder)
        options = IngestOptions(media_dir=media, workers=2)
        report = ingest(collection, encoder, store, options)
        assert report.ok and not report.failed, report.summary()
        ids += [clip_id(c.path) for c in collection.clips]
    assert store.count() == len(ids) == 5
    ids.sort()
    planted = plant_moment(store, encoder.encode_text([PLANTED_QUERY])[0])
    sequence = plant_sequence(store, [encoder.encode_text([s])[0] for s in SEQUENCE_STEPS])
    settings = Settings(model=str(tiny_model_dir), media_dir=str(media), default_k=PAGE_K)
    app = create_app(settings, search=SearchService(encoder, store))

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any) -> None:  # errors are still logged
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="clipsearch-test-server")
    thread.daemon = True
    thread.start()
    yield Served(f"http://127.0.0.1:{server.server_port}", ids, root, planted, sequence)
    server.shutdown()
    thread.join(timeout=10)
    store.close()


def plant_moment(store: Any, query: Any) -> str:
    """Make ``query`` the best window, by far, of the stored ``PLANTED_PATH``."""
    import numpy as np

    from clipsearch.store.base import ClipPoint, clip_id

    pid = clip_id(PLANTED_PATH)
    point = store.retrieve([pid], with_vectors=True)[pid]
    q = np.asarray(query, dtype=np.float32)
    windows = np.array(point.windows, dtype=np.float32)
    assert len(windows) == len(point.payload["segment_times"]) > PLANTED_WINDOW + 1
    windows -= np.outer(windows @ q, q)
    windows /= np.linalg.norm(windows, axis=1, keepdims=True)
    windows[PLANTED_WINDOW] = q
    store.upsert([ClipPoint(pid, point.pooled, windows, point.payload)])
    return pid


def plant_sequence(store: Any, steps: list[Any]) -> str:
    """Make each step's vector a window of ``SEQUENCE_PATH`` (``SEQUENCE_WINDOWS``), in
    order, and every other window orthogonal to all of them."""
    import numpy as np

    from clipsearch.store.base import ClipPoint, clip_id

    pid = clip_id(SEQUENCE_PATH)
    point = store.retrieve([pid], with_vectors=True)[pid]
    basis, _ = np.linalg.qr(np.stack(steps).astype(np.float32).T)
    windows = np.array(point.windows, dtype=np.float32)
    assert len(windows) == len(point.payload["segment_times"]) > max(SEQUENCE_WINDOWS)
    windows -= (windows @ basis) @ basis.T
    windows /= np.linalg.norm(windows, axis=1, keepdims=True)
    for index, step in zip(SEQUENCE_WINDOWS, steps, strict=True):
        windows[index] = step
    store.upsert([ClipPoint(pid, point.pooled, windows, point.payload)])
    return pid


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[dev]'")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(
            f"no Chromium at {CHROMIUM}: run `make browser-deps` (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            unavailable(f"Chromium at {CHROMIUM} does not start: {exc.message.splitlines()[0]}")
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page plus what went wrong in it: script errors and CSP violations."""

    page: Any
    base: str
    problems: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, name: str) -> Path:
        path = artifacts_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path


@pytest.fixture
def tab(browser: Any, served: Served, request: pytest.FixtureRequest) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    tab = Tab(page, served.url)
    page.on("pageerror", lambda exc: tab.problems.append(f"script error: {exc}"))

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            tab.problems.append(f"console: {message.text}")

    page.on("console", on_console)
    yield tab
    if not tab.shots:  # it failed before its own screenshot: keep what the page showed
        tab.shot(request.node.name)
    context.close()
    assert tab.problems == []


def search_box(tab: Tab, query: str) -> None:
    """Type a query into the box and submit it like a person."""
    box = tab.page.get_by_role("searchbox", name="Search videos")
    box.fill(query)
    with tab.page.expect_navigation():
        box.press("Enter")


def cards(tab: Tab) -> Any:
    return tab.page.locator("li.card.result")


def png_of_a_frame(video: Path, dest: Path) -> Path:
    """The first frame of ``video`` as a PNG (an image query a person could make)."""
    with av.open(str(video)) as container:
        frame = next(container.decode(video=0))
        frame.to_image().save(dest, format="PNG")
    return dest


# ---------------------------------------------------------------- search and results

POSTERS_LOADED = """async (videos) => Promise.all(videos.map(v => new Promise(resolve => {
  const img = new Image();
  img.onload = () => resolve({src: v.poster, width: img.naturalWidth});
  img.onerror = () => resolve({src: v.poster, width: 0});
  img.src = v.poster;
})))"""


def test_search_from_the_box_shows_cards_with_posters(tab: Tab, served: Served) -> None:
    tab.goto("/")
    assert tab.page.locator(".notice.intro").is_visible()
    search_box(tab, "a ball bouncing")
    assert tab.page.url.startswith(served.url + "/?q=a+ball+bouncing")
    results = cards(tab)
    assert results.count() == PAGE_K
    ids = results.evaluate_all("els => els.map(e => e.dataset.id)")
    assert set(ids) <= set(served.clip_ids)
    # each <video> fetched its poster (200) ...
    videos = tab.page.locator("li.card.result video")
    poster_urls = videos.evaluate_all("vs => vs.map(v => v.poster)")
    fetched = tab.page.evaluate(
        "() => Object.fromEntries(performance.getEntriesByType('resource')"
        ".map(e => [e.name, e.responseStatus]))"
    )
    assert [fetched.get(url) for url in poster_urls] == [200] * PAGE_K, fetched
    # ... and it decodes to a real picture
    posters = videos.evaluate_all(POSTERS_LOADED)
    assert all(p["width"] > 0 for p in posters), posters
    assert tab.page.locator("p.summary").inner_text().startswith("Clips for “a ball bouncing”")
    tab.shot("search-results")


def test_window_strip_has_one_winner_and_thumbnails(tab: Tab) -> None:
    tab.goto("/?q=a+box+spinning&k=5")
    results = cards(tab)
    assert results.count() == 5
    strips = 0
    for i in range(results.count()):
        card = results.nth(i)
        if card.locator("ol.strip").count() == 0:
            continue
        strips += 1
        assert card.locator(".seg.win").count() == 1
        title = card.locator(".seg.win").get_attribute("title")  # "5.0–7.0 s · 1.000"
        start, end = (float(x) for x in title.split(" s")[0].split("–"))
        moment = float(card.get_attribute("data-start")), float(card.get_attribute("data-end"))
        assert moment[0] - 0.05 <= (start + end) / 2 <= moment[1] + 0.05, (title, moment)
    assert strips >= 2  # the moments clips (6.6 s and 9.4 s) have 6 and 9 windows
    first_strip = tab.page.locator("ol.strip").first
    first_strip.scroll_into_view_if_needed()
    tab.page.wait_for_function(
        "strip => [...strip.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)",
        arg=first_strip.element_handle(),
    )
    tab.shot("segment-strip")


def planted_card(tab: Tab, served: Served) -> Any:
    """Search the planted query: its clip comes first, its moment well inside the clip."""
    tab.goto("/?q=" + PLANTED_QUERY.replace(" ", "+"))
    card = cards(tab).first
    assert card.get_attribute("data-id") == served.planted
    start, end = float(card.get_attribute("data-start")), float(card.get_attribute("data-end"))
    window = card.locator("button.seg").nth(PLANTED_WINDOW)
    assert "win" in (window.get_attribute("class") or "").split()
    assert 4.5 <= start < end <= 7.5, (start, end)  # around the planted window, 5-7 s
    return card


def moment_of(card: Any) -> tuple[float, float]:
    return float(card.get_attribute("data-start")), float(card.get_attribute("data-end"))


PLAY_AND_WAIT = """async (v) => {
  v.muted = true;
  const playing = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
      `no playback: readyState ${v.readyState}, error ${v.error && v.error.code}`)), 25000);
    v.addEventListener('timeupdate', () => { clearTimeout(timer); resolve(); }, {once: true});
  });
  await v.play();
  await playing;
  return {currentTime: v.currentTime, width: v.videoWidth, src: v.currentSrc};
}"""

WAIT_FOR_TIME = """(v, [low, high]) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(
    `currentTime ${v.currentTime} not in [${low}, ${high}], readyState ${v.readyState}`)), 25000);
  const check = () => {
    if (!v.seeking && v.readyState >= 2 && v.currentTime >= low && v.currentTime <= high) {
      clearTimeout(timer);
      resolve(v.currentTime);
    } else requestAnimationFrame(check);
  };
  check();
})"""


def test_playing_a_result_starts_inside_its_moment(tab: Tab, served: Served) -> None:
    card = planted_card(tab, served)
    start, end = moment_of(card)
    video = card.locator("video")
    src = video.locator("source").get_attribute("src")
    assert src.endswith(f"#t={start:.2f},{end:.2f}")
    state = video.evaluate(PLAY_AND_WAIT)  # H.264 preview, transcoded on this first request
    assert state["width"] > 0 and state["src"].endswith(src), state
    assert start - 0.05 <= state["currentTime"] <= end + 0.05, (start, end, state)
    # the media fragment ends playback at the moment's end
    at_end = video.evaluate(WAIT_FOR_TIME, [start, end + 0.1])
    assert start <= at_end <= end + 0.1
    card.scroll_into_view_if_needed()
    tab.shot("playing-moment")


def test_clicking_a_window_seeks_to_it(tab: Tab, served: Served) -> None:
    card = planted_card(tab, served)
    buttons = card.locator("button.seg")
    starts = [float(s) for s in buttons.evaluate_all("bs => bs.map(b => b.dataset.start)")]
    target = 2  # 2-4 s, before the moment
    assert starts[target] == 2.0
    buttons.nth(target).click()  # seeks and plays (a click may start playback)
    video = card.locator("video")
    now = video.evaluate(WAIT_FOR_TIME, [starts[target] - 0.05, starts[target] + 1.0])
    assert starts[target] - 0.05 <= now <= starts[target] + 1.0
    assert buttons.nth(target).get_attribute("class") == "seg here"
    assert card.locator("button.seg.here").count() == 1
    assert card.locator("button.seg.win").count() == 1  # the winner stays marked
    # another window moves the mark and the player again
    buttons.nth(7).click()
    now = video.evaluate(WAIT_FOR_TIME, [starts[7] - 0.05, starts[7] + 1.0])
    assert card.locator("button.seg.here").count() == 1
    assert "here" in (buttons.nth(7).get_attribute("class") or "")
    card.scroll_into_view_if_needed()
    tab.shot("segment-seek")


def test_a_sequence_result_shows_both_moments_and_seeks_to_the_second(
    tab: Tab, served: Served
) -> None:
    tab.goto("/")
    search_box(tab, " then ".join(SEQUENCE_STEPS))
    card = cards(tab).first
    assert card.get_attribute("data-id") == served.sequence
    steps = card.locator("ol.sequence button.step")
    assert steps.count() == 2
    spans = []
    for label in steps.all_inner_texts():  # "1. 1.0–3.0 s"
        match = re.fullmatch(r"(\d)\. (\d+\.\d)–(\d+\.\d) s", label.strip())
        assert match, label
        spans.append((float(match[2]), float(match[3])))
    (a_start, a_end), (b_start, b_end) = spans
    assert (a_start, a_end) == (1.0, 3.0) and (b_start, b_end) == (4.0, 6.0)
    text = card.locator("ol.sequence").inner_text()
    assert "→" in text and all(step in text for step in SEQUENCE_STEPS)
    assert text.index(SEQUENCE_STEPS[0]) < text.index(SEQUENCE_STEPS[1])
    assert card.locator("button.seg.win").count() == 2
    # the player opens at the first moment and plays through the second
    video = card.locator("video")
    assert float(video.get_attribute("data-start")) == a_start
    assert video.locator("source").get_attribute("src").endswith(f"#t={a_start:.2f},{b_end:.2f}")
    steps.nth(1).click()  # jump to the second moment
    now = video.evaluate(WAIT_FOR_TIME, [b_start - 0.05, b_end + 0.1])
    assert b_start - 0.05 <= now <= b_end + 0.1
    card.scroll_into_view_if_needed()
    tab.shot("sequence-result")


def test_more_like_this_opens_the_clip_page(tab: Tab, served: Served) -> None:
    card = planted_card(tab, served)
    start, _ = moment_of(card)
    with tab.page.expect_navigation():
        card.get_by_role("link", name="More like this").click()
    assert f"/clips/{served.planted}?t=" in tab.page.url
    assert tab.page.locator("article.clip-page").get_attribute("data-id") == served.planted
    assert tab.page.locator("h2.section").inner_text() == "Similar clips"
    similar = tab.page.locator("ol.similar li.card.result")
    assert similar.count() == 4  # every other clip
    ids = similar.evaluate_all("els => els.map(e => e.dataset.id)")
    assert sorted([*ids, served.planted]) == served.clip_ids
    posters = similar.locator("video").evaluate_all(POSTERS_LOADED)
    assert all(p["width"] > 0 for p in posters)
    # the big player opens at the moment (preload="metadata", then a seek to ?t=)
    player = tab.page.locator("video.player.big")
    t = player.evaluate(WAIT_FOR_TIME.replace("v.readyState >= 2", "v.readyState >= 1"), [0, 99])
    assert abs(t - start) < 0.1, (t, start)
    here = tab.page.locator(".strip.wide button.seg.here")
    assert here.count() == 1
    assert float(here.get_attribute("data-start")) <= start
    tab.shot("clip-page")


def test_pager_moves_between_pages(tab: Tab, served: Served) -> None:
    tab.goto("/?q=a+red+triangle")
    first = cards(tab).evaluate_all("els => els.map(e => e.dataset.id)")
    assert len(first) == PAGE_K
    assert tab.page.locator("nav.pager a.prev").count() == 0
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="Next →").click()
    second = cards(tab).evaluate_all("els => els.map(e => e.dataset.id)")
    assert "offset=3" in tab.page.url
    assert sorted(first + second) == served.clip_ids  # all five, none twice
    assert tab.page.locator("nav.pager a.next").count() == 0
    tab.shot("pager-second-page")
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="← Previous").click()
    assert cards(tab).evaluate_all("els => els.map(e => e.dataset.id)") == first


def test_image_search_form(tab: Tab, served: Served, tmp_path: Path) -> None:
    source = next((served.data / "moments").glob("*.avi"))
    image = png_of_a_frame(source, tmp_path / "frame.png")
    assert Image.open(image).size == (320, 240)
    tab.goto("/")
    tab.page.locator("details.filters summary").click()
    tab.page.locator("form.image-search input[type=file]").set_input_files(str(image))
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Search by image").click()
    assert tab.page.url == served.url + "/search/image"
    summary = tab.page.locator("p.summary").inner_text()
    assert summary.startswith("Clips like frame.png")
    assert cards(tab).count() == PAGE_K
    posters = tab.page.locator("li.card.result video").evaluate_all(POSTERS_LOADED)
    assert all(p["width"] > 0 for p in posters)
    tab.shot("image-search")


def test_empty_state_with_filters_that_match_nothing(tab: Tab) -> None:
    tab.goto("/?q=a+ball+bouncing")
    tab.page.locator("details.filters summary").click()
    tab.page.locator("input[name=min_duration]").fill("100")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Apply").click()
    notice = tab.page.locator(".notice.empty")
    assert notice.is_visible()
    assert "No results for “a ball bouncing”" in notice.inner_text()
    assert "No indexed clip passes these filters" in notice.inner_text()
    assert cards(tab).count() == 0
    assert tab.page.locator("details.filters").get_attribute("open") is not None
    tab.shot("empty-state")
    # an example query from the notice searches again (the filter stays off)
    with tab.page.expect_navigation():
        notice.locator("a.chip").first.click()
    assert cards(tab).count() == PAGE_K


def test_error_state_for_a_query_that_is_too_long(tab: Tab) -> None:
    tab.goto("/")
    response = None
    box = tab.page.get_by_role("searchbox", name="Search videos")
    box.fill("ball " * 120)
    with tab.page.expect_navigation() as navigation:
        box.press("Enter")
    response = navigation.value
    assert response is not None and response.status == 400
    alert = tab.page.get_by_role("alert")
    assert alert.is_visible()
    assert "Can't search that" in alert.inner_text()
    assert "characters" in alert.inner_text()
    assert cards(tab).count() == 0
    tab.shot("error-state")


# ---------------------------------------------------------------- portrait phone videos


@pytest.fixture(scope="module")
def served_phone(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An index of a portrait phone video (stored landscape, turned by its display matrix)
    and a landscape one, served over HTTP."""
    from videolib import write_video
    from werkzeug.serving import make_server

    from clipsearch.data.collection import load_collection
    from clipsearch.model import load_model
    from clipsearch.pipeline.runner import IngestOptions, ingest
    from clipsearch.search import SearchService
    from clipsearch.store.edge import QdrantEdgeStore
    from webapp import create_app
    from webapp.settings import Settings

    root = tmp_path_factory.mktemp("phone")
    (root / "videos").mkdir()
    write_video(root / "videos" / "portrait.mp4", size=(144, 256), rotation=-90, seconds=2)
    write_video(root / "videos" / "landscape.mp4", size=(256, 144), seconds=2)
    encoder = load_model(tiny_model_dir, towers="both")
    store = QdrantEdgeStore(root / "store")
    report = ingest(load_collection(root / "videos"), encoder, store, IngestOptions(workers=1))
    assert report.ingested == 2, report.summary()
    settings = Settings(model=str(tiny_model_dir), media_dir=str(root / "media"))
    app = create_app(settings, search=SearchService(encoder, store))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    store.close()


@pytest.fixture
def phone_tab(browser: Any, served_phone: str, request: pytest.FixtureRequest) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = Tab(context.new_page(), served_phone)
    tab.page.on("pageerror", lambda exc: tab.problems.append(f"script error: {exc}"))
    yield tab
    if not tab.shots:
        tab.shot(request.node.name)
    context.close()
    assert tab.problems == []


BOX = "el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; }"
VIDEO_SIZE = """async (v) => {
  if (v.readyState < 1) {
    await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
  }
  return [v.videoWidth, v.videoHeight];
}"""


def test_a_portrait_video_has_a_portrait_card_and_player(phone_tab: Tab) -> None:
    from clipsearch.store.base import clip_id

    phone_tab.goto("/?q=an+arrow")
    portrait = phone_tab.page.locator(f'li.card.result[data-id="{clip_id("portrait.mp4")}"] video')
    landscape = phone_tab.page.locator(
        f'li.card.result[data-id="{clip_id("landscape.mp4")}"] video'
    )
    width, height = portrait.evaluate(BOX)
    assert height > 1.5 * width, (width, height)  # 9:16 standing up, not cropped to 4:3
    width, height = landscape.evaluate(BOX)
    assert width > 1.5 * height, (width, height)
    poster = portrait.evaluate_all(POSTERS_LOADED)[0]
    assert poster["width"] > 0
    phone_tab.shot("portrait-card")

    phone_tab.goto(f"/clips/{clip_id('portrait.mp4')}")
    player = phone_tab.page.locator("video.player.big")
    width, height = player.evaluate(BOX)
    assert height > 1.5 * width, (width, height)
    video_width, video_height = player.evaluate(VIDEO_SIZE)  # the preview itself stands up
    assert (video_width, video_height) == (144, 256)
    assert "144×256" in phone_tab.page.locator("dl.facts").inner_text()
    phone_tab.shot("portrait-player")
