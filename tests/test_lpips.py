"""LPIPS (AlexNet, v0.1) in JAX against an independent PyTorch reference written here from the
paper and the `lpips` package's definition (its ScalingLayer, torchvision AlexNet `features`
sliced after each ReLU, unit-normalised features, 1x1 `lin` layers, spatial mean), with random
seeded weights saved under the package's state-dict names; and `evaluate --lpips-weights`."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import config_path, user_error
from genlv_jax import evaluate
from genlv_jax.evaluation import lpips

TINY = config_path("tiny")


def _reference_model(torch):
  """A module whose state_dict() has exactly the keys of `lpips.LPIPS(net='alex')`."""
  nn = torch.nn

  class ScalingLayer(nn.Module):
    def __init__(self):
      super().__init__()
      self.register_buffer("shift", torch.tensor([-.030, -.088, -.188])[None, :, None, None])
      self.register_buffer("scale", torch.tensor([.458, .448, .450])[None, :, None, None])

  class AlexSlices(nn.Module):
    def __init__(self):
      super().__init__()
      features = [nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(),
                  nn.MaxPool2d(3, stride=2), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
                  nn.MaxPool2d(3, stride=2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
                  nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
                  nn.Conv2d(256, 256, 3, padding=1), nn.ReLU()]
      for s, (start, stop) in enumerate(((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)), 1):
        block = nn.Sequential()
        for i in range(start, stop):
          block.add_module(str(i), features[i])
        setattr(self, f"slice{s}", block)

    def forward(self, x):
      taps = []
      for s in range(1, 6):
        x = getattr(self, f"slice{s}")(x)
        taps.append(x)
      return taps

  class Reference(nn.Module):
    def __init__(self):
      super().__init__()
      self.scaling_layer, self.net = ScalingLayer(), AlexSlices()
      for k, c in enumerate((64, 192, 384, 256, 256)):
        lin = nn.Module()
        lin.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))
        setattr(self, f"lin{k}", lin)
      self.lins = nn.ModuleList([getattr(self, f"lin{k}") for k in range(5)])

    def scaled(self, x):  # [0, 1] -> [-1, 1] -> ScalingLayer
      return (2 * x - 1 - self.scaling_layer.shift) / self.scaling_layer.scale

    def forward(self, a, b):  # NCHW in [0, 1]
      unit = lambda f: f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)  # noqa
      total = 0
      for fa, fb, lin in zip(self.net(self.scaled(a)), self.net(self.scaled(b)), self.lins):
        total = total + lin.model((unit(fa) - unit(fb)) ** 2).mean(dim=(2, 3))
      return total[:, 0]

  torch.manual_seed(0)
  model = Reference()
  with torch.no_grad():
    for lin in model.lins:  # trained lin weights are non-negative (the trainer clamps them)
      lin.model[1].weight.copy_(torch.rand_like(lin.model[1].weight) * 0.2)
  return model.eval()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """(float64 torch model, path of its state dict as .pth, the state dict as numpy)."""
  torch = pytest.importorskip("torch")
  model = _reference_model(torch)
  path = tmp_path_factory.mktemp("lpips") / "lpips_alex.pth"
  torch.save(model.state_dict(), path)
  state = {k: v.numpy() for k, v in model.state_dict().items()}
  return model.double(), path, state


def _image_pairs():
  rng = np.random.default_rng(7)
  noise = rng.uniform(size=(3, 64, 64, 3)).astype(np.float32)
  ramp = np.linspace(0, 1, 64, dtype=np.float32)
  smooth = (ramp[None, :, None, None] * ramp[None, None, :, None]
            * rng.uniform(0.3, 1, size=(3, 1, 1, 3))).astype(np.float32)
  mild = np.clip(smooth + 0.05 * rng.normal(size=smooth.shape), 0, 1).astype(np.float32)
  wide = rng.uniform(size=(2, 40, 72, 3)).astype(np.float32)
  return [(noise, smooth), (smooth, mild), (wide, wide[:, :, ::-1])]


def test_distances_match_an_independent_torch_reference(reference):
  torch = pytest.importorskip("torch")
  model, path, _ = reference
  params = lpips.load_lpips(path)
  for a, b in _image_pairs():
    ours = np.asarray(lpips.lpips_distance(params, a, b))
    with torch.no_grad():
      nchw = [torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))) for x in (a, b)]
      theirs = model(*(x.double() for x in nchw))
    assert ours.shape == (len(a),) and np.all(ours > 0)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=0)


def test_an_image_is_at_distance_zero_from_itself(reference):
  params = lpips.load_lpips(reference[1])
  image = np.random.default_rng(1).uniform(size=(48, 56, 3)).astype(np.float32)
  assert float(lpips.lpips_distance(params, image, image)) == 0.0
  with pytest.raises(ValueError, match="at least 31 px"):
    lpips.lpips_distance(params, image[:30], image[:30])


def test_safetensors_and_lins_alias_give_the_same_distances(reference, tmp_path, monkeypatch):
  from safetensors.numpy import save_file
  _, path, state = reference
  a, b = _image_pairs()[0]
  expected = np.asarray(lpips.lpips_distance(lpips.load_lpips(path), a, b))
  # safetensors keeps one name of tensors that share memory: here only the `lins.k` aliases.
  only_aliases = {k: v for k, v in state.items() if not k.startswith("lin") or "lins." in k}
  save_file(only_aliases, str(tmp_path / "w.safetensors"))
  monkeypatch.setitem(sys.modules, "torch", None)  # .safetensors needs no torch
  got = np.asarray(lpips.lpips_distance(lpips.load_lpips(tmp_path / "w.safetensors"), a, b))
  np.testing.assert_array_equal(got, expected)
  with pytest.raises(lpips.LPIPSWeightsError, match=r"genlv-jax\[bridge\]"):
    lpips.load_lpips(path)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("net.slice3.6.bias"), "missing net.slice3.6.bias"),
    (lambda s: s.update({"lin2.model.1.weight": np.ones((1, 100, 1, 1), np.float32),
                         "lins.2.model.1.weight": np.ones((1, 100, 1, 1), np.float32)}),
     "wrong shape lin2.model.1.weight (1, 100, 1, 1) (expected (1, 384, 1, 1))"),
    (lambda s: s.update({"net.slice6.0.weight": np.ones(3, np.float32)}),
     "unexpected net.slice6.0.weight"),
])
def test_a_wrong_weights_file_is_one_line_naming_the_keys(reference, tmp_path, edit, message):
  from safetensors.numpy import save_file
  state = dict(reference[2])
  edit(state)
  save_file(state, str(tmp_path / "bad.safetensors"))
  with pytest.raises(lpips.LPIPSWeightsError) as error:
    lpips.load_lpips(tmp_path / "bad.safetensors")
  assert message in str(error.value) and "\n" not in str(error.value)


def test_evaluate_reports_lpips_per_task_and_for_the_identity(reference, tmp_path):
  output = tmp_path / "report.json"
  code = evaluate.main(["--config", TINY, "--random-init", "--tasks", "gaussian_denoising,canny",
                        "--source", "builtin", "--num-images", "2", "--num-prompts", "2",
                        "--lpips-weights", str(reference[1]), "--output", str(output)])
  assert code == 0
  data = json.loads(output.read_text())
  denoising, canny = data["tasks"]["gaussian_denoising"], data["tasks"]["canny"]
  spread = denoising["metrics"]["lpips"]
  assert len(spread["per_prompt"]) == 2 and spread["mean"] == pytest.approx(
      np.mean(spread["per_prompt"])) and spread["std"] == pytest.approx(
          np.std(spread["per_prompt"]))
  assert spread["mean"] > 0 and denoising["identity"]["lpips"] > 0
  assert "lpips" not in canny["metrics"] and "lpips" not in canny["identity"]
  assert data["lpips_weights"] == str(reference[1])
  assert "LPIPS (AlexNet) ↓" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("weights, message", [
    ("/no/such/lpips_alex.pth", "LPIPS weights not found: /no/such/lpips_alex.pth"),
    ("bad.safetensors", "missing net.slice1.0.weight"),
    ("notes.txt", "must be a .pth, .pt or .safetensors file"),
])
def test_a_bad_weights_path_exits_2_with_one_line_before_any_model_work(
    reference, tmp_path, capsys, monkeypatch, weights, message):
  from safetensors.numpy import save_file
  save_file({k: v for k, v in reference[2].items() if not k.startswith("net.")},
            str(tmp_path / "bad.safetensors"))
  (tmp_path / "notes.txt").write_text("not weights")
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: pytest.fail("model was built"))
  argv = ["--config", TINY, "--random-init", "--tasks", "gaussian_denoising",
          "--lpips-weights", weights, "--output", str(tmp_path / "r.json")]
  assert message in user_error(capsys, evaluate.main, argv)
  assert not (tmp_path / "r.json").exists()


class _Identity:
  def __call__(self, images, prompt_source=None, prompt_target=None):
    return np.asarray(images)


def test_stylization_tasks_report_lpips_as_table_viii(reference, tmp_path, capsys, monkeypatch):
  """The journal's Table VIII gives LPIPS for stylization: `evaluate` reports it there too
  (not for feature extraction), and says how to get it when no weights are given."""
  monkeypatch.setattr(evaluate.api, "load_model", lambda *a: _Identity())
  argv = ["--config", TINY, "--random-init", "--tasks", "pencil_drawing,canny", "--source",
          "builtin", "--num-images", "1", "--num-prompts", "1"]
  assert evaluate.main(argv + ["--lpips-weights", str(reference[1]),
                               "--output", str(tmp_path / "r.json")]) == 0
  out, err = capsys.readouterr()
  data = json.loads((tmp_path / "r.json").read_text())
  pencil = data["tasks"]["pencil_drawing"]
  assert pencil["category"] == "stylization"
  assert set(pencil["metrics"]) == set(pencil["identity"]) == {"psnr", "ssim", "lpips"}
  assert pencil["identity"]["lpips"] > 0  # a drawing is far from the photograph
  assert "lpips" not in data["tasks"]["canny"]["metrics"]
  assert "| pencil_drawing (PencilDrawing) | stylization | LPIPS (AlexNet) ↓ |" in out
  assert "Table VIII" not in err
  assert evaluate.main(argv + ["--output", str(tmp_path / "s.json")]) == 0
  _, err = capsys.readouterr()
  assert "warning: stylization tasks are reported with LPIPS in the papers (Table VIII); add " \
         "--lpips-weights" in err
  assert "lpips" not in json.loads((tmp_path / "s.json").read_text())["tasks"][
      "pencil_drawing"]["metrics"]
