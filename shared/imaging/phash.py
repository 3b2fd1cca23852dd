"""64-bit DCT perceptual hash (the classic pHash of Zauner 2010, as `imagehash.phash` computes it).

The picture is reduced to 32x32 grey, transformed with a 2-D DCT-II, and the 8x8 lowest frequencies
are compared with their median: one bit each. Resizing, recompression and mild colour changes move
few bits, so the Hamming distance of two hashes measures how alike two pictures look.

Near-duplicate search splits the hash into `BANDS` 16-bit bands (`bands`) and uses the pigeonhole
principle: two hashes within distance d differ in some band by at most d // BANDS bits, so probing
each band with every value within that distance (`band_probes`) finds every match, no false negatives.

Choosing the threshold (NEAR_DUPLICATE_MAX_DISTANCE) trades what counts as "the same picture" against
false alarms and index probes; recall within the threshold is always complete. Measured on the
test photos (2 MP): resizing to 1/2 or 1/4 with JPEG recompression, greyscale and +20% brightness move
0-6 bits; a 3% crop 4-10 bits, an 8% crop 10-24; unrelated photos differ by 24-38 bits (a mirror image
by ~32, so mirrored copies are not caught). Thresholds 0-3 cost 4 index lookups, 4-7 cost 68 and
8-11 cost 548, so the default 7 catches every re-encoded or resized copy and many slight crops for 68
lookups; going to 11 would catch most 3% crops for 8x the lookups and a higher chance of flagging
unrelated but similar-looking shots (plain skies, text on white).
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

import numpy as np
from PIL import Image

HASH_BITS = 64
BANDS = 4
BAND_BITS = HASH_BITS // BANDS
_SIZE = 32  # DCT input side; the hash keeps its 8x8 lowest frequencies
_LOW = 8


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix, so dct(X) = D @ X @ D.T (numpy only: scipy is not a runtime dependency)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def phash(img: Image.Image) -> int:
    """The 64-bit perceptual hash of `img` as an unsigned int (bit 63 = lowest frequency)."""
    grey = img.convert("L") if img.mode != "L" else img
    small = np.asarray(grey.resize((_SIZE, _SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    dct = _dct_matrix(_SIZE)
    low = (dct @ small @ dct.T)[:_LOW, :_LOW]
    bits = (low > np.median(low)).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


def to_hex(value: int) -> str:
    """16 lower-case hex digits, the form carried in events (`ImageListing.phash`)."""
    return f"{value & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def to_signed(value: int) -> int:
    """The same 64 bits as a signed int, for a Postgres bigint column."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed(value: int) -> int:
    return value & 0xFFFF_FFFF_FFFF_FFFF


def bands(value: int) -> tuple[int, ...]:
    """The hash cut into BANDS unsigned 16-bit bands, most significant first."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    mask = (1 << BAND_BITS) - 1
    return tuple((value >> (BAND_BITS * (BANDS - 1 - i))) & mask for i in range(BANDS))


def band_probes(band: int, max_distance: int) -> list[int]:
    """Every 16-bit value within `max_distance` bits of `band` (1 + 16 + 120 + ... values)."""
    probes = [band]
    for flips in range(1, max_distance + 1):
        for positions in combinations(range(BAND_BITS), flips):
            flipped = band
            for pos in positions:
                flipped ^= 1 << pos
            probes.append(flipped)
    return probes
