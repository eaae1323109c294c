"""Sequence queries: "A then B" finds videos where a moment for A comes before one for B.

A query text splits into steps at the word "then" (also ", then" and "and then"), and
more steps may be given as a list. Each step is encoded on its own, and each candidate
video is scored exactly from its stored window vectors:

* a *chain* takes one window per step, each one later than the one before: it starts at
  or after the previous window's end (the windows are apart). A video too short for
  that (2-s windows every 1 s in a 3-s video) falls back to "starts after the previous
  window's start"; a video of one window cannot show an order and never matches.
* ``in_order`` is the best chain's mean cosine (each step's cosine with its window).
* ``reversed`` is the same for the steps in reverse order. The order penalty: when the
  reversed order scores better, the video scores
  ``in_order - order_penalty * (reversed - in_order)``, else ``in_order``; a video
  showing B before A sinks below one showing A before B.
* each step's moment grows around its window as a single moment does
  (:func:`clipsearch.windows.grow_moment`), but only over windows that keep the order:
  after the previous step's moment, before the next step's window.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipsearch.errors import InvalidInput
from clipsearch.windows import MOMENT_MIN_MARGIN, MOMENT_SPREAD, Moment, grow_moment

MAX_STEPS = 4
# "then" as a whole word: not "thence", "then-president" or "and-then"
_THEN = re.compile(r"(?<![\w'-])then(?![\w'-])", re.IGNORECASE)
_TAIL = re.compile(r"(?:[\s,]*(?<![\w'-])and)?[\s,]*$", re.IGNORECASE)
_HEAD = re.compile(r"^[\s,]*")
_EPS = 1e-6  # window times are rounded to the millisecond or finer


def words(text: str) -> str:
    """``text`` with each run of white space and control characters made one space, none
    at the ends; empty when nothing in it shows (only zero-width and other format
    characters, which are kept inside words: soft hyphens, joiners)."""
    if not (text.isascii() and text.isprintable()):
        text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
        if all(c.isspace() or unicodedata.category(c) == "Cf" for c in text):
            return ""
    return " ".join(text.split())


def split_steps(text: str) -> list[str]:
    """A query's steps: ``"A then B"``, ``"A, then B"`` and ``"A and then B"`` are
    ``["A", "B"]`` (any case); a text without the word "then" is one step.

    An empty step (``"then B"``, ``"A then"``) raises ``InvalidInput`` (``empty_step``).
    """
    parts = _THEN.split(text)
    if len(parts) == 1:
        return [text]
    steps = []
    for i, part in enumerate(parts):
        if i < len(parts) - 1:
            part = _TAIL.sub("", part)
        steps.append(words(_HEAD.sub("", part)))
    if not all(steps):
        raise InvalidInput(
            f'query "{text}" has an empty step: write "A then B", with text on both sides '
            'of "then"',
            code="empty_step",
        )
    return steps


def parse_steps(text: str, then: Sequence[object], max_chars: int) -> list[str]:
    """The steps of a validated query ``text`` followed by the explicit ``then`` steps."""
    steps = split_steps(text)
    if isinstance(then, str):
        then = [then]
    for extra in then:
        if not isinstance(extra, str):
            raise InvalidInput("then must be a string or a list of strings", code="invalid_query")
        step = words(extra)
        if not step:
            raise InvalidInput("a then step is empty", code="empty_step")
        if len(step) > max_chars:
            raise InvalidInput(
                f"a then step is {len(step)} characters; at most {max_chars} allowed",
                code="query_too_long",
            )
        steps.append(step)
    if len(steps) > MAX_STEPS:
        raise InvalidInput(
            f"a query has at most {MAX_STEPS} steps, got {len(steps)}", code="too_many_steps"
        )
    return steps


@dataclass(frozen=True)
class SequenceMatch:
    """How one video matches the steps of a query, in order."""

    windows: tuple[int, ...]  # the chain: one window index per step
    in_order: float  # the chain's mean cosine
    reversed: float  # the best chain's mean cosine for the steps in reverse order
    score: float  # in_order, less the order penalty
    apart: bool  # whether the chain's windows do not overlap (False: the fallback)


def _follows(windows: Sequence[Sequence[float]], apart: bool) -> np.ndarray:
    """``follows[w, u]``: window ``w`` may come after window ``u`` in a chain: it starts
    later and, when ``apart``, not before ``u`` ends."""
    starts = np.array([float(w[0]) for w in windows])
    follows: np.ndarray = starts[:, None] > starts[None, :] + _EPS
    if apart:
        ends = np.array([float(w[1]) for w in windows])
        follows &= starts[:, None] >= ends[None, :] - _EPS
    return follows


def best_chain(scores: np.ndarray, follows: np.ndarray) -> tuple[float, tuple[int, ...]] | None:
    """The chain with the best mean score: one window per row of ``scores`` (steps, S),
    each following the one before; None when no chain exists."""
    steps, n = scores.shape
    total = np.asarray(scores[0], dtype=np.float64)
    back = []
    for k in range(1, steps):
        options = np.where(follows, total[None, :], -np.inf)
        prev = options.argmax(axis=1)
        total = scores[k] + options[np.arange(n), prev]
        back.append(prev)
    last = int(np.argmax(total))
    if not np.isfinite(total[last]):
        return None
    chain = [last]
    for prev in reversed(back):
        chain.append(int(prev[chain[-1]]))
    return float(total[last]) / steps, tuple(reversed(chain))


def match_sequence(
    scores: np.ndarray, windows: Sequence[Sequence[float]], *, order_penalty: float = 1.0
) -> SequenceMatch | None:
    """The best in-order chain of a video for step scores (steps, S) and the penalised
    score (see the module's docstring); None for a video that cannot hold a chain."""
    for apart in (True, False):
        follows = _follows(windows, apart)
        forward = best_chain(scores, follows)
        if forward is not None:
            break
    else:
        return None
    backward = best_chain(scores[::-1], follows)
    in_order, chain = forward
    reverse = backward[0] if backward is not None else -np.inf
    score = in_order - order_penalty * max(0.0, reverse - in_order)
    return SequenceMatch(chain, in_order, float(reverse), float(score), apart)


def sequence_moments(
    scores: np.ndarray,
    windows: Sequence[Sequence[float]],
    match: SequenceMatch,
    *,
    spread: float = MOMENT_SPREAD,
    min_margin: float = MOMENT_MIN_MARGIN,
) -> list[Moment]:
    """One moment per step, each grown around its chain window without breaking the order:
    over windows after the previous step's moment and before the next step's window."""
    follows = _follows(windows, match.apart)
    last = len(windows) - 1
    moments: list[Moment] = []
    previous: int | None = None  # the last window of the previous step's moment
    for k, best in enumerate(match.windows):
        lo = hi = best
        if previous is None:
            lo = 0
        while previous is not None and lo > 0 and follows[lo - 1, previous]:
            lo -= 1
        following = match.windows[k + 1] if k + 1 < len(match.windows) else None
        while hi < last and (following is None or follows[following, hi + 1]):
            hi += 1
        moment, _, previous = grow_moment(
            scores[k], windows, best, lo=lo, hi=hi, spread=spread, min_margin=min_margin
        )
        moments.append(moment)
    return moments
