"""Tests of genlv_jax.data.image_sources: the offline builtin source and the folder source."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest
from PIL import Image

from genlv_jax.data import image_sources


@pytest.fixture
def no_network(monkeypatch):
  """Any attempt to open a connection fails (the builtin source must work offline)."""
  def refuse(*args, **kwargs):
    raise OSError("network disabled in this test")
  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket, "create_connection", refuse)


def _fingerprint(image: np.ndarray) -> bytes:
  small = np.asarray(Image.fromarray((image * 255).astype(np.uint8)).resize((16, 16)))
  return small.tobytes()


def test_builtin_has_at_least_20_distinct_rgb_images_offline(no_network):
  source = image_sources.parse_source("builtin")
  assert len(source) >= 20
  prints = set()
  for i in range(len(source)):
    img = source[i]
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and min(img.shape[:2]) >= 64
    assert float(img.std()) > 0.01
    prints.add(_fingerprint(img))
  assert len(prints) == len(source)
  names = source.names
  assert "skimage:astronaut" in names and "sklearn:china" in names
  assert sum(n.startswith(("skimage:", "sklearn:")) for n in names) >= 10


def test_builtin_is_deterministic():
  a, b = image_sources.BuiltinSource(), image_sources.BuiltinSource()
  for i in (0, len(a) - 1, len(a) - 5):
    np.testing.assert_array_equal(a[i], b[i])
  with pytest.raises(IndexError):
    a[len(a)]


def _write_folder(root) -> dict[str, np.ndarray]:
  """Writes one image of each awkward kind; returns the expected RGB arrays by file name."""
  rng = np.random.default_rng(0)
  expected = {}
  gray = rng.integers(0, 256, (12, 10), dtype=np.uint8)
  Image.fromarray(gray, "L").save(root / "gray.png")
  expected["gray.png"] = np.repeat(gray[:, :, None], 3, 2) / 255.0

  rgba = rng.integers(0, 256, (8, 9, 4), dtype=np.uint8)
  rgba[0, 0, 3] = 0
  Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
  a = rgba[:, :, 3:4] / 255.0
  expected["rgba.png"] = rgba[:, :, :3] / 255.0 * a + (1 - a)  # over white

  g16 = rng.integers(0, 65536, (7, 11), dtype=np.uint16)
  Image.fromarray(g16).save(root / "deep16.png")
  expected["deep16.png"] = np.repeat(g16[:, :, None], 3, 2) / 65535.0

  palette_img = Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).quantize(16)
  (root / "nested" / "deeper").mkdir(parents=True)
  palette_img.save(root / "nested" / "deeper" / "palette.png")
  expected["palette.png"] = np.asarray(palette_img.convert("RGB")) / 255.0

  rgb = rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)
  exif = Image.Exif()
  exif[0x0112] = 6  # orientation: rotate 90° clockwise for display
  Image.fromarray(rgb).save(root / "nested" / "rotated.jpg", exif=exif, quality=95)
  expected["rotated.jpg"] = None  # lossy; only the transposed shape (20, 10) is checked
  return expected


def test_folder_converts_every_kind_and_skips_corrupt_files(tmp_path, caplog):
  expected = _write_folder(tmp_path)
  (tmp_path / "corrupt.png").write_bytes(b"\x00not an image at all" * 10)
  (tmp_path / "notes.txt").write_text("hello")
  good = tmp_path / "gray.png"
  (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:60])
  (tmp_path / ".hidden.png").write_bytes(good.read_bytes())

  with caplog.at_level(logging.WARNING):
    source = image_sources.parse_source(f"folder:{tmp_path}")
    images = {p.rsplit("/", 1)[-1]: source[i] for i, p in enumerate(source.paths)}
    # A truncated PNG opens (header) but fails to decode: it is skipped when read.
    images.pop("truncated.png", None)
  assert set(images) == set(expected)
  for name, img in images.items():
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert 0 <= img.min() and img.max() <= 1
    if expected[name] is not None:
      # Pillow composites alpha in 8 bits: allow one level.
      np.testing.assert_allclose(img, expected[name], atol=1 / 255, err_msg=name)
  assert images["rotated.jpg"].shape == (20, 10, 3)
  assert source.num_skipped == 3  # corrupt.png, notes.txt, truncated.png
  for bad in ("corrupt.png", "notes.txt", "truncated.png"):
    assert sum(bad in r.getMessage() for r in caplog.records) == 1, bad
  # Reading the truncated file again neither warns again nor fails.
  caplog.clear()
  idx = [p.endswith("truncated.png") for p in source.paths].index(True)
  assert source[idx].shape[2] == 3
  assert not caplog.records


def test_parse_source_errors(tmp_path):
  with pytest.raises(ValueError, match="unknown image source"):
    image_sources.parse_source("imagenet")
  with pytest.raises(ValueError, match="not found"):
    image_sources.parse_source(f"folder:{tmp_path / 'missing'}")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no readable images"):
    image_sources.parse_source(f"folder:{tmp_path / 'empty'}")


def test_array_conversion_handles_dtypes_and_channels():
  gray_bool = np.array([[True, False]])
  np.testing.assert_array_equal(image_sources.array_to_rgb_float(gray_bool),
                                [[[1, 1, 1], [0, 0, 0]]])
  deep = np.array([[0, 65535]], np.uint16)
  np.testing.assert_allclose(image_sources.array_to_rgb_float(deep)[0, 1], [1, 1, 1])
  rgba = np.array([[[0.2, 0.4, 0.6, 0.0], [0.2, 0.4, 0.6, 1.0]]], np.float32)
  out = image_sources.array_to_rgb_float(rgba)
  assert out.shape == (1, 2, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out[0, 0], [1, 1, 1])  # transparent → white
  np.testing.assert_allclose(out[0, 1], [0.2, 0.4, 0.6], atol=1e-6)
