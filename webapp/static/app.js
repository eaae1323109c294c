// Results start at their moment; window thumbnails and a sequence's moments seek; one
// video plays at a time; "/" focuses the search box. Media fragments (#t=start,end) do
// the same where supported.
"use strict";

function seekTo(video, seconds) {
  const go = () => { video.currentTime = seconds; };
  if (video.readyState >= 1) go(); else video.addEventListener("loadedmetadata", go, { once: true });
}

for (const video of document.querySelectorAll("video[data-start]")) {
  const start = parseFloat(video.dataset.start);
  if (Number.isFinite(start)) {
    video.addEventListener("loadedmetadata", () => {
      if (Math.abs(video.currentTime - start) > 0.05 && video.currentTime < start) video.currentTime = start;
    }, { once: true });
  }
}

// inline style attributes are blocked by the Content-Security-Policy; CSSOM is not
for (const seg of document.querySelectorAll("button.seg[data-score]")) {
  seg.style.setProperty("--score", seg.dataset.score);
}
// each player takes its video's shape (portrait phone videos stand up)
for (const video of document.querySelectorAll("video[data-aspect]")) {
  video.style.setProperty("--aspect", video.dataset.aspect);
}

// long videos have many windows: scroll each strip so its winner is in view
for (const win of document.querySelectorAll(".strip .seg.win, .strip .seg.here")) {
  const strip = win.closest(".strip");
  const li = win.closest("li");
  strip.scrollLeft = li.offsetLeft - strip.offsetLeft - (strip.clientWidth - li.offsetWidth) / 2;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.seg, button.step");
  if (!button) return;
  const holder = button.closest(".result, .clip-page");
  const video = holder && holder.querySelector("video");
  if (!video) return;
  if (button.classList.contains("seg")) {
    for (const other of holder.querySelectorAll("button.seg")) other.classList.remove("here");
    button.classList.add("here");
  }
  seekTo(video, parseFloat(button.dataset.start));
  video.play().catch(() => {});
});

document.addEventListener("play", (event) => {
  for (const video of document.querySelectorAll("video")) {
    if (video !== event.target) video.pause();
  }
}, true);

document.addEventListener("keydown", (event) => {
  const box = document.querySelector(".search input");
  if (event.key === "/" && box && document.activeElement !== box) {
    event.preventDefault();
    box.focus();
    box.select();
  }
});
