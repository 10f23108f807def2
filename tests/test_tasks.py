"""Tests of the task catalogue (genlv_jax.tasks) and its CLI.

References are independent where cheap: OpenCV / scikit-image calls written out here, the
paper's task names typed in from Tables VI–IX, noise statistics against their definitions.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage import restoration

from genlv_jax import tasks
from genlv_jax.data import image_sources

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
if not os.path.exists(PYTHON):
  PYTHON = sys.executable

# Tables VI–IX of "GenLV: scalable unified modeling", typed in task-index order (spelling as
# printed, including "Lapplacian" and "Tuner").
PAPER_NAMES = {
    "restoration": [
        "SRx4", "Satellite SR", "CT SR", "Infrared SR", "MRI SR", "Face SR", "Weather SR",
        "Cosmology SR", "Fluid Flow SR", "Jitter Deblurring", "Glass Deblurring",
        "Gaussian Deblurring", "Lens Deblurring", "Motion Deblurring", "Zoom Deblurring",
        "Spatially Correlated Denoising", "Gaussian Denoising", "Speckle Denoising",
        "Poisson Denoising", "Satellite Denoising", "CT Denoising", "MRI Denoising",
        "Impulse Denoising", "Inpainting", "SRx2", "Ringing Removal",
        "Lucy-Richardson Deconvolution", "Simple Deraining", "Demosaicing", "Pixelation Removal",
        "JPEG Restoration", "JPEG 2000 Restoration", "Quantization (OTSU) Restoration",
        "Quantization (Hist) Restoration", "Quantization (Median) Restoration",
        "Oversharpen Restoration", "Spatter Removal", "Dehazing", "Desnowing",
        "Complex Deraining", "Raindrop Removal", "Cloud Removal", "Dust Removal",
        "Marine Snow Removal", "Reflection Removal", "Real Lowlight SR", "Shadow Removal",
        "Flare Removal", "Highlight Removal", "UDC (Poled) Restoration", "Demoireing",
        "UDC (Toled) Restoration", "Watermark Removal"],
    "enhancement": [
        "Saturation Strengthening Correction", "Contrast Strengthening Correction",
        "Brightness Darkening Correction", "Saturation Weakening Correction",
        "Brightness Brightening Correction", "Contrast Weakening Correction", "RAW-to-RGB (ISP)",
        "Exposure Correction", "Lowlight Enhancement", "Vignetting Removal",
        "Backlit Enhancement", "White Balance Correction", "Instagram Filter Addition",
        "Underwater Histogram Equalization", "Photo Retouching", "Instagram Filter Removal",
        "Color Correction", "SDR-to-HDR", "HDR-to-SDR", "Local Lapplacian Filtering",
        "Multi-Scale TM", "Bokeh Rendering"],
    "stylization": [
        "Impressionism", "Monet", "NeoImpressionism", "Cloisonnism", "Divisionism", "Fauvism",
        "VanGogh", "Raphael", "Vermeer", "Tuner", "Regionalism", "JOJO", "Ukiyoe", "PopArt",
        "Modernism", "Photographic", "PencilDrawing", "RTV"],
    "feature_extraction": [
        "DepthEstimate", "Normal", "Canny", "SaliencyObject", "HEDBoundary", "PercepEdgeDetect",
        "Laplacian", "HoughLine"],
}

# Every ACMMM task that can be made from a clean image (§4.1: the first eight restoration
# types, the simple rain model, the toolkit enhancements/styles and the OpenCV edges).
ACMMM_PROCEDURAL = {
    "gaussian_denoising", "gaussian_deblurring", "poisson_denoising", "impulse_denoising",
    "jpeg_restoration", "ringing_removal", "lucy_richardson_deconvolution", "inpainting",
    "simple_deraining", "local_laplacian_filtering", "multi_scale_tm",
    "underwater_histogram_equalization", "pencil_drawing", "photographic_style", "rtv", "canny",
    "laplacian"}

SYNTH_TASKS = tasks.procedural_tasks() + (tasks.MIXED_DEGRADATION,)


def _crop(image: np.ndarray, size: int) -> np.ndarray:
  h, w, _ = image.shape
  s = min(h, w)
  crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
  return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
  source = image_sources.BuiltinSource(num_procedural=0)
  return _crop(source[0], 64), _crop(source[1], 64)  # astronaut, coffee


def psnr(a: np.ndarray, b: np.ndarray) -> float:
  return float(10 * np.log10(1.0 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-12)))


# ---- catalogue ---------------------------------------------------------------------------------

def test_category_counts_match_the_paper():
  counts = collections.Counter(t.category for t in tasks.all_tasks())
  assert counts == {"restoration": 53, "enhancement": 22, "stylization": 18,
                    "feature_extraction": 8}
  assert len(tasks.all_tasks()) == 101
  assert len(tasks.procedural_tasks()) >= 45


def test_paper_names_are_exactly_the_tables_in_order():
  for category, names in PAPER_NAMES.items():
    got = [t.paper_name for t in tasks.all_tasks() if t.category == category]
    assert got == names
    assert [t.index for t in tasks.all_tasks() if t.category == category] == list(
        range(len(names)))


def test_names_unique_snake_case_and_sources_valid():
  names = [t.name for t in tasks.all_tasks()]
  assert len(set(names)) == 101
  for t in tasks.all_tasks():
    assert t.name.replace("_", "").isalnum() and t.name == t.name.lower(), t.name
    assert t.source in ("procedural", "paired_dataset", "model")
    assert t.severity.reference, f"{t.name}: severity range must say where it comes from"
    assert (t.op is not None) == t.procedural


def test_lookup_by_name_and_paper_name():
  assert tasks.get_task("Gaussian Denoising") is tasks.get_task("gaussian_denoising")
  assert tasks.get_task("Lucy-Richardson Deconvolution").name == "lucy_richardson_deconvolution"
  assert tasks.get_task("canny").paper_name == "Canny"
  with pytest.raises(KeyError, match="unknown task"):
    tasks.get_task("no_such_task")


def test_acmmm_set_has_30_tasks_and_every_procedural_one_synthesises():
  assert len(tasks.ACMMM_TASK_SET) == 30
  assert set(tasks.ACMMM_TASKS) <= {t.name for t in tasks.all_tasks()}
  procedural = {n for n in tasks.ACMMM_TASKS if tasks.get_task(n).procedural}
  assert procedural == ACMMM_PROCEDURAL


def test_severity_mapping():
  # GenLV x_distortion compression_jpeg: quality 25, 18, 12, 8, 5 at its severities 1-5.
  sev = tasks.get_task("jpeg_restoration").severity
  assert (sev.value(0.0), sev.value(0.25), sev.value(1.0)) == (25, 18, 5)
  assert sev.value(-1.0) == 25 and sev.value(2.0) == 5
  assert sev.value(0.125) == round((25 + 18) / 2)  # linear between levels
  gn = tasks.get_task("gaussian_denoising").severity
  assert gn.value(0.5) == pytest.approx(38.25)  # sigma 0.15 x 255
  peak = tasks.get_task("poisson_denoising").severity
  assert peak.value(0.5) == pytest.approx(40.0)
  assert peak.value(0.125) == pytest.approx((80 * 60) ** 0.5)  # log scale between levels
  assert tasks.Severity("x", 1.0, 3.0).value(0.5) == 2.0  # plain mild -> strong ranges


def test_non_procedural_task_cannot_synthesise(images):
  with pytest.raises(ValueError, match="paired_dataset"):
    tasks.get_task("dehazing").synthesize(images[0], 0.5, np.random.default_rng(0))


# ---- synthesis contract for every procedural task ------------------------------------------

@pytest.mark.parametrize("task", SYNTH_TASKS, ids=lambda t: t.name)
def test_synthesize_contract(task, images):
  clean = images[0]
  for severity in (0.0, 1.0):
    inp, tgt = task.synthesize(clean, severity, np.random.default_rng(7))
    for x in (inp, tgt):
      assert x.shape == clean.shape and x.dtype == np.float32
      assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.abs(inp - tgt).max() > 1e-3, f"{task.name} does nothing at {severity}"
    again = task.synthesize(clean, severity, np.random.default_rng(7))
    np.testing.assert_array_equal(inp, again[0])
    np.testing.assert_array_equal(tgt, again[1])
  if task.category == "restoration":
    np.testing.assert_allclose(tgt, clean, atol=1e-6)  # target = clean
  if task.category in ("stylization", "feature_extraction"):
    np.testing.assert_allclose(inp, clean, atol=1e-6)  # input = clean


def test_severity_makes_it_harder_for_most_restoration_tasks(images):
  restoration_tasks = [t for t in tasks.procedural_tasks() if t.category == "restoration"]
  with_knob = [t for t in restoration_tasks if not t.severity.fixed]
  assert sum(t.monotonic for t in with_knob) >= 0.9 * len(with_knob)
  for task in tasks.procedural_tasks():
    if not task.monotonic:
      continue
    for clean in images:
      mild = psnr(*task.synthesize(clean, 0.0, np.random.default_rng(3)))
      strong = psnr(*task.synthesize(clean, 1.0, np.random.default_rng(3)))
      assert strong < mild, f"{task.name}: PSNR {mild:.2f} (s=0) vs {strong:.2f} (s=1)"


# ---- independent references ----------------------------------------------------------------

def test_gaussian_noise_residual_std_matches_sigma():
  task = tasks.get_task("gaussian_denoising")
  flat = np.full((128, 128, 3), 0.5, np.float32)  # mid-grey: no clipping up to sigma 0.15
  stds = []
  for s in (0.0, 0.25, 0.5):
    inp, tgt = task.synthesize(flat, s, np.random.default_rng(0))
    std = float((inp - tgt).std())
    assert std == pytest.approx(task.severity.value(s) / 255.0, rel=0.04)
    stds.append(std)
  assert stds == sorted(stds)


def test_jpeg_matches_opencv_at_the_chosen_quality(images):
  task = tasks.get_task("jpeg_restoration")
  for s in (0.0, 0.37, 1.0):
    quality = int(task.severity.value(s))
    u8 = np.clip(np.round(images[1] * 255), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    ref = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255
    inp, _ = task.synthesize(images[1], s, np.random.default_rng(0))
    np.testing.assert_array_equal(inp, ref)


def _gray_blurred(clean: np.ndarray) -> np.ndarray:
  u8 = np.clip(np.round(clean * 255), 0, 255).astype(np.uint8)
  return cv2.cvtColor(cv2.GaussianBlur(u8, (3, 3), 0), cv2.COLOR_RGB2GRAY)


def test_canny_equals_opencv(images):
  for clean in images:
    _, tgt = tasks.get_task("Canny").synthesize(clean, 0.0, np.random.default_rng(0))
    ref = cv2.Canny(_gray_blurred(clean), 50, 200).astype(np.float32) / 255
    np.testing.assert_array_equal(tgt, np.repeat(ref[:, :, None], 3, axis=2))


def test_laplacian_equals_opencv(images):
  _, tgt = tasks.get_task("laplacian").synthesize(images[0], 0.0, np.random.default_rng(0))
  ref = cv2.convertScaleAbs(cv2.Laplacian(_gray_blurred(images[0]), cv2.CV_16S))
  np.testing.assert_array_equal(tgt[:, :, 1], ref.astype(np.float32) / 255)


def test_richardson_lucy_equals_skimage(images):
  """PromptGIP r_l: skimage RL, 5x5 box PSF, 1 iteration, 7 px linear-ramp padding."""
  task = tasks.get_task("lucy_richardson_deconvolution")
  clean = images[0]
  inp, _ = task.synthesize(clean, 0.5, np.random.default_rng(0))
  assert task.severity.value(0.5) == 5
  padded = np.pad(clean.astype(np.float64), ((7, 7), (7, 7), (0, 0)), mode="linear_ramp")
  psf = np.full((5, 5), 1 / 25.0)
  ref = np.stack([restoration.richardson_lucy(padded[:, :, c], psf, num_iter=1)
                  for c in range(3)], axis=2)[7:-7, 7:-7]
  np.testing.assert_allclose(inp, np.clip(ref, 0, 1), atol=2e-5)


def test_salt_and_pepper_fraction_and_values():
  task = tasks.get_task("impulse_denoising")
  flat = np.full((200, 200, 3), 0.5, np.float32)
  inp, _ = task.synthesize(flat, 1.0, np.random.default_rng(0))
  hit = np.any(inp != 0.5, axis=2)
  assert hit.mean() == pytest.approx(task.severity.value(1.0), rel=0.1)
  assert set(np.unique(inp[hit])) <= {0.0, 1.0}


def test_poisson_noise_variance_follows_the_peak():
  task = tasks.get_task("poisson_denoising")
  flat = np.full((128, 128, 3), 0.4, np.float32)
  for s in (0.0, 1.0):
    inp, _ = task.synthesize(flat, s, np.random.default_rng(0))
    peak = task.severity.value(s)
    assert float(inp.var()) == pytest.approx(0.4 / peak, rel=0.1)


def test_correlated_noise_is_correlated_with_the_right_std():
  """GenLV's noise_spatially_correlated: white noise of sigma, then a 3x3 box filter — std
  sigma/3 and a correlation of 6/9 between horizontal neighbours."""
  task = tasks.get_task("spatially_correlated_denoising")
  flat = np.full((128, 128, 3), 0.5, np.float32)
  inp, tgt = task.synthesize(flat, 0.5, np.random.default_rng(0))
  r = (inp - tgt)[2:-2, 2:-2]
  assert float(r.std()) == pytest.approx(task.severity.value(0.5) / 255 / 3, rel=0.1)
  corr = np.corrcoef(r[:, :-1].ravel(), r[:, 1:].ravel())[0, 1]
  assert corr == pytest.approx(2 / 3, abs=0.05)  # white noise would give ~0


def test_sr_x4_loses_more_detail_than_sr_x2(images):
  def highpass_energy(x):
    return float(np.abs(cv2.Laplacian(x, cv2.CV_32F)).mean())
  x2, _ = tasks.get_task("SRx2").synthesize(images[0], 0, np.random.default_rng(0))
  x4, _ = tasks.get_task("SRx4").synthesize(images[0], 0, np.random.default_rng(0))
  assert highpass_energy(x4) < highpass_energy(x2) < highpass_energy(images[0])


# ---- quadruplets ---------------------------------------------------------------------------

def test_make_quadruplet_shapes_and_consistent_severity(images):
  prompt_clean, input_clean = images
  q = tasks.make_quadruplet("gaussian_denoising", prompt_clean, input_clean, 0.75,
                            np.random.default_rng(0))
  assert set(q) == {"prompt_source", "prompt_target", "input", "target"}
  np.testing.assert_array_equal(q["prompt_target"], prompt_clean)
  np.testing.assert_array_equal(q["target"], input_clean)
  assert not np.array_equal(q["prompt_source"] - prompt_clean, q["input"] - input_clean)
  sigma = tasks.get_task("gaussian_denoising").severity.value(0.75) / 255
  for a, b in ((q["prompt_source"], prompt_clean), (q["input"], input_clean)):
    assert float((a - b).std()) == pytest.approx(sigma, rel=0.25)  # clipping lowers it


@pytest.mark.parametrize("name", ["instagram_filter_addition", "instagram_filter_removal",
                                  "white_balance_correction", "exposure_correction"])
def test_quadruplet_shares_the_transformation(name, images):
  """Same content in both pairs → same pairs: the sampled filter / cast / sign is shared."""
  clean = images[0]
  for seed in range(4):
    q = tasks.make_quadruplet(name, clean, clean.copy(), 0.5, np.random.default_rng(seed))
    np.testing.assert_array_equal(q["prompt_source"], q["input"])
    np.testing.assert_array_equal(q["prompt_target"], q["target"])


def test_mixed_degradation_chain_is_shared_and_from_promptgip_slots():
  from genlv_jax.tasks import mixed  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  for _ in range(50):
    chain = mixed.sample_chain(0.5, rng)["chain"]
    assert len(chain) >= 2
    slots = [next(i for i, slot in enumerate(mixed.SLOTS) if step in slot) for step in chain]
    assert slots == sorted(set(slots))  # one step per slot, in PromptGIP's order


def test_quadruplet_refuses_the_same_clean_image(images):
  with pytest.raises(ValueError, match="different clean image"):
    tasks.make_quadruplet("inpainting", images[0], images[0], 0.5, np.random.default_rng(0))


def test_tasks_do_not_import_jax():
  code = ("import sys, genlv_jax.tasks, genlv_jax.data.image_sources; "
          "sys.exit(1 if 'jax' in sys.modules else 0)")
  assert subprocess.run([PYTHON, "-c", code], cwd=REPO, check=False).returncode == 0


# ---- CLI -------------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([PYTHON, "-m", "genlv_jax.tasks", *args], cwd=REPO, text=True,
                        capture_output=True, timeout=120, check=False)


def test_cli_list_json():
  out = run_cli("list", "--json")
  assert out.returncode == 0, out.stderr
  items = json.loads(out.stdout)
  assert len(items) == 101
  for item in items:
    assert {"name", "paper_name", "category", "source", "severity_range"} <= set(item)
  assert collections.Counter(i["source"] for i in items)["procedural"] >= 45


def test_cli_sample_all_writes_one_npz_per_procedural_task(tmp_path):
  out = run_cli("sample", "all", "--seed", "3", "--size", "48", "--output", str(tmp_path))
  assert out.returncode == 0, out.stderr
  files = sorted(p.name for p in tmp_path.iterdir())
  assert files == sorted(f"{t.name}.npz" for t in tasks.procedural_tasks())
  with np.load(tmp_path / "gaussian_denoising.npz") as z:
    assert set(z.files) == {"prompt_source", "prompt_target", "input", "target"}
    for key in z.files:
      assert z[key].shape == (48, 48, 3) and z[key].dtype == np.float32
      assert 0 <= z[key].min() and z[key].max() <= 1


def test_cli_sample_is_deterministic_and_defaults_to_128(tmp_path):
  for d in ("a", "b"):
    out = run_cli("sample", "jpeg_restoration", "--seed", "5", "--output", str(tmp_path / d))
    assert out.returncode == 0, out.stderr
  with np.load(tmp_path / "a" / "jpeg_restoration.npz") as a, \
          np.load(tmp_path / "b" / "jpeg_restoration.npz") as b:
    assert a["input"].shape == (128, 128, 3)
    for key in a.files:
      np.testing.assert_array_equal(a[key], b[key])


def test_cli_show_writes_a_sheet(tmp_path):
  path = tmp_path / "sheet.png"
  out = run_cli("show", "Gaussian Denoising", "--output", str(path), "--size", "64")
  assert out.returncode == 0, out.stderr
  sheet = cv2.imread(str(path))
  # 3 severities × (prompt pair, input, target), each 64 px tile shown at 128 px, plus the
  # title, the column titles' strip and the severity labels' strip (tests/test_grids.py).
  assert sheet.shape[0] > 3 * 128 and sheet.shape[1] > 4 * 128 and sheet.shape[2] == 3


@pytest.mark.parametrize("args", [
    ("show", "no_such_task", "--output", "x.png"),
    ("sample", "no_such_task", "--output", "out"),
    ("sample", "dehazing", "--output", "out"),
    ("frobnicate",),
])
def test_cli_user_errors_exit_2_with_one_line(args, tmp_path):
  args = tuple(str(tmp_path / a) if a in ("x.png", "out") else a for a in args)
  out = run_cli(*args)
  assert out.returncode == 2
  assert len(out.stderr.strip().splitlines()) == 1, out.stderr
  assert "Traceback" not in out.stderr


def test_cli_unwritable_output_exit_2(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  out = run_cli("sample", "canny", "--output", str(blocker / "sub"))
  assert out.returncode == 2
  assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_cli_list_has_a_header_and_the_paper_names(capsys):
  from genlv_jax.tasks.__main__ import main  # pylint: disable=import-outside-toplevel
  assert main(["list"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].split()[:5] == ["table", "#", "name", "paper", "name"]
  assert len(lines) == 1 + 101
  rows = {line.split()[2]: line for line in lines[1:]}
  assert "Spatially Correlated Denoising" in rows["spatially_correlated_denoising"]
  assert "Quantization (OTSU) Restoration" in "".join(lines)
  for task in tasks.all_tasks():
    assert task.paper_name in rows[task.name], task.name


def test_cli_sample_png_writes_a_prompt_pair_infer_takes(tmp_path, capsys):
  from genlv_jax.inference import runner  # pylint: disable=import-outside-toplevel
  from genlv_jax.tasks.__main__ import build_parser, main  # pylint: disable=import-outside-toplevel
  assert main(["sample", "gaussian_denoising", "--output", str(tmp_path), "--format", "png",
               "--size", "48", "--seed", "2"]) == 0
  folder = tmp_path / "gaussian_denoising"
  assert sorted(os.listdir(folder)) == ["input.png", "prompt_input.png", "prompt_target.png",
                                        "target.png"]
  assert json.loads(capsys.readouterr().out)["path"] == str(folder)
  ps, pt = runner.load_prompt_pair(str(folder / "prompt_input.png"),
                                   str(folder / "prompt_target.png"))
  assert ps.shape == pt.shape == (48, 48, 3)
  # The PNGs are the .npz quadruplet of the same seed, in 8 bits.
  assert main(["sample", "gaussian_denoising", "--output", str(tmp_path), "--size", "48",
               "--seed", "2"]) == 0
  with np.load(tmp_path / "gaussian_denoising.npz") as q:
    np.testing.assert_allclose(ps, q["prompt_source"], atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(runner.read_input(str(folder / "target.png")), q["target"],
                               atol=0.5 / 255 + 1e-6)
  helps = " ".join(build_parser().format_help().split())
  assert "--format png" in helps and "prompt_input,prompt_target,input,target}.png" in helps
