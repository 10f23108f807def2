"""Labelled image grids: column titles on a header strip, a label per row on a left strip, a
caption under each cell, and cells of at least `min_cell` pixels.

Every picture the project writes goes through `labelled_grid`: the demo's and the trainer's
sample grids (`report.sample_grid`), `python -m genlv_jax.tasks show`, and, for a model's
outputs, `prediction_grid` (rows of prompt input, prompt target, input, output and an optional
target, with PSNR captions where a target exists).

Host code (numpy and OpenCV only); the text is OpenCV's built-in Hershey font, so nothing is
downloaded and every machine draws the same pixels. All text goes through `put_text`, which a
test can replace to read what was written.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import cv2
import numpy as np

from genlv_jax.errors import UserError

PREDICTION_COLUMNS = ("prompt input", "prompt target", "input", "output", "target")
MIN_CELL = 128
FONT = cv2.FONT_HERSHEY_SIMPLEX
TITLE_SCALE = 0.5
TEXT_SCALE = 0.42
SMALLEST_SCALE = 0.3  # text shrinks to fit its cell down to this, then is shortened
INK = (20, 20, 20)
PAPER = 255
STRIP = (226, 226, 226)  # header and label strips: set apart from white gaps and image content
PAD = 6  # around text, px

# A grid cell: an image, or None for a blank cell.
Image = Optional[np.ndarray]


def put_text(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
  """Draws `text` with its baseline's left end at `origin` (x, y). The one place text is
  drawn: tests replace it to collect the strings."""
  cv2.putText(canvas, text, origin, FONT, scale, INK, 1, cv2.LINE_AA)


def _ascii(text: str) -> str:
  # Hershey fonts have ASCII glyphs only; anything else would be drawn as '?'-like junk.
  return text.encode("ascii", "replace").decode("ascii")


def _text_size(text: str, scale: float) -> tuple[int, int]:
  """(width, height above baseline + descent) of one line, px."""
  (w, h), baseline = cv2.getTextSize(text, FONT, scale, 1)
  return w, h + baseline


def _fit(text: str, width: int, scale: float) -> tuple[str, float]:
  """`text` at the largest scale ≤ `scale` (down to SMALLEST_SCALE) that fits `width` px;
  shortened with '..' when even that is too wide."""
  while scale > SMALLEST_SCALE and _text_size(text, scale)[0] > width:
    scale = round(scale - 0.02, 2)
  while len(text) > 1 and _text_size(text, scale)[0] > width:
    text = text[:-3] + ".." if len(text) > 3 else text[:-1]
  return text, scale


def _wrap(text: str, width: int, scale: float) -> list[str]:
  """Lines of at most `width` px, broken at spaces and after underscores (task names), each
  line then fitted; explicit newlines are kept."""
  lines = []
  for paragraph in _ascii(text).split("\n"):
    words = paragraph.replace("_", "_\x00").replace(" ", " \x00").split("\x00")
    line = ""
    for word in words:
      if line and _text_size((line + word).rstrip(), scale)[0] > width:
        lines.append(line.rstrip())
        line = word
      else:
        line += word
    lines.append(line.rstrip())
  return [_fit(line, width, scale)[0] for line in lines]


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
  """An image for display: HxWx3 uint8. Floats are taken in [0, 1] (clipped; NaN black), uint8
  as it is; grey (HxW or HxWx1) is repeated to three channels."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[:, :, None]
  if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
    raise UserError(f"a grid cell must be an HxW, HxWx1 or HxWx3 image, got shape {image.shape}")
  image = image[:, :, :3]
  if image.shape[2] == 1:
    image = np.repeat(image, 3, axis=2)
  if image.dtype != np.uint8:
    values = np.nan_to_num(np.asarray(image, np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    image = np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
  return image


def fit_cell(image: np.ndarray, min_cell: int = MIN_CELL,
             max_cell: Optional[int] = None) -> np.ndarray:
  """`image` (uint8 HxWx3) at display size: a short side below `min_cell` is enlarged by the
  smallest whole factor that reaches it, by pixel repetition (noise and blocks stay sharp and
  countable); a long side above `max_cell` is reduced by area averaging, but never so far that
  the short side drops below `min_cell`. Otherwise the image is left as it is."""
  h, w = image.shape[:2]
  if min(h, w) < min_cell:
    factor = math.ceil(min_cell / min(h, w))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
  if max_cell is not None and max(h, w) > max_cell:
    scale = max(max_cell / max(h, w), min_cell / min(h, w))
    if scale < 1.0:
      size = (max(1, round(w * scale)), max(1, round(h * scale)))
      return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
  return image


def _centred_text(canvas: np.ndarray, lines: Sequence[str], x0: int, y0: int, width: int,
                  height: int, scale: float) -> None:
  """`lines` centred in the box (x0, y0, width, height) of `canvas`."""
  line_height = _text_size("Ag", scale)[1] + 3
  top = y0 + max(0, (height - line_height * len(lines)) // 2)
  for i, line in enumerate(lines):
    text, fitted = _fit(line, width - 2, scale)
    w, _ = _text_size(text, fitted)
    (_, ascent), _ = cv2.getTextSize(text or "A", FONT, fitted, 1)
    x = x0 + max(0, (width - w) // 2)
    put_text(canvas, text, (x, top + i * line_height + ascent + 1), fitted)


def labelled_grid(rows: Sequence[Sequence[Image]], columns: Sequence[str],
                  row_labels: Optional[Sequence[str]] = None,
                  captions: Optional[Sequence[Sequence[Optional[str]]]] = None,
                  min_cell: int = MIN_CELL, *, max_cell: Optional[int] = None,
                  gap: int = 4, title: Optional[str] = None) -> np.ndarray:
  """Images in a table with titles, row labels and captions, as one uint8 RGB picture.

  Args:
    rows: one sequence of images per row, one per column; an image is HxWx3 (or grey) float
      in [0, 1] or uint8, and None leaves its cell blank. Cells of a column may differ in size:
      each is centred in its column's width and its row's height.
    columns: the column titles, drawn on a grey header strip; as many as the longest row.
    row_labels: one label per row (a task name, a severity), drawn on a grey strip at the
      left, wrapped at spaces and underscores; None: no strip.
    captions: per row, one caption per cell (None: no caption), drawn under the cell, e.g.
      "output 27.41 dB"; None: no caption line.
    min_cell: the smallest side of a cell's image, px; smaller images are enlarged by a whole
      factor with pixel repetition (a 64 px image is shown at 128), larger ones are kept.
    max_cell: if set, images whose long side exceeds it are reduced (area averaging), never
      below `min_cell`.
    gap: white space between cells, px.
    title: an optional line above the header strip (e.g. the task of a contact sheet).

  Returns:
    uint8 array [H, W, 3].

  Raises:
    UserError: no rows, a row longer than `columns`, labels or captions that do not match the
      rows, a cell that is not an image, or `min_cell` below 16.
  """
  if not rows:
    raise UserError("a grid needs at least one row")
  if min_cell < 16:
    raise UserError(f"min_cell must be at least 16 px, got {min_cell}")
  n_cols = len(columns)
  if any(len(row) > n_cols for row in rows):
    raise UserError(f"a grid row has more cells than the {n_cols} column titles")
  if row_labels is not None and len(row_labels) != len(rows):
    raise UserError(f"{len(row_labels)} row labels for {len(rows)} rows")
  if captions is not None and (len(captions) != len(rows) or any(
      len(c) > n_cols for c in captions)):
    raise UserError("captions must give one list per row, at most one caption per column")
  cells = [[None if image is None else fit_cell(to_uint8_rgb(image), min_cell, max_cell)
            for image in row] + [None] * (n_cols - len(row)) for row in rows]
  col_widths = [max([min_cell] + [row[c].shape[1] for row in cells if row[c] is not None])
                for c in range(n_cols)]
  row_heights = [max([min_cell] + [cell.shape[0] for cell in row if cell is not None])
                 for row in cells]
  caption_height = _text_size("Ag", TEXT_SCALE)[1] + 2 * PAD - 2
  has_caption = [captions is not None and any(captions[r]) for r in range(len(rows))]
  header_height = _text_size("Ag", TITLE_SCALE)[1] + 2 * PAD
  label_width = 0
  labels = []
  if row_labels is not None:
    wrap_width = max(min_cell, 96)
    labels = [_wrap(str(label), wrap_width, TEXT_SCALE) for label in row_labels]
    label_width = max(_text_size(line, TEXT_SCALE)[0] for lines in labels for line in lines)
    label_width = max(label_width, 1) + 2 * PAD
  title_height = _text_size("Ag", TITLE_SCALE)[1] + 2 * PAD if title else 0
  left = (label_width + gap) if label_width else 0
  width = left + sum(col_widths) + gap * (n_cols + 1)
  heights = [h + (caption_height if cap else 0) for h, cap in zip(row_heights, has_caption)]
  height = title_height + header_height + sum(heights) + gap * (len(rows) + 1)
  canvas = np.full((height, width, 3), PAPER, np.uint8)

  if title:
    _centred_text(canvas, _wrap(title, width - 2 * PAD, TITLE_SCALE)[:1], 0, 0, width,
                  title_height, TITLE_SCALE)
  x_cols = [left + gap + sum(col_widths[:c]) + gap * c for c in range(n_cols)]
  header_top = title_height
  canvas[header_top:header_top + header_height, left:] = STRIP
  for c, name in enumerate(columns):
    _centred_text(canvas, [_ascii(str(name))], x_cols[c], header_top, col_widths[c],
                  header_height, TITLE_SCALE)
  y = header_top + header_height + gap
  for r, row in enumerate(cells):
    if label_width:
      canvas[y:y + heights[r], gap // 2:gap // 2 + label_width] = STRIP
      _centred_text(canvas, labels[r], gap // 2 + PAD, y, label_width - 2 * PAD, heights[r],
                    TEXT_SCALE)
    for c, cell in enumerate(row):
      if cell is not None:
        h, w = cell.shape[:2]
        top = y + (row_heights[r] - h) // 2
        x = x_cols[c] + (col_widths[c] - w) // 2
        canvas[top:top + h, x:x + w] = cell
      caption = captions[r][c] if captions is not None and c < len(captions[r]) else None
      if caption:
        _centred_text(canvas, [_ascii(caption)], x_cols[c], y + row_heights[r], col_widths[c],
                      caption_height, TEXT_SCALE)
    y += heights[r] + gap
  return canvas


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
  """PSNR in dB of float images in [0, 1] (the prediction clipped), RGB, float64: the `ours`
  convention's formula, for captions (`evaluation.metrics` gives the reported numbers)."""
  a = np.clip(np.asarray(prediction, np.float64), 0.0, 1.0)
  mse = float(np.mean((a - np.asarray(target, np.float64)) ** 2))
  return math.inf if mse == 0 else -10.0 * math.log10(mse)


def mae_255(prediction: np.ndarray, target: np.ndarray) -> float:
  """Mean absolute error on the 0–255 scale (the prediction clipped to [0, 1])."""
  a = np.clip(np.asarray(prediction, np.float64), 0.0, 1.0)
  return float(np.mean(np.abs(a - np.asarray(target, np.float64)))) * 255.0


def metric_caption(name: str, prediction: np.ndarray, target: np.ndarray,
                   metric: str = "psnr") -> str:
  """`name` and how far `prediction` is from `target`: "output 27.41 dB" (PSNR) or
  "output MAE 12.3" (feature extraction); "inf dB" for identical images, "nan dB" for a
  non-finite prediction."""
  if metric == "mae":
    return f"{name} MAE {mae_255(prediction, target):.1f}"
  if metric != "psnr":
    raise UserError(f"caption metric must be psnr or mae, got {metric!r}")
  return f"{name} {psnr(prediction, target):.2f} dB"


def prediction_captions(row: Sequence[Image], metric: str = "psnr") -> list[Optional[str]]:
  """Captions of a `prediction_grid` row (prompt input, prompt target, input, output[,
  target]): the input's and the output's distance to the target when there is one, else
  none."""
  row = list(row) + [None] * (len(PREDICTION_COLUMNS) - len(row))
  target = row[4]
  if target is None:
    return [None] * len(PREDICTION_COLUMNS)
  captions: list[Optional[str]] = [None] * len(PREDICTION_COLUMNS)
  for index, name in ((2, "input"), (3, "output")):
    image = row[index]
    if image is not None and np.shape(image) == np.shape(target):
      captions[index] = metric_caption(name, _as_float(image), _as_float(target), metric)
  return captions


def _as_float(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  return image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image


def prediction_grid(rows: Sequence[Sequence[Image]], row_labels: Optional[Sequence[str]] = None,
                    min_cell: int = MIN_CELL, *, max_cell: Optional[int] = None,
                    metrics: Optional[Sequence[str]] = None, title: Optional[str] = None,
                    gap: int = 4) -> np.ndarray:
  """A model's results as a labelled grid (uint8 RGB): one row per example.

  Args:
    rows: per row (prompt_input, prompt_target, input, output[, target]); a prompt may be None
      (a model without prompts: its columns are then left out when no row has one), and the
      target may be missing or None (the target column is left out when no row has one).
    row_labels: one label per row (task name, file name); None: no label strip.
    min_cell: the smallest side of a shown image (`labelled_grid`).
    max_cell: reduce images whose long side exceeds this (`labelled_grid`).
    metrics: per row "psnr" (default) or "mae" (feature extraction): what the captions of the
      input and output cells say about their distance to the target.
    title: an optional line above the grid.
    gap: white space between cells, px.

  Returns:
    uint8 array [H, W, 3].
  """
  rows = [list(row) + [None] * (len(PREDICTION_COLUMNS) - len(row)) for row in rows]
  if any(len(row) != len(PREDICTION_COLUMNS) for row in rows):
    raise UserError("a prediction grid row is (prompt_input, prompt_target, input, output"
                    "[, target])")
  metrics = list(metrics) if metrics is not None else ["psnr"] * len(rows)
  if len(metrics) != len(rows):
    raise UserError(f"{len(metrics)} caption metrics for {len(rows)} rows")
  captions = [prediction_captions(row, metric) for row, metric in zip(rows, metrics)]
  keep = [c for c in range(len(PREDICTION_COLUMNS))
          if c in (2, 3) or any(row[c] is not None for row in rows)]
  return labelled_grid([[row[c] for c in keep] for row in rows],
                       [PREDICTION_COLUMNS[c] for c in keep], row_labels,
                       [[caps[c] for c in keep] for caps in captions], min_cell,
                       max_cell=max_cell, gap=gap, title=title)
