"""The docs' screenshots exist, are PNGs of a page, and are shown where the docs say; every image a page links exists."""

import re
from pathlib import Path

import pytest
from PIL import Image

DOCS = Path(__file__).resolve().parents[2] / "docs"
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")


@pytest.mark.parametrize("page, image", [("dynamics.md", "dynamics.png"), ("dynamics.md", "compare.png"),
                                         ("viewer.md", "viewer.png")])
def test_screenshot_is_shown_and_is_a_page_sized_png(page, image):
    assert image in IMAGE.findall((DOCS / page).read_text(encoding="utf-8")), f"{page} does not show {image}"
    with Image.open(DOCS / image) as png:
        assert png.format == "PNG" and png.size[0] >= 1200 and png.size[1] >= 700, png.size


def test_every_linked_image_exists():
    for page in sorted(DOCS.glob("*.md")):
        for target in IMAGE.findall(page.read_text(encoding="utf-8")):
            assert (page.parent / target).is_file(), f"{page.name} shows {target}, which is not there"


def test_the_dynamics_screenshots_name_their_generator():
    text = (DOCS / "dynamics.md").read_text(encoding="utf-8")
    assert "tests/browser/docs_screenshot.py --dynamics" in text
    script = (DOCS.parent / "tests" / "browser" / "docs_screenshot.py").read_text(encoding="utf-8")
    assert '"dynamics.png"' in script and '"compare.png"' in script
