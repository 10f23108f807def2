"""`python -m genlv_jax.app`: a web page to try a model on your own images (Gradio).

    python -m genlv_jax.app --config configs/base.py --checkpoint CKPT [--host 127.0.0.1 \
        --port 7860] [--tile 256 --overlap 64]
    python -m genlv_jax.app --config configs/tiny.py --random-init      # a smoke test

Upload an image, then either choose a task (its prompt pair is synthesised from a bundled photo
and shown; a severity slider and a prompt seed vary it) or upload a prompt pair of your own
(prompt source → prompt target). The result appears beside the input under a before/after
slider and can be downloaded as a PNG. Images larger than a tile run in overlapping tiles with a
progress bar, as `infer` does (`runner.predict_image`). A model without prompts (X-Restormer,
`model.use_prompt=False`) shows no prompt inputs.

Gradio is an optional extra (`pip install -e ".[app]"`); importing this module does not import
it. The page works offline: no telemetry (`analytics_enabled=False`), no share link, no
server-side rendering process, and Gradio's bundled fonts and scripts come from the server
itself. A user mistake (no image, a prompt pair of two sizes, a task whose prompt needs real
data, a bad tile size) shows as an error message on the page; the server goes on.
"""

from __future__ import annotations

import atexit
import collections
import html
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from genlv_jax import api, cli
from genlv_jax.data import image_io
from genlv_jax.errors import UserError
from genlv_jax.inference import prompts as prompt_sources
from genlv_jax.inference.runner import (DEFAULT_OVERLAP, DEFAULT_PROMPT_MAX, DEFAULT_TILE,
                                        check_options, predict_image)
from genlv_jax.tasks import registry

if TYPE_CHECKING:
  import gradio

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
TASK_MODE = "Synthesise from a task"
UPLOAD_MODE = "Upload a prompt pair"
DEFAULT_TASK = "gaussian_denoising"
# Results kept on disk for download; older ones are deleted (Gradio has copied them to its
# cache by then, and their downloads come from there).
KEPT_RESULTS = 32
# Gradio's own copies of uploads and results: checked hourly, deleted after a day.
GRADIO_CACHE_LIFETIME = (3600, 86400)
# Image toolbars without "share" (it posts to Hugging Face).
IMAGE_BUTTONS = ["download", "fullscreen"]


def import_gradio() -> Any:
  """Imports gradio with its telemetry off, or raises UserError saying how to install it."""
  # Read by gradio and gradio_client when they start: no version check, no usage reports.
  os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
  try:
    import gradio  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f"the web app needs gradio ({e}): pip install -e \".[app]\"") from None
  return gradio


def synthesized_prompt(task: str, severity: Optional[float], seed: Any
                       ) -> tuple[np.ndarray, np.ndarray]:
  """The prompt pair of `task` (`prompts.synthesize_prompt`), with messages for the page.

  Raises:
    UserError: no task, an unknown one, one whose prompt needs real data, a severity outside
      [0, 1] or a seed that is not a whole number >= 0.
  """
  if not task:
    raise UserError("choose a task (or upload a prompt pair)")
  seed = _whole_number(seed, "prompt seed")
  prompt_sources.check_task(task, listing="choose one from the list",
                            instead=f"choose \"{UPLOAD_MODE}\" and give a pair from it")
  return prompt_sources.synthesize_prompt(task, None if severity is None else float(severity),
                                          seed)


def uploaded_prompt(source_path: Optional[str], target_path: Optional[str],
                    max_side: int = DEFAULT_PROMPT_MAX) -> tuple[np.ndarray, np.ndarray]:
  """Reads an uploaded prompt pair; like `runner.load_prompt_pair` (prompts larger than
  `max_side` are centre-cropped), with messages that name the page's fields, not temp files.

  Raises:
    UserError: a missing or unreadable image, or two images of different sizes.
  """
  if not source_path or not target_path:
    raise UserError("upload both images of the prompt pair: the prompt source and the prompt "
                    "target (the same picture before and after the transformation)")
  source = read_upload(source_path, "the prompt source")
  target = read_upload(target_path, "the prompt target")
  if source.shape != target.shape:
    raise UserError(f"the prompt source is {source.shape[1]}x{source.shape[0]} but the prompt "
                    f"target is {target.shape[1]}x{target.shape[0]}: a prompt pair must have "
                    "one size (it shows one transformation pixel for pixel)")
  return image_io.center_crop_to(source, max_side), image_io.center_crop_to(target, max_side)


