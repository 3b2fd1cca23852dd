"""Named colour facets: how a person would name the colours, and how much of the picture each covers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageColor

from shared.imaging.colors import COLOR_NAMES, dominant_colors, name_colors
from tests.fixtures.photos import photo

# CSS colours with the facet a buyer filtering by colour would expect them under.
EXPECTED = {
    "red": ["red", "crimson", "darkred", "firebrick", "tomato", "maroon"],
    "orange": ["orange", "darkorange"],
    "yellow": ["gold", "yellow", "khaki"],
    "brown": ["saddlebrown", "sienna", "tan", "olive"],
    "green": ["green", "forestgreen", "lime", "limegreen", "seagreen", "darkgreen", "olivedrab"],
    "teal": ["teal", "cyan", "turquoise", "darkcyan", "lightseagreen"],
    "blue": ["blue", "navy", "royalblue", "skyblue", "steelblue", "dodgerblue", "midnightblue", "cornflowerblue"],
    "purple": ["purple", "indigo", "violet", "darkviolet", "blueviolet", "magenta", "orchid", "plum"],
    "pink": ["pink", "hotpink", "deeppink", "lightpink", "palevioletred"],
    "black": ["black"],
    "grey": ["grey", "silver", "dimgray", "gainsboro"],
    "white": ["white", "whitesmoke", "ivory"],
}


def test_every_facet_is_covered_by_the_reference_colours():
    assert sorted(EXPECTED) == sorted(COLOR_NAMES)


@pytest.mark.parametrize(
    ("css", "facet"), [(css, facet) for facet, names in EXPECTED.items() for css in names], ids=lambda v: str(v)
)
def test_reference_colours_get_the_name_people_use(css, facet):
    rgb = np.array([ImageColor.getrgb(css)], dtype=np.uint8)
    assert name_colors(rgb)[0] == facet


def split(colours: list[tuple[str, float]], size=(200, 100)) -> Image.Image:
    img = Image.new("RGB", size)
    x = 0
    for css, share in colours:
        width = round(size[0] * share)
        img.paste(ImageColor.getrgb(css), (x, 0, x + width, size[1]))
        x += width
    return img


def test_shares_are_the_fraction_of_the_picture_each_facet_covers_largest_first():
    result = dominant_colors(split([("navy", 0.6), ("white", 0.3), ("gold", 0.1)]))
    assert [c.name for c in result] == ["blue", "white", "yellow"]
    assert [c.share for c in result] == pytest.approx([0.6, 0.3, 0.1], abs=0.02)
    # The facet's own mean colour (navy, give or take the blended edge), not a palette swatch.
    red, green, blue = ImageColor.getrgb(result[0].hex)
    assert red < 10 and green < 10 and abs(blue - 0x80) < 10


def test_small_specks_are_left_out_and_the_list_is_capped():
    result = dominant_colors(split([("red", 0.97), ("blue", 0.03)]))
    assert [c.name for c in result] == ["red"]
    many = split([(css, 1 / 7) for css in ("red", "gold", "green", "teal", "blue", "purple", "white")])
    assert len(dominant_colors(many, max_colors=5)) == 5


@pytest.mark.parametrize(
    ("name", "facet"),
    [("rocket", "blue"), ("hubble", "black"), ("chelsea", "brown"), ("flower", "teal"), ("coffee", "brown")],
)
def test_the_dominant_facet_of_real_photos(name, facet):
    assert dominant_colors(photo(name))[0].name == facet


def test_a_greyscale_photo_has_only_neutral_facets():
    names = {c.name for c in dominant_colors(photo("camera"))}
    assert names and names <= {"black", "grey", "white"}
