"""Issue 11, point 4: image dimensions from the header, and a per-request budget of decoded pixels.

- PNG (IHDR) and WebP (VP8, VP8L, VP8X) dimensions are read from the first bytes: a photo over the
  megapixel limit is refused before Pillow opens it (Pillow's WebP plugin allocates the whole canvas
  when it opens a file); HEIC dimensions come from pillow-heif's header parse, never a decode.
- A request whose photos together would decode more than ``vision_max_request_megapixels`` is
  refused from the headers (``PixelBudgetExceeded``, 413): 12 flat 7000x7000 PNGs (160 KB each)
  cost a header parse each instead of 12 s and 1.6 GB.

"No pixel was decoded" is asserted with spies on the decoders, never with a clock.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from api.app import create_app
from authenticator.config import Settings
from authenticator.errors import DecompressionBomb, ImageTooLarge, PixelBudgetExceeded
from authenticator.vision import service as service_module
from authenticator.vision.decode import DecodeLimits, decode_image, model_decode_size, read_header, sniff_dimensions
from authenticator.vision.service import Assessor, PhotoInput
from tests.api_helpers import bearer, make_actors, new_item, real_photos
from tests.vision_tiny_model import write_tiny_model

FLAT = (200, 180, 160)


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _flat(w: int, h: int, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (w, h), FLAT if mode == "RGB" else (*FLAT, 128))


# PNG, and the three WebP bitstreams: lossy (VP8), lossless (VP8L), extended (VP8X: alpha or EXIF)
ENCODINGS = {
    "PNG": lambda img: _save(img, "PNG"),
    "WebP VP8": lambda img: _save(img, "WEBP", quality=80),
    "WebP VP8L": lambda img: _save(img, "WEBP", lossless=True),
    "WebP VP8X": lambda img: _save(img.convert("RGBA"), "WEBP", quality=80, exif=Image.Exif().tobytes() or b"Exif"),
}


def _chunk(data: bytes) -> bytes:
    return data[12:16]


@pytest.fixture(scope="module")
def flat_7000_png() -> bytes:
    """The issue's photo: a flat 7000x7000 PNG, 49 megapixels in about 160 KB."""
    data = _save(_flat(7000, 7000), "PNG")
    assert len(data) < 200_000
    return data


class Spy:
    """Patches installed by :meth:`arm` (after the test built its images with Pillow); ``calls``
    records each call, which then fails."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, targets: list[tuple[object, str, bool]]) -> None:
        self.monkeypatch = monkeypatch
        self.targets = targets
        self.calls: list[str] = []

    def _refuse(self, name: str):  # type: ignore[no-untyped-def]
        def spy(*args: object, **kwargs: object) -> None:
            self.calls.append(name)
            raise AssertionError(f"{name} was called: pixels decoded")

        return spy

    def arm(self) -> Spy:
        for owner, attr, is_property in self.targets:
            name = f"{getattr(owner, '__name__', owner)}.{attr}"
            fake = self._refuse(name)
            self.monkeypatch.setattr(owner, attr, property(fake) if is_property else fake)
        return self


@pytest.fixture
def no_pixel_decode(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Any pixel decode (Pillow's loaders, pillow-heif's decoder), once armed."""
    import pillow_heif.as_plugin
    import pillow_heif.heif

    return Spy(
        monkeypatch,
        [
            (ImageFile.ImageFile, "load", False),
            (Image.Image, "load", False),
            (pillow_heif.as_plugin.HeifImageFile, "load", False),
            (pillow_heif.heif.HeifImage, "data", True),
            (pillow_heif.heif.HeifImage, "load", False),
        ],
    )