def read_upload(path: Optional[str], what: str) -> np.ndarray:
  """An uploaded image file as HxWx3 float32 in [0, 1] (`image_io.read_image`: grayscale,
  RGBA, 16-bit and EXIF-rotated files become RGB; non-finite pixels are refused).

  Raises:
    UserError: nothing uploaded, or a file that cannot be read (named as `what`).
  """
  if not path:
    raise UserError(f"upload {what} first")
  try:
    return image_io.read_image(path)
  except image_io.ImageReadError as e:
    # The message names Gradio's temp file; the user knows the upload by its name.
    reason = str(e).replace(str(path), os.path.basename(path))
    raise UserError(f"{what}: {reason}") from None


def _whole_number(value: Any, what: str, minimum: int = 0) -> int:
  """`value` (a number field: int, float or None) as an int >= `minimum`, or UserError."""
  if value is None or not float(value).is_integer() or value < minimum:
    raise UserError(f"the {what} must be a whole number >= {minimum}, got {value}")
  return int(value)


class ResultStore:
  """The PNG files a session writes for display and download: one fresh folder per result,
  only the newest `keep` kept, all removed by `close()`."""

  def __init__(self, root: Optional[str] = None, keep: int = KEPT_RESULTS):
    self.root = root or tempfile.mkdtemp(prefix="genlv_app_")
    self._owned = root is None
    self._folders: collections.deque[str] = collections.deque()
    self.keep = keep

  def new_folder(self) -> str:
    """A new empty folder for one result; the oldest beyond `keep` are deleted."""
    folder = os.path.join(self.root, uuid.uuid4().hex[:12])
    os.makedirs(folder)
    self._folders.append(folder)
    while len(self._folders) > self.keep:
      shutil.rmtree(self._folders.popleft(), ignore_errors=True)
    return folder

  def close(self) -> None:
    """Deletes every result (and the root folder when this store made it)."""
    while self._folders:
      shutil.rmtree(self._folders.popleft(), ignore_errors=True)
    if self._owned:
      shutil.rmtree(self.root, ignore_errors=True)


def run_model(predictor, image_path: Optional[str], prompt: Optional[tuple[np.ndarray,
                                                                           np.ndarray]],
              store: ResultStore, tile: Any = DEFAULT_TILE, overlap: Any = DEFAULT_OVERLAP,
              tile_batch: int = 1, progress: Optional[Callable[[int, int], None]] = None
              ) -> tuple[str, str, str]:
  """The page's Run: reads the uploaded image, predicts it (`runner.predict_image`, tiled when
  larger than `tile`) and writes the input and the output as 8-bit PNGs into a new folder of
  `store`.

  Returns:
    (input PNG, output PNG, a one-line summary). The output is `<input name>_genlv.png`.

  Raises:
    UserError: no image, an unreadable one, a bad tile size or overlap, or an output that is
      not finite (nothing is written then).
  """
  tile = _whole_number(tile, "tile size")
  overlap = _whole_number(overlap, "tile overlap")
  check_options(tile, overlap, None, tile_batch=tile_batch)
  image = read_upload(image_path, "an input image")
  source, target = prompt if prompt is not None else (None, None)
  start = time.perf_counter()
  output = predict_image(predictor, image, source, target, tile, overlap, tile_batch,
                         progress=progress)
  seconds = time.perf_counter() - start
  bad = image_io.count_nonfinite(output)
  if bad:
    raise UserError(f"the model's output has {bad} non-finite value(s) (NaN or infinity) of "
                    f"{output.size}: nothing to show (are the weights broken?)")
  folder = store.new_folder()
  stem = os.path.splitext(os.path.basename(image_path))[0] or "image"
  input_png = os.path.join(folder, f"{stem}_input.png")
  output_png = os.path.join(folder, f"{stem}_genlv.png")
  image_io.write_image(input_png, image)
  image_io.write_image(output_png, output)
  h, w = image.shape[:2]
  tiled = tile and (h > tile or w > tile)
  how = f"in {tile} px tiles (overlap {overlap})" if tiled else "whole"
  summary = (f"{w}x{h} → {output.shape[1]}x{output.shape[0]}, run {how} in {seconds:.2f} s "
             "(the first run of a size includes compiling)")
  return input_png, output_png, summary


def _task_choices() -> list[tuple[str, str]]:
  """(label, task name) of every task whose prompt can be synthesised, by paper name."""
  tasks = [registry.get_task(name) for name in prompt_sources.synthesizable_tasks()]
  return sorted(((f"{t.paper_name} ({t.name})", t.name) for t in tasks),
                key=lambda c: c[0].lower())


def _describe_weights(config, weights: str) -> str:
  model = config.model
  kind = "GenLV" if model.use_prompt else "X-Restormer (no prompt)"
  return f"{kind}, dim {model.dim}; weights: {weights}"


