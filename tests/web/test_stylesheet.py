"""Text colours of the stylesheet against their backgrounds: WCAG 2.1 AA needs 4.5:1."""

import re
from pathlib import Path

import pytest

import cora_pipeline.web

STYLESHEET = Path(cora_pipeline.web.__file__).parent / "static" / "app.css"
WHITE = "#ffffff"
TOPBAR = "#1b2a4a"


def variables() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", STYLESHEET.read_text(encoding="utf-8"), re.S)
    assert root is not None
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", root.group(1)))


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# (text, background) as the stylesheet combines them; names are custom properties of :root.
PAIRS = [
    ("text", "surface"),
    ("text", "bg"),
    ("muted", "surface"),
    ("muted", "bg"),
    ("muted", "neutral-bg"),
    ("muted", "accent-soft"),
    ("accent", "surface"),
    ("accent", "bg"),
    ("accent-strong", "accent-soft"),
    ("success-text", "success-bg"),
    ("warning-text", "warning-bg"),
    ("danger", "danger-bg"),
    ("danger", "surface"),
    ("text", "success-bg"),
    ("text", "warning-bg"),
    ("text", "danger-bg"),
    ("text", "accent-soft"),
    (WHITE, "accent"),
    (WHITE, "accent-strong"),
    (WHITE, "danger"),
    (WHITE, TOPBAR),
    ("#dbe4f3", TOPBAR),
]


@pytest.mark.parametrize(("foreground", "background"), PAIRS)
def test_text_colour_meets_aa_contrast(foreground: str, background: str) -> None:
    colours = variables()
    text = colours.get(foreground, foreground)
    fill = colours.get(background, background)

    assert contrast(text, fill) >= 4.5, f"{foreground} on {background}: {contrast(text, fill):.2f}"
