"""The watermark cannot be calibrated away.

The attack: upload an all-black and an all-white image of some size, read their previews, and solve
`preview = (1 - alpha) * picture + alpha * colour` for alpha and colour per pixel; then invert any
other preview of that size. With one fixed overlay per size that recovered the picture almost
exactly (640x480: 21.7 dB plain, 32.2 dB inverted); each picture's overlay is its own now (drawn
from a secret seed), so the inversion does worse than the plain preview.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageMath

from lib.privatestorage import private_storage
from orders.deliverables import previews
from tests.orders.files_support import use_private_tmp


@pytest.fixture
def private_root(settings: Any, tmp_path: Path) -> Path:
    return use_private_tmp(settings, tmp_path)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def preview_of(name: str, image: Image.Image) -> Image.Image:
    """The preview Atelier stores for `image`, uploaded as a PNG (the upload and fetch path alike)."""
    stored = previews.store_image(f"calibration/{name}", io.BytesIO(png(image)))
    with private_storage().open(stored.preview_path) as preview:
        return Image.open(io.BytesIO(preview.read())).convert("RGB")


def natural_ish(size: tuple[int, int]) -> Image.Image:
    """Smooth gradients, soft shapes and grain: a stand-in for a photograph."""
    width, height = size
    red = Image.linear_gradient("L").resize(size).rotate(20, expand=False)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.effect_noise(size, 60).filter(ImageFilter.GaussianBlur(6))
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (i * 97) % width, (i * 61) % height
        draw.ellipse([x - 50, y - 35, x + 50, y + 35], fill=((i * 40) % 256, 200 - i * 10, 60 + i * 15))
    image = image.filter(ImageFilter.GaussianBlur(2))
    grain = Image.merge("RGB", [Image.effect_noise(size, 12)] * 3)
    return ImageChops.add(image, grain, scale=1.0, offset=-128)


def psnr(a: Image.Image, b: Image.Image) -> float:
    histogram = ImageChops.difference(a, b).histogram()  # 256 bins per band
    squared = sum(count * (value % 256) ** 2 for value, count in enumerate(histogram))
    mse = squared / (a.width * a.height * 3)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def invert(preview: Image.Image, black: Image.Image, white: Image.Image) -> Image.Image:
    """Per band: (1 - alpha) = (white - black) / 255 and alpha * colour = black, so
    picture = (preview - black) * 255 / (white - black)."""
    bands = []
    for p, b, w in zip(preview.split(), black.split(), white.split(), strict=True):
        solved = ImageMath.lambda_eval(
            lambda args: (args["p"] - args["b"]) * 255.0 / args["max"](args["w"] - args["b"], 8.0),
            p=p.convert("F"),
            b=b.convert("F"),
            w=w.convert("F"),
        )
        bands.append(solved.convert("L"))  # clips to 0..255
    return Image.merge("RGB", bands)


@pytest.mark.parametrize("size", [(640, 480), (2000, 1500)], ids=["640x480", "2000x1500"])
def test_two_calibration_previews_do_not_help_invert_a_third(private_root, size):
    black = preview_of("black", Image.new("RGB", size, (0, 0, 0)))
    white = preview_of("white", Image.new("RGB", size, (255, 255, 255)))
    original = natural_ish(size)
    preview = preview_of("photo", original)
    assert black.size == white.size == preview.size
    # The picture as the preview shows it, scaled the way previews are.
    shown = original.resize(preview.size, Image.Resampling.LANCZOS, reducing_gap=2.0)

    plain = psnr(preview, shown)
    inverted = psnr(invert(preview, black, white), shown)

    print(f"preview {preview.size}: plain {plain:.1f} dB, inverted {inverted:.1f} dB, gain {inverted - plain:+.1f} dB")
    assert inverted - plain <= 1.0, f"the calibration attack gains {inverted - plain:.1f} dB"


def test_the_overlay_is_the_same_for_the_same_picture_and_secret_to_everyone_else(private_root, settings):
    """Delivering a picture again gives no second overlay to average out; without SECRET_KEY the
    layout cannot be predicted."""
    picture = natural_ish((640, 480))

    first, again = preview_of("first", picture), preview_of("again", picture)
    settings.SECRET_KEY = "another-" + "k" * 50
    elsewhere = preview_of("elsewhere", picture)

    assert ImageChops.difference(first, again).getbbox() is None
    assert psnr(first, elsewhere) < 25  # other angle, spacing and phase: the text lies elsewhere