def build_app(config, predictor, *, weights: str = "random init", tile: int = DEFAULT_TILE,
              overlap: int = DEFAULT_OVERLAP, tile_batch: int = 1,
              store: Optional[ResultStore] = None) -> gradio.Blocks:
  """The web page for `predictor` (a `genlv_jax.api.Predictor` of `config`) as a `gr.Blocks`.

  Args:
    config: the model's config; `config.model.use_prompt` False leaves the prompt inputs out.
    predictor: called by `runner.predict_image`, one request at a time.
    weights: what the page says about the weights (a checkpoint path).
    tile: default tile size (px; 0: whole images); overlap: default tile overlap (px).
    tile_batch: tiles per forward pass.
    store: where results are written (default: a new temp folder, removed at exit).

  Returns:
    The `gr.Blocks`; `launch()` it (`main` does, offline). Its API endpoints, for
    `gradio_client`: `/run` (image, then, with prompts, prompt mode, task, severity, prompt
    seed, prompt source, prompt target; then tile, overlap) → (before/after pair, result
    file, [prompt source, prompt target,] summary) and, with prompts, `/prompt` (task,
    severity, seed) → (prompt source, prompt target).
  """
  gr = import_gradio()
  if store is None:
    store = ResultStore()
    atexit.register(store.close)
  use_prompt = bool(config.model.use_prompt)

  def as_gr_error(e: UserError):
    # gr.Error renders HTML; a path or a type name in the message must stay text.
    return gr.Error(html.escape(str(e), quote=False), title="Cannot do that",
                    print_exception=False)

  def progress_reporter(progress) -> Callable[[int, int], None]:
    return lambda done, total: progress((done, total), desc="tiles", unit="tile")

  with gr.Blocks(title="GenLV", analytics_enabled=False,
                 delete_cache=GRADIO_CACHE_LIFETIME) as blocks:
    gr.Markdown("## GenLV: a visual task prompt, applied to your image\n"
                f"{_describe_weights(config, weights)}. "
                + ("The prompt pair shows a transformation (prompt source → prompt target); "
                   "the model applies it to the input." if use_prompt else
                   "This model takes no prompt."))
    with gr.Row():
      with gr.Column(scale=2):
        image = gr.Image(label="Input image", type="filepath", image_mode=None,
                         sources=["upload", "clipboard"], height=320,
                         buttons=IMAGE_BUTTONS)
        if use_prompt:
          mode = gr.Radio([TASK_MODE, UPLOAD_MODE], value=TASK_MODE, label="Prompt")
          with gr.Group(visible=True) as task_group:
            choices = _task_choices()
            names = [name for _, name in choices]
            # Typed names are allowed too (a paper name, say); a wrong one gets a message.
            task = gr.Dropdown(choices, value=DEFAULT_TASK if DEFAULT_TASK in names else names[0],
                               label="Task", allow_custom_value=True, filterable=True)
            with gr.Row():
              severity = gr.Slider(0.0, 1.0, value=prompt_sources.DEFAULT_SEVERITY,
                                   step=0.05, label="Severity (0 mild, 1 strong)")
              seed = gr.Number(0, precision=0, minimum=0, label="Prompt seed (photo, noise)")
            with gr.Row():
              shown_source = gr.Image(label="Prompt source", interactive=False, format="png",
                                      height=180, buttons=IMAGE_BUTTONS)
              shown_target = gr.Image(label="Prompt target", interactive=False, format="png",
                                      height=180, buttons=IMAGE_BUTTONS)
          with gr.Group(visible=False) as upload_group:
            with gr.Row():
              upload_source = gr.Image(label="Prompt source (before)", type="filepath",
                                       image_mode=None, sources=["upload", "clipboard"],
                                       height=180, buttons=IMAGE_BUTTONS)
              upload_target = gr.Image(label="Prompt target (after)", type="filepath",
                                       image_mode=None, sources=["upload", "clipboard"],
                                       height=180, buttons=IMAGE_BUTTONS)
        with gr.Accordion("Tiling", open=False):
          with gr.Row():
            tile_box = gr.Number(tile, precision=0, minimum=0, label="Tile size (px, 0: whole)")
            overlap_box = gr.Number(overlap, precision=0, minimum=0, label="Tile overlap (px)")
        run_button = gr.Button("Run", variant="primary")
      with gr.Column(scale=3):
        before_after = gr.ImageSlider(label="Input | output", type="filepath", format="png",
                                      interactive=False, max_height=640)
        download = gr.DownloadButton("Download the result (PNG)", value=None)
        summary = gr.Markdown(label="Summary")

    def result(image_path, prompt, tile_value, overlap_value, progress):
      progress(0, desc="running the model")
      input_png, output_png, line = run_model(predictor, image_path, prompt, store, tile_value,
                                              overlap_value, tile_batch,
                                              progress_reporter(progress))
      return (input_png, output_png), output_png, line

    if use_prompt:

      def show_prompt(task_name, severity_value, seed_value):
        try:
          return synthesized_prompt(task_name, severity_value, seed_value)
        except UserError as e:
          raise as_gr_error(e) from None

      def severity_knob(task_name):
        try:
          fixed = registry.get_task(task_name).severity.fixed
        except KeyError:
          fixed = False  # an unknown name: show_prompt says so
        return gr.Slider(interactive=not fixed,
                         info="this task has no severity knob" if fixed else None)

      def choose_mode(chosen):
        return gr.Group(visible=chosen == TASK_MODE), gr.Group(visible=chosen == UPLOAD_MODE)

      def run(image_path, chosen, task_name, severity_value, seed_value, source_path,
              target_path, tile_value, overlap_value, progress=gr.Progress()):
        try:
          if chosen == UPLOAD_MODE:
            prompt = uploaded_prompt(source_path, target_path)
            shown = (gr.skip(), gr.skip())
          elif chosen == TASK_MODE:
            prompt = synthesized_prompt(task_name, severity_value, seed_value)
            shown = prompt
          else:
            raise UserError(f"prompt must be {TASK_MODE!r} or {UPLOAD_MODE!r}, got {chosen!r}")
          pair, file, line = result(image_path, prompt, tile_value, overlap_value, progress)
        except UserError as e:
          raise as_gr_error(e) from None
        return pair, file, *shown, line

      mode.change(choose_mode, mode, [task_group, upload_group], api_name=False)
      task.change(severity_knob, task, severity, api_name=False)
      prompt_inputs = [task, severity, seed]
      gr.on([task.change, severity.release, seed.change, blocks.load], show_prompt,
            prompt_inputs, [shown_source, shown_target], api_name="prompt")
      run_button.click(run, [image, mode, *prompt_inputs, upload_source, upload_target,
                             tile_box, overlap_box],
                       [before_after, download, shown_source, shown_target, summary],
                       api_name="run")
    else:

      def run(image_path, tile_value, overlap_value, progress=gr.Progress()):
        try:
          return result(image_path, None, tile_value, overlap_value, progress)
        except UserError as e:
          raise as_gr_error(e) from None

      run_button.click(run, [image, tile_box, overlap_box], [before_after, download, summary],
                       api_name="run")
  return blocks


