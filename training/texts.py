"""Training texts that name what a clip shows, and which clips each text describes.

A clip has attributes: its class and, where ``synth_meta.jsonl`` has a row, its
object, motion, colour, size, speed and background
(:data:`clipsearch.data.synthucf.CLASS_ATTRIBUTES`). A training text is drawn from
one *view* of them (the class phrase, "a red ball", "something spinning", "a small
box", "a red ball bouncing", a full caption, ...) and carries the attributes it
*requires*. A text describes every clip whose attributes meet its requirements, so
in a batch "a red ball" is a positive for every red ball and a negative for the
green one, whatever the class. When augmentation changes an attribute (a clip
recoloured from green to red), the clip's attributes change with it and the text
is written from the new ones, so pixels and words never disagree. Where it leaves an
attribute *unknown* (a size between two words after a zoom, a speed or background it
changed), a text naming it is neither true nor false of the clip
(:meth:`Text.undecided`): the pair drops out of the loss instead of counting as a
negative, which would teach that a zoomed medium ball is not a medium ball.

A *hard negative* is the sample's own text with one attribute changed ("a blue
ball" for a red ball): the clip must rank it below its own text.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clipsearch.data.collection import class_phrase
from clipsearch.data.synth import (  # the captions' wording, kept in one place
    _CAPTION_TEMPLATES,
    _SIZE_WORDS,
    _SPEED_WORDS,
    BACKGROUNDS,
    COLORS,
    SIZES,
    SPEEDS,
)
from clipsearch.data.synthucf import CLASS_ATTRIBUTES, composed_query, object_query

Attributes = dict[str, str]
"""Attribute name -> value: ``class``, ``object``, ``motion``, ``color``, ``size``,
``speed``, ``background`` (only those known for the clip)."""

TEMPLATES = (
    "a video of {}",
    "{}",
    "a clip of {}",
    "footage of {}",
    "a short video showing {}",
)


# view -> the attributes it names; the weights say how often each is drawn
VIEWS: dict[str, tuple[str, ...]] = {
    "class": ("class",),
    "color_class": ("class", "color"),
    "color_object": ("object", "color"),
    "motion": ("motion",),
    "size_object": ("object", "size"),
    "object": ("object",),
    "color": ("color",),
    "caption": ("class", "color", "size", "speed", "background"),
}
VIEW_WEIGHTS: dict[str, float] = {
    "class": 0.26,
    "color_class": 0.14,
    "color_object": 0.13,
    "motion": 0.08,
    "size_object": 0.16,
    "object": 0.04,
    "color": 0.04,
    "caption": 0.15,
}
_ALTERNATIVES = {"color": tuple(COLORS), "size": SIZES, "speed": SPEEDS}


@dataclass(frozen=True)
class Text:
    """A training text and the attributes a clip must have for the text to describe it."""

    text: str
    requires: tuple[tuple[str, str], ...]
    view: str = "class"

    def describes(self, attrs: Mapping[str, str]) -> bool:
        return all(attrs.get(k) == v for k, v in self.requires)

    def undecided(self, attrs: Mapping[str, str], unknown: Collection[str]) -> bool:
        """Whether the text is neither true nor false of a clip: every attribute it names
        that the clip shows matches, and some it names are ``unknown`` for the clip."""
        if not any(k in unknown for k, _ in self.requires):
            return False
        return all(attrs.get(k) == v for k, v in self.requires if k not in unknown)


def clip_attributes(label: str | None, row: Mapping[str, Any] | None) -> Attributes:
    """A clip's attributes from its class label and its ``synth_meta.jsonl`` row (if any)."""
    attrs: Attributes = {}
    if label:
        attrs["class"] = label
    if row is None:
        return attrs
    if label in CLASS_ATTRIBUTES:
        attrs["object"], attrs["motion"] = CLASS_ATTRIBUTES[label]
    for key in ("color", "size", "speed", "background"):
        value = row.get(key)
        if isinstance(value, str):
            attrs[key] = value
    return attrs


def _caption(attrs: Mapping[str, str], rng: random.Random) -> str:
    phrase = class_phrase(attrs["class"])
    words = [_SIZE_WORDS.get(attrs.get("size", ""), ""), attrs.get("color", ""), phrase]
    noun = " ".join(w for w in words if w)
    article = "" if phrase.split()[0].endswith("s") else "an " if noun[0] in "aeiou" else "a "
    obj = article + noun
    speed = _SPEED_WORDS.get(attrs.get("speed", ""), "")
    body = f"{obj} {speed}".strip()
    bg = attrs.get("background")
    if not bg:
        return rng.choice(("{}", "a video of {}")).format(body)
    return rng.choice(_CAPTION_TEMPLATES).format(obj=obj, speed=speed, bg=bg)


