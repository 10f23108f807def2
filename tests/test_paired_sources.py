"""Paired input/target folders: a pair that cannot be used is never read as something else
without a word — skipped and counted for training, refused by name for a strict reader — and an
input is resized to its target only when both have the same aspect ratio."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from genlv_jax.data import image_io, paired_sources
from genlv_jax.data.image_sources import procedural_image
from genlv_jax.data.paired_sources import PairedFolderSource, UnusablePairError


def _write(path, height: int, width: int, seed: int = 0) -> np.ndarray:
  image = procedural_image(seed, max(height, width))[:height, :width]
  image_io.write_image(path, image)
  return image


def _truncate(path) -> None:
  """A PNG whose header opens (so the folder lists it) but whose pixels cannot be decoded."""
  path.write_bytes(path.read_bytes()[:60])


def _folders(tmp_path, n: int = 3, size: int = 32):
  for i in range(n):
    _write(tmp_path / "in" / f"{i}.png", size, size, seed=i)
    _write(tmp_path / "out" / f"{i}.png", size, size, seed=i + 10)
  return tmp_path / "in", tmp_path / "out"


@pytest.mark.parametrize("a, b, same", [
    ((60, 80), (60, 80), True),
    ((30, 40), (120, 160), True),     # x4
    ((191, 255), (767, 1021), True),  # 1021x767 at 1/4, rounded down: within one pixel
    ((192, 255), (767, 1021), True),
    ((189, 255), (767, 1021), False),  # two pixels short: another aspect ratio
    ((60, 80), (80, 80), False),
    ((100, 100), (100, 120), False),
])
def test_same_aspect_ratio_allows_one_pixel_of_rounding(a, b, same):
  assert paired_sources.same_aspect_ratio(a, b) is same
  assert paired_sources.same_aspect_ratio(b, a) is same


def test_unreadable_pair_is_skipped_for_training_and_refused_by_a_strict_read(tmp_path, caplog):
  inputs, targets = _folders(tmp_path)
  _truncate(inputs / "1.png")
  source = PairedFolderSource(str(inputs), str(targets))
  assert len(source) == 3 and source.num_skipped == 0  # the header opened: listed
  with pytest.raises(UnusablePairError, match="1.png: unreadable input: ") as error:
    source.read_pair(1, substitute=False)
  assert error.value.input_path.endswith("1.png") and source.num_skipped == 0
  with caplog.at_level(logging.WARNING):
    inp, _ = source.read_pair(1)  # the training pipeline: the next pair, counted and named
    again, _ = source.read_pair(1)
  np.testing.assert_array_equal(inp, source.read_pair(2, substitute=False)[0])
  np.testing.assert_array_equal(again, inp)
  assert [p.rsplit("/", 1)[-1] for p in source.skipped] == ["1.png"]
  assert sum("1.png" in r.getMessage() for r in caplog.records) == 1  # named once


def test_pairs_of_different_aspect_ratios_are_refused_with_their_sizes(tmp_path, caplog):
  inputs, targets = _folders(tmp_path)
  _write(inputs / "0.png", 24, 32)  # 32x24 input for a 32x32 target
  source = PairedFolderSource(str(inputs), str(targets))
  with pytest.raises(UnusablePairError, match="input 32x24 and target 32x32 differ in aspect"):
    source.read_pair(0, substitute=False)
  with caplog.at_level(logging.WARNING):
    inp, tgt = source.read_pair(0)
  assert inp.shape == tgt.shape == (32, 32, 3)
  np.testing.assert_array_equal(inp, source.read_pair(1, substitute=False)[0])
  assert source.skipped[-1].endswith("0.png")
  assert any("32x24" in r.getMessage() and "32x32" in r.getMessage() for r in caplog.records)


def test_inputs_at_a_common_scale_are_resized_saying_so_once(tmp_path, caplog):
  inputs, targets = _folders(tmp_path, size=64)
  for i in range(2):  # low-resolution inputs: 16x12 for 64x48 targets
    _write(inputs / f"{i}.png", 12, 16, seed=i)
    _write(targets / f"{i}.png", 48, 64, seed=i + 10)
  source = PairedFolderSource(str(inputs), str(targets))
  with caplog.at_level(logging.WARNING):
    pairs = [source.read_pair(i, substitute=False) for i in range(2)]
  for inp, tgt in pairs:
    assert inp.shape == tgt.shape == (48, 64, 3)
  resizing = [r for r in caplog.records if "resizing" in r.getMessage()]
  assert len(resizing) == 1 and "16x12 -> 64x48" in resizing[0].getMessage()
  assert source.num_resized_reads == 2 and source.num_skipped == 0


def test_an_input_whose_target_is_unreadable_is_not_paired_with_another_target(tmp_path):
  # RESIDE-style prefix matching pairs `7_1` with `7` only when no target is named `7_1`.
  for name in ("7.png", "7_1.png"):
    _write(tmp_path / "out" / name, 32, 32)
  _write(tmp_path / "in" / "7_1.png", 32, 32)
  _write(tmp_path / "in" / "7_2.png", 32, 32)
  (tmp_path / "out" / "7_1.png").write_bytes(b"\0not an image" * 8)
  source = PairedFolderSource(str(tmp_path / "in"), str(tmp_path / "out"))
  matched = {i.rsplit("/", 1)[-1]: t.rsplit("/", 1)[-1] for i, t in source.pairs}
  assert matched == {"7_2.png": "7.png"}
  assert [(i.rsplit("/", 1)[-1], t.rsplit("/", 1)[-1]) for i, t in
          source.unreadable_targets] == [("7_1.png", "7_1.png")]
  assert not source.unmatched


def test_a_target_that_fails_to_decode_is_refused_by_a_strict_read(tmp_path):
  inputs, targets = _folders(tmp_path)
  _truncate(targets / "2.png")
  source = PairedFolderSource(str(inputs), str(targets))
  with pytest.raises(UnusablePairError, match="2.png: unreadable target: "):
    source.read_pair(2, substitute=False)