@pytest.fixture
def no_pillow_open(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """The decoder's Image.open, once armed."""
    return Spy(monkeypatch, [(Image, "open", False)])


# --- dimensions from the header ----------------------------------------------------------------
@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize(("w", "h"), [(321, 123), (97, 1000)])
def test_sniffed_dimensions_are_pillows(encoding: str, w: int, h: int) -> None:
    data = ENCODINGS[encoding](_flat(w, h))
    expected_chunk = {"WebP VP8": b"VP8 ", "WebP VP8L": b"VP8L", "WebP VP8X": b"VP8X"}.get(encoding)
    if expected_chunk is not None:
        assert _chunk(data) == expected_chunk  # the test really covers that bitstream
    fmt = "PNG" if encoding == "PNG" else "WEBP"
    assert sniff_dimensions(data) == (fmt, w, h)
    assert Image.open(io.BytesIO(data)).size == (w, h)
    header = read_header(data)
    assert (header.format, header.width, header.height) == (fmt, w, h)
    assert (header.decode_width, header.decode_height) == (w, h)


def test_other_formats_are_not_sniffed() -> None:
    assert sniff_dimensions(_save(_flat(100, 80), "JPEG")) is None
    assert sniff_dimensions(b"\x89PNG\r\n\x1a\n") is None  # too short to tell: Pillow decides
    assert sniff_dimensions(b"just text" * 10) is None


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_png_and_webp_over_the_limit_are_refused_before_pillow_opens_them(
    encoding: str, no_pillow_open: Spy, no_pixel_decode: Spy
) -> None:
    limits = DecodeLimits(max_megapixels=1.0)
    data = ENCODINGS[encoding](_flat(1200, 1000))  # 1.2 MP
    no_pillow_open.arm(), no_pixel_decode.arm()
    for read in (decode_image, read_header):
        with pytest.raises(DecompressionBomb, match="1200x1000"):
            read(data, limits)
    assert no_pillow_open.calls == [] and no_pixel_decode.calls == []


def test_webp_canvas_is_never_allocated_for_an_oversized_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """libwebp's animation decoder allocates the canvas (width x height x 4, twice) when Pillow
    opens a WebP; Pillow itself only refuses past twice its own limit (179 MP)."""
    from PIL import _webp

    made: list[int] = []
    real = _webp.WebPAnimDecoder

    def spy(data: bytes) -> object:
        made.append(len(data))
        return real(data)

    monkeypatch.setattr(_webp, "WebPAnimDecoder", spy)
    data = _save(_flat(1200, 1000), "WEBP", lossless=True)
    with pytest.raises(DecompressionBomb):
        decode_image(data, DecodeLimits(max_megapixels=1.0))
    assert made == []
    decode_image(data, DecodeLimits(max_megapixels=2.0))
    assert len(made) == 1  # the spy sees the decoder when it is used


def _heic(w: int, h: int) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _save(_flat(w, h), "HEIF", quality=50)


def test_heic_over_the_limit_is_refused_from_its_header(no_pixel_decode: Spy) -> None:
    data = _heic(1200, 1000)
    no_pixel_decode.arm()
    for read in (decode_image, read_header):
        with pytest.raises(DecompressionBomb, match="1200x1000"):
            read(data, DecodeLimits(max_megapixels=1.0))
    header = read_header(data, DecodeLimits(max_megapixels=2.0))
    assert (header.format, header.width, header.height, header.decode_megapixels) == ("HEIF", 1200, 1000, 1.2)
    assert no_pixel_decode.calls == []


def test_the_decode_spies_see_a_real_decode(no_pixel_decode: Spy) -> None:
    """The spies above are not blind: decoding an accepted HEIC or PNG trips them."""
    photos = (_heic(200, 100), _save(_flat(200, 100), "PNG"))
    no_pixel_decode.arm()
    for data in photos:
        with pytest.raises(AssertionError, match="pixels decoded"):
            decode_image(data)
    assert len(no_pixel_decode.calls) == 2


def test_the_issues_flat_png_is_read_from_its_header(flat_7000_png: bytes, no_pixel_decode: Spy) -> None:
    no_pixel_decode.arm()
    header = read_header(flat_7000_png)  # 49 MP: under the 50 MP per-photo limit
    assert (header.format, header.decode_width, header.decode_height) == ("PNG", 7000, 7000)
    assert header.decode_megapixels == 49.0
    with pytest.raises(DecompressionBomb):
        read_header(flat_7000_png, DecodeLimits(max_megapixels=48.0))
    assert no_pixel_decode.calls == []


def test_read_header_predicts_the_decoded_size_of_reduced_jpegs() -> None:
    reduce_to = model_decode_size(448)
    big = Image.open(real_photos(1)[0]).convert("RGB").resize((4032, 3024))
    for img in (big, big.resize((1600, 1200)), big.resize((1300, 700)), big.resize((700, 500))):
        data = _save(img, "JPEG", quality=85)
        header = read_header(data, reduce_to=reduce_to)
        decoded = decode_image(data, reduce_to=reduce_to)
        assert (header.decode_width, header.decode_height) == (decoded.width, decoded.height)
        assert (header.width, header.height) == img.size
    assert read_header(_save(big, "JPEG"), reduce_to=reduce_to).decode_megapixels < 1.1  # 1/4 scale


def test_header_errors_are_the_decode_errors() -> None:
    data = _save(_flat(300, 200), "PNG")
    with pytest.raises(ImageTooLarge):
        read_header(data, DecodeLimits(max_bytes=len(data) - 1))
    for bad in (b"", b"text" * 20, _save(_flat(10, 10), "PNG")):
        with pytest.raises(type(_error(decode_image, bad))):
            read_header(bad)


def _error(fn: object, data: bytes) -> Exception:
    try:
        fn(data)  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("no error")


# --- the per-request budget ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-budget")
    rng = np.random.default_rng(1)
    write_tiny_model(folder, bank=(rng.normal(size=(20, 16)), ["sneaker"] * 15 + ["bag"] * 5))
    return folder


def _assessor(folder: Path, **settings: object) -> Assessor:
    return Assessor.from_settings(Settings(weights_dir=folder, **settings))  # type: ignore[arg-type]


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = decode_image

    def spy(data: bytes, *args: object, **kwargs: object) -> object:
        calls.append(hashlib_name(data))
        return real(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service_module, "decode_image", spy)  # the name the assessor calls
    return calls


def hashlib_name(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:8]


def test_default_budget() -> None:
    assert Settings().vision_max_request_megapixels == 200.0
    assert Settings().vision_max_megapixels == 50.0


@pytest.mark.parametrize("threads", [1, 2])
def test_twelve_flat_7000px_pngs_are_refused_before_any_decode(
    tiny: Path, flat_7000_png: bytes, decode_calls: list[str], no_pixel_decode: Spy, threads: int
) -> None:
    a = _assessor(tiny, vision_threads=threads)
    photos = [PhotoInput(f"flat-{i}.png", flat_7000_png) for i in range(12)]
    no_pixel_decode.arm()
    with pytest.raises(PixelBudgetExceeded) as info:
        a.assess(photos, principal="platform-a")
    err = info.value
    assert err.code == "pixel_budget_exceeded" and err.http_status == 413
    assert "588.0 megapixels" in err.message and "200" in err.message
    assert err.details == {"megapixels": 588.0, "limit": 200.0}
    assert decode_calls == [] and no_pixel_decode.calls == []


def test_the_budget_counts_decoded_pixels_from_the_headers(tiny: Path, decode_calls: list[str]) -> None:
    photos = [PhotoInput(p.name, p.read_bytes()) for p in real_photos(4)]
    reduce_to = model_decode_size(64)  # the tiny model's input size -> its reduced decode size
    a = _assessor(tiny)
    assert a.reduce_to == reduce_to
    total = sum(read_header(p.data, reduce_to=reduce_to).decode_megapixels for p in photos)
    at_limit = _assessor(tiny, vision_max_request_megapixels=total + 1e-9)
    r = at_limit.assess(photos)
    assert all(p.width for p in r.photos) and len(decode_calls) == 4
    decode_calls.clear()
    over = _assessor(tiny, vision_max_request_megapixels=total - 0.01)
    with pytest.raises(PixelBudgetExceeded):
        over.assess(photos)
    assert decode_calls == []


def test_photos_refused_by_their_header_do_not_count(tiny: Path, flat_7000_png: bytes) -> None:
    """A bomb is refused on its own (decompression_bomb), not charged to the request's budget."""
    a = _assessor(tiny, vision_max_request_megapixels=60.0)
    bomb = PhotoInput("bomb.png", _save(_flat(8000, 8000), "PNG"))  # 64 MP: over the per-photo limit
    good = PhotoInput(real_photos(1)[0].name, real_photos(1)[0].read_bytes())
    r = a.assess([bomb, PhotoInput("flat.png", flat_7000_png), good])
    assert [x.code for x in r.photos[0].reasons] == ["decompression_bomb"]
    assert r.photos[1].width == 7000 and r.photos[2].width
    with pytest.raises(PixelBudgetExceeded):  # 49 + 49 > 60
        a.assess([PhotoInput("flat.png", flat_7000_png), PhotoInput("flat2.png", flat_7000_png)])


@pytest.fixture(scope="module")
def api(api_tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, str]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("budget-api"), weights_dir=api_tiny_weights)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        actors = make_actors(client)
        yield client, actors.platform, new_item(client, actors.platform)


def test_api_answers_413_problem_and_records_nothing(
    api: tuple[TestClient, str, str], flat_7000_png: bytes, decode_calls: list[str]
) -> None:
    client, key, item = api
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    size = ctx.ledger.size()
    files = [("photos", (f"flat-{i}.png", flat_7000_png, "image/png")) for i in range(12)]
    r = client.post(f"/v1/items/{item}/assessments", files=files, headers=bearer(key))
    assert r.status_code == 413, r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "pixel_budget_exceeded"
    assert ctx.ledger.size() == size
    assert decode_calls == []
