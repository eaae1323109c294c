// Play one preview at a time, and focus the search box with "/".
"use strict";

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