def _interrupt(signum, frame) -> None:
  del signum, frame
  raise KeyboardInterrupt


def _parser() -> cli.Parser:
  parser = cli.Parser(prog="python -m genlv_jax.app", description=__doc__.split("\n\n")[0])
  cli.add_model_arguments(parser, "untrained weights from config.seed (smoke tests only)")
  parser.add_argument("--host", default=DEFAULT_HOST,
                      help=f"address to serve on (default {DEFAULT_HOST}: this machine only; "
                      "0.0.0.0 serves the network)")
  parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                      help=f"port (default {DEFAULT_PORT})")
  parser.add_argument("--tile", type=int, default=DEFAULT_TILE,
                      help=f"default tile size on the page (px; 0: whole images; default "
                      f"{DEFAULT_TILE}, the training resolution)")
  parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                      help=f"default tile overlap (px, default {DEFAULT_OVERLAP})")
  parser.add_argument("--tile-batch", type=int, default=1, help="tiles per forward pass (>= 1)")
  return parser


@cli.user_errors_exit
def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point: checks the options, imports gradio and loads the model, then serves the page
  until Ctrl-C. Returns the exit status."""
  args, overrides = cli.parse_with_overrides(_parser(), argv)
  if not 0 < args.port < 65536:
    raise UserError(f"--port must be between 1 and 65535, got {args.port}")
  check_options(args.tile, args.overlap, None, tile_batch=args.tile_batch)
  checkpoint = None if args.random_init else api.resolve_checkpoint(args.checkpoint)
  config = api.config_for(args.config, checkpoint, overrides)
  import_gradio()  # before the model loads: a missing extra fails at once
  predictor = api.load_model(config, checkpoint)
  store = ResultStore()
  try:
    blocks = build_app(config, predictor,
                       weights=args.checkpoint or "random init (untrained)",
                       tile=args.tile, overlap=args.overlap, tile_batch=args.tile_batch,
                       store=store)
    # One request at a time: the model's memory is sized for one image (or tile batch).
    blocks.queue(default_concurrency_limit=1)
    # SIGTERM (a service manager, a test) stops the server as Ctrl-C does, so that the
    # results folder is removed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
      blocks.launch(server_name=args.host, server_port=args.port, share=False,
                    ssr_mode=False, inbrowser=False, pwa=False, mcp_server=False,
                    enable_monitoring=False, show_error=False)
    except OSError as e:
      raise UserError(f"cannot serve on {args.host}:{args.port}: {e}") from None
  finally:
    store.close()
  return 0


if __name__ == "__main__":
  sys.exit(main())
