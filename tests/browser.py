"""A real browser for the status page: Debian's Chromium, headless (`make browser-tools`
installs it), loads a page and gives back the DOM it built, or a screenshot; and a small reader
of that DOM for the tests' checks."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

# As Chromium is known to run on these machines (root, no network but loopback).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


def _chromium(*arguments: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        raise AssertionError("chromium is missing: `make browser-tools` installs Debian's")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *arguments],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def dump_dom(url: str) -> str:
    """The DOM Chromium built from the page, serialised."""
    dom = _chromium("--dump-dom", url).stdout
    assert "<body" in dom, dom[:500]
    return dom


def screenshot(url: str, path: Path, width: int = 1200, height: int = 1800) -> Path:
    _chromium(f"--screenshot={path}", f"--window-size={width},{height}", url)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return path


@dataclass
class Element:
    tag: str
    attributes: dict[str, str]
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())

    def __getitem__(self, name: str) -> str:
        return self.attributes[name]


class Dom(HTMLParser):
    """Every element of a document with its attributes and its text (its descendants' too)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.parts.append(data)

    def all(
        self, tag: str | None = None, css_class: str | None = None, **attributes: str
    ) -> list[Element]:
        """Elements by tag, by one of their classes, and by attributes (`data_outcome=` is
        `data-outcome`)."""
        wanted = {name.replace("_", "-"): value for name, value in attributes.items()}
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag)
            and (css_class is None or css_class in e.attributes.get("class", "").split())
            and all(e.attributes.get(name) == value for name, value in wanted.items())
        ]

    def one(
        self, tag: str | None = None, css_class: str | None = None, **attributes: str
    ) -> Element:
        found = self.all(tag, css_class, **attributes)
        assert len(found) == 1, f"{len(found)} elements {tag} .{css_class} {attributes}"
        return found[0]
