"""Safe decoding: the issue's table of bad and unusual inputs, each with its exact handling."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from authenticator.errors import (
    CorruptImage,
    DecompressionBomb,
    ImageError,
    ImageTooLarge,
    ImageTooSmall,
    UnsupportedFormat,
)
from authenticator.vision.decode import DecodeLimits, decode_image, model_decode_size
from authenticator.vision.preprocess import PreprocessSpec, preprocess
from tests.image_samples import png_header

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(w: int = 320, h: int = 240) -> Image.Image:
    """A real photo from the development set, resized: realistic content, known size."""
    src = next(iter(sorted((REAL / "zhengwu123-aj1" / "authentic").glob("*.jpg"))))
    return Image.open(src).convert("RGB").resize((w, h))


def _jpeg_with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(img, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("name", "make", "error"),
    [
        ("empty file", lambda: b"", CorruptImage),
        ("text renamed .jpg", lambda: b"this is not a photo, just text\n" * 20, UnsupportedFormat),
        ("truncated JPEG", lambda: _save(_photo(), "JPEG", quality=90)[:3000], CorruptImage),
        ("1x1 PNG", lambda: _save(Image.new("RGB", (1, 1)), "PNG"), ImageTooSmall),
        ("30000x30000 PNG header (bomb)", lambda: png_header(30_000, 30_000), DecompressionBomb),
        ("8000x8000 PNG header over 50 MP", lambda: png_header(8_000, 8_000), DecompressionBomb),
        ("animated GIF", lambda: _animated("GIF"), UnsupportedFormat),
        ("animated WebP", lambda: _animated("WEBP"), UnsupportedFormat),
        ("still GIF", lambda: _save(_photo(), "GIF"), UnsupportedFormat),
        ("BMP", lambda: _save(_photo(), "BMP"), UnsupportedFormat),
    ],
)
def test_bad_inputs_raise_their_typed_error(name: str, make: object, error: type[ImageError]) -> None:
    data = make()  # type: ignore[operator]
    with pytest.raises(error) as info:
        decode_image(data)
    assert type(info.value) is error, name
    assert info.value.message


def _animated(fmt: str) -> bytes:
    base = _photo()
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def test_bomb_is_refused_before_decoding() -> None:
    """The header alone decides: 30,000 x 30,000 RGB would need 2.7 GB; the file is a few bytes."""
    data = png_header(30_000, 30_000)
    assert len(data) < 200
    with pytest.raises(DecompressionBomb):
        decode_image(data)


def test_file_over_the_byte_limit() -> None:
    data = _save(_photo(), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_image(data, DecodeLimits(max_bytes=len(data) - 1))


def test_cmyk_jpeg_becomes_rgb_with_the_same_colours() -> None:
    rgb = _photo()
    data = _save(rgb.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    d = decode_image(data)
    assert d.rgb.shape == (240, 320, 3) and d.rgb.dtype == np.uint8
    assert np.abs(d.rgb.astype(int) - np.asarray(rgb).astype(int)).mean() < 6


def test_16bit_png_is_scaled_to_8_bits() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (128, 1))
    data = _save(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    d = decode_image(data)
    expected = np.round(ramp.astype(np.float64) / 65535 * 255)
    assert d.rgb.shape == (128, 256, 3)
    assert np.abs(d.rgb[..., 0].astype(int) - expected).max() <= 1
    assert (d.rgb[..., 0] == d.rgb[..., 2]).all()


def test_dark_16bit_png_is_not_mistaken_for_8_bits() -> None:
    """A 16-bit photo whose values all sit below 256 is nearly black, not mid-grey."""
    dark = np.full((100, 100), 200, np.uint16)
    d = decode_image(_save(Image.fromarray(dark), "PNG"))
    assert int(d.rgb.max()) <= 1


def test_grayscale_jpeg_gives_three_equal_channels() -> None:
    data = _save(_photo().convert("L"), "JPEG", quality=95)
    d = decode_image(data)
    assert d.rgb.shape == (240, 320, 3)
    assert (d.rgb[..., 0] == d.rgb[..., 1]).all() and (d.rgb[..., 1] == d.rgb[..., 2]).all()
    assert d.alpha is None


def test_heic_decodes() -> None:
    pytest.importorskip("pillow_heif")
    rgb = _photo()
    data = _save(rgb, "HEIF", quality=90)
    d = decode_image(data)
    assert d.format in ("HEIF", "HEIC")
    assert d.rgb.shape == (240, 320, 3)
    assert np.abs(d.rgb.astype(int) - np.asarray(rgb).astype(int)).mean() < 8


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF", "WEBP"])
def test_exif_rotation_is_applied(fmt: str) -> None:
    """Orientation 6 = the camera was turned: rotate 90 degrees clockwise to display (once)."""
    img = Image.new("RGB", (200, 100), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 100, 100))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _jpeg_with_orientation(img, 6) if fmt == "JPEG" else _save(img, fmt, exif=exif.tobytes())
    d = decode_image(data)
    assert (d.width, d.height) == (100, 200)
    assert (d.source_width, d.source_height) == (100, 200)
    top, bottom = d.rgb[:90].reshape(-1, 3).mean(0), d.rgb[110:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60, "the left (red) half must end up on top"
    assert bottom[2] > 200 and bottom[0] < 60


def test_png_with_alpha_keeps_the_mask_and_composites_on_white() -> None:
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere ...
    rgba[30:90, 40:120, 3] = 255  # ... but only the centre is opaque
    d = decode_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert d.alpha is not None and d.alpha.shape == (120, 160)
    assert int(d.alpha[0, 0]) == 0 and int(d.alpha[60, 80]) == 255
    x = preprocess(d.rgb, d.alpha, PreprocessSpec(input_size=64, mean=(0, 0, 0), std=(1, 1, 1)))
    corner, centre = x[:, 14, 2], x[:, 32, 32]  # the letterbox pads top/bottom; (14, 2) is transparent photo
    assert np.allclose(corner, 1.0), "transparent pixels become the white background"
    assert np.allclose(centre, [1.0, 0.0, 0.0])


def test_opaque_png_alpha_is_dropped() -> None:
    d = decode_image(_save(_photo().convert("RGBA"), "PNG"))
    assert d.alpha is None


def test_reduced_jpeg_decode_keeps_twice_the_input_size() -> None:
    big = _photo(1600, 1200)
    data = _save(big, "JPEG", quality=90)
    full = decode_image(data)
    red = decode_image(data, reduce_to=model_decode_size(448))
    assert (full.width, full.height) == (1600, 1200)
    assert (red.width, red.height) == (800, 600)  # 1/2 scale: 1/4 would drop below 672
    assert (red.source_width, red.source_height) == (1600, 1200)
    spec = PreprocessSpec(input_size=448)
    diff = np.abs(preprocess(full.rgb, None, spec) - preprocess(red.rgb, None, spec))
    assert diff.mean() < 0.01  # normalised units (1/255 of range ~ 0.008)


def test_reduced_decode_leaves_small_photos_alone() -> None:
    data = _save(_photo(640, 480), "JPEG", quality=90)
    assert np.array_equal(decode_image(data).rgb, decode_image(data, reduce_to=448).rgb)


def test_concurrent_decoding_leaves_the_process_warning_filters_alone() -> None:
    """Regression: decode used warnings.catch_warnings(), which swaps the process-wide filter
    list; with photos decoded on several threads at once, one thread's "error" filter for
    Pillow's DecompressionBombWarning leaked into the process (or another's got lost)."""
    import threading
    import warnings

    # 10,000 x 10,000 = 100 MP: past Pillow's warning limit (~89 MP) but under its error limit
    photos = [png_header(10_000, 10_000), png_header(3_000, 2_000)] * 20
    before = list(warnings.filters)
    errors: list[BaseException] = []

    def work() -> None:
        for data in photos:
            try:
                decode_image(data)
            except (DecompressionBomb, CorruptImage):  # the headers promise pixels they lack
                pass
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    with warnings.catch_warnings(record=True):  # the 100 MP header's Pillow warning is expected
        warnings.simplefilter("always")
        inner = list(warnings.filters)
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert list(warnings.filters) == inner
    assert list(warnings.filters) == before
    assert errors == []
