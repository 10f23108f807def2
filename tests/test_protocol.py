"""The authors' test protocol: `prepare testset` writes fixed test and prompt pairs once,
`evaluate --protocol glv101 --testset DIR` measures a model on them and prints the journal's
per-category tables with the paper's values beside ours."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import config_path, user_error
from genlv_jax import evaluate
from genlv_jax.data import image_io
from genlv_jax.data.image_sources import BuiltinSource
from genlv_jax.evaluation import paper_tables, protocol
from genlv_jax.tasks import get_task

pytest.importorskip("apache_beam", reason="apache-beam (for `prepare`) is not installed")
from genlv_jax.data.prepare.__main__ import main as prepare  # noqa: E402

TINY = config_path("tiny")
BEAM = ["--no-progress", "--", "--direct_num_workers=1", "--direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def testset(tmp_path_factory) -> str:
  """Two tasks (a leveled restoration, a feature extraction), 2 test images, 2 prompt images."""
  out = tmp_path_factory.mktemp("testset") / "glv101"
  assert prepare(["testset", "--source", "builtin", "--tasks", "Gaussian Denoising,canny",
                  "--num-images", "2", "--num-prompts", "2", "--size", "64", "--output",
                  str(out), *BEAM]) == 0
  return str(out)


def test_testset_holds_fixed_tests_and_prompts_per_level(testset):
  description, paths = protocol.read_testset(testset)
  assert description["num_images"] == 2 and description["num_prompts"] == 2
  assert set(paths) == {"gaussian_denoising", "canny"}
  assert not set(description["test_keys"]) & set(description["prompt_keys"])
  from genlv_jax.data.prepare import shards
  noise = shards.read_testset_task(paths["gaussian_denoising"], "gaussian_denoising")
  assert noise.keys == description["test_keys"]
  # A prompt pair per level and prompt image; each test pair is evaluated with its level's.
  assert sorted(noise.prompts) == [(f"level{l}", k) for l in range(5) for k in range(2)]
  assert all(g.startswith("level") for g in noise.groups)
  # Prompt k shows prompt image k, resized to the testset's size as the authors resize.
  canny = shards.read_testset_task(paths["canny"], "canny")
  names = BuiltinSource().names
  for k, key in enumerate(description["prompt_keys"]):
    clean = image_io.resize_square(BuiltinSource()[names.index(key)], 64)
    np.testing.assert_allclose(canny.prompts[("all", k)][0], np.clip(clean, 0, 1),
                               atol=0.51 / 255)
  ps, pt = noise.prompt_arrays(1)
  level = int(noise.groups[0][len("level"):])
  np.testing.assert_array_equal(ps[0], noise.prompts[(f"level{level}", 1)][0])


def test_protocol_prints_the_journals_tables_with_the_papers_values(testset, tmp_path, capsys):
  output = tmp_path / "report.json"
  assert evaluate.main(["--config", TINY, "--random-init", "--protocol", "glv101",
                        "--testset", testset, "--output", str(output)]) == 0
  out = capsys.readouterr().out
  assert out.startswith(f"wrote {output} and {tmp_path / 'report.md'}")
  assert "## Table VI: restoration" in out and "## Table IX: feature extraction" in out
  assert "GenLV-Huge (paper)" in out and "Table VII" not in out
  rows = {line.split(" | ")[2]: line for line in out.splitlines() if line.startswith("| ")
          and " | " in line and line.split(" | ")[2] in ("Gaussian Denoising", "Canny")}
  huge = paper_tables.paper_value("gaussian_denoising", "huge")
  assert rows["Gaussian Denoising"].endswith(f"| {huge[0]:.2f} / {huge[1]:.3f} |")
  assert rows["Canny"].endswith("| 8.25 | 5.67 | 4.44 |") and "MAE" in rows["Canny"]
  assert " ± " in rows["Canny"]  # the spread over the 2 prompt images
  report = json.loads(output.read_text())
  assert report["tasks"]["canny"]["num_images"] == 2 and report["num_prompts"] == 2
  assert (tmp_path / "report.md").read_text().count("## Table") == 2


class _Identity:
  """A model that returns its input: ours must equal the identity column."""

  def __call__(self, inputs, prompt_source, prompt_target):
    del prompt_source, prompt_target
    return np.asarray(inputs)


def test_an_identity_model_reads_the_identity_column(testset, tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: _Identity())
  assert evaluate.main(["--config", TINY, "--random-init", "--protocol", "glv101",
                        "--testset", testset, "--tasks", "canny", "--num-prompts", "1",
                        "--output", str(tmp_path / "r.json")]) == 0
  (row,) = [line for line in capsys.readouterr().out.splitlines() if "| Canny |" in line]
  cells = row.split(" | ")
  assert cells[4] == cells[5] and get_task("canny").category == "feature_extraction"


@pytest.mark.parametrize("extra, message", [
    ([], "--protocol glv101 needs --testset"),
    (["--testset", "TESTSET", "--crop", "64"], "--crop does not apply"),
    (["--testset", "TESTSET", "--tasks", "rtv"], "rtv is not in the testset"),
    (["--testset", "TESTSET", "--num-prompts", "3"], "between 1 and 2"),
    (["--testset", "OUT"], "holds no testset.json"),
])
def test_protocol_mistakes_are_found_before_the_model_is_loaded(testset, tmp_path, capsys,
                                                                monkeypatch, extra, message):
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: pytest.fail("the model was built"))
  extra = [a.replace("TESTSET", testset).replace("OUT", str(tmp_path)) for a in extra]
  argv = ["--config", TINY, "--random-init", "--protocol", "glv101",
          "--output", str(tmp_path / "r.json"), *extra]
  assert message in user_error(capsys, evaluate.main, argv)