def write(view: str, attrs: Mapping[str, str], rng: random.Random) -> Text:
    """The text of one view of ``attrs`` (which must hold every attribute the view names)."""
    names = VIEWS[view]
    requires = tuple((k, attrs[k]) for k in names if k in attrs)
    if view == "class":
        text = rng.choice(TEMPLATES).format(class_phrase(attrs["class"]))
    elif view == "color_class":
        text = rng.choice(TEMPLATES[:3]).format(composed_query(attrs["class"], attrs["color"]))
    elif view == "color_object":
        text = rng.choice(
            (
                object_query(attrs["color"], attrs["object"]),
                f"{attrs['color']} {attrs['object']}",
                f"a video of {object_query(attrs['color'], attrs['object'])}",
            )
        )
    elif view == "motion":
        text = rng.choice(("something {}", "an object {}", "a video of something {}")).format(
            attrs["motion"]
        )
    elif view == "size_object":
        word = _SIZE_WORDS[attrs["size"]]
        phrase = object_query(word, attrs["object"])
        text = rng.choice((phrase, f"a video of {phrase}"))
    elif view == "object":
        noun = attrs["object"]
        article = "" if noun.endswith("s") else "a "
        text = rng.choice(("{}", "a video of {}")).format(article + noun)
    elif view == "color":
        text = rng.choice(("something {}", "a {} object", "a video of something {}")).format(
            attrs["color"]
        )
    else:
        text = _caption(attrs, rng)
    return Text(" ".join(text.split()), requires, view)


def available_views(attrs: Mapping[str, str]) -> list[str]:
    """The views whose attributes ``attrs`` all has (the class view needs only a class)."""
    out = []
    for view, names in VIEWS.items():
        needed = ("class",) if view == "caption" else names
        if all(k in attrs for k in needed):
            out.append(view)
    return out


def draw_text(attrs: Mapping[str, str], rng: random.Random, attribute_texts: bool = True) -> Text:
    """One text for a clip: a class phrase, or (with ``attribute_texts``) a random view."""
    views = available_views(attrs) if attribute_texts else ["class"]
    views = [v for v in views if v != "caption" or len(attrs) > 3] or ["class"]
    weights = [VIEW_WEIGHTS[v] for v in views]
    return write(rng.choices(views, weights)[0], attrs, rng)


def hard_negative(
    text: Text, attrs: Mapping[str, str], rng: random.Random, forbidden: Sequence[str] = ()
) -> Text | None:
    """``text`` with one named attribute (colour, size or speed) changed, or None.

    ``forbidden`` lists "Class:colour" combinations never to write (the held-out ones).
    """
    changeable = [k for k, _ in text.requires if k in _ALTERNATIVES]
    if not changeable:
        return None
    key = rng.choice(changeable)
    choices = [v for v in _ALTERNATIVES[key] if v != attrs[key]]
    if key == "color" and "class" in attrs:
        choices = [c for c in choices if f"{attrs['class']}:{c}" not in forbidden]
    if not choices:
        return None
    changed = dict(attrs)
    changed[key] = rng.choice(choices)
    return write(text.view, changed, rng)


def class_prompt_texts(classes: Sequence[str]) -> list[str]:
    """Every template for every class, class-major (for the class-prompt loss)."""
    return [t.format(class_phrase(c)) for c in classes for t in TEMPLATES]


def vocabulary_texts(classes: Sequence[str], captions: Sequence[str]) -> list[str]:
    """Texts covering every word training may write (for building a tokenizer)."""
    out = class_prompt_texts(classes) + list(captions)
    objects = sorted({o for o, _ in CLASS_ATTRIBUTES.values()})
    motions = sorted({m for _, m in CLASS_ATTRIBUTES.values()})
    for color in COLORS:
        out += [f"a {color} object something {color}", *(f"an {color} {o}" for o in objects)]
    out += [f"a video of something {m} an object {m}" for m in motions]
    out += [f"{w} {o}" for w in _SIZE_WORDS.values() for o in objects]
    out += [f"{s} on a {b} background against" for s in _SPEED_WORDS.values() for b in BACKGROUNDS]
    return out
