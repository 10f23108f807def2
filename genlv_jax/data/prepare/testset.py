"""`prepare testset`: fixed test pairs and fixed prompt pairs per procedural task, written once,
as the authors' `construct_test_dataset.py` and `construct_test_prompt.py` (chxy95/GenLV,
`extended_version/dataset/`) build theirs (host code; no Beam).

Theirs: every image of Common528 (528 images, 256×256) is degraded by every task, each image at
a severity drawn from 1–5 (the severity is in the file name); the prompts are one fixed image
(`046.png`) degraded at each of the five severities, so that a test input is evaluated with the
prompt of its own severity. Here: `num_images` test images and `num_prompts` prompt images (1,
as theirs, by default) drawn once from the source by the seed, the prompt images never among
the test images, all resized to `size`² (INTER_AREA / INTER_CUBIC, as their loader); each test
pair at one of `levels` severities drawn from (seed, task, image key); prompt pair k of a level
is prompt image k at that level's severity. Tasks whose prompt and input share drawn parameters
(a filter, a colour cast: `Task.shared`) get a prompt per test image instead, made with that
image's parameters. Tasks without a severity knob have one prompt group.

Layout: `<output>/testset.json` (what was drawn, and each task's shards) and
`<output>/<task>/test-SSSSS-of-NNNNN.array_record` with `role` `test` records (in test image
order, `group` naming their prompt group) then `prompt` records (`group`, `prompt` = k).
`evaluation.protocol` reads it (`python -m genlv_jax.evaluate --protocol glv101 --testset DIR`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import numpy as np

from genlv_jax.data.prepare import files
from genlv_jax.data.prepare.items import UnreadableItemError
from genlv_jax.data.prepare.jobs import SourceJob, Unit, draw_severity, item_rng, pair_record
from genlv_jax.errors import UserError
from genlv_jax.tasks import get_task

# The authors' test set: Common528, 256×256, five severities, one prompt image.
AUTHORS_NUM_IMAGES = 528
AUTHORS_SIZE = 256
AUTHORS_LEVELS = 5
TESTSET_FILE = "testset.json"
SPLIT = "test"


@dataclasses.dataclass
class TestsetJob(SourceJob):
  """The fixed test and prompt pairs of `tasks` (procedural) from one source."""
  command = "testset"
  num_images: int = AUTHORS_NUM_IMAGES
  num_prompts: int = 1
  levels: int = AUTHORS_LEVELS

  def __post_init__(self):
    self._drawn: Optional[dict] = None
    if self.levels < 1:
      raise UserError("--levels must be at least 1 for a testset (prompts are made per level)")
    if self.num_images < 1 or self.num_prompts < 1:
      raise UserError("--num-images and --num-prompts must be at least 1")
    if not self.resize:
      raise UserError("--size must be positive")

  def draw_images(self) -> dict:
    """The prompt and test images: a seeded permutation of the source, read in that order;
    the first `num_prompts` readable ones are the prompts, the next `num_images` readable ones
    the tests (in source order). Unreadable ones are passed over and listed."""
    if self._drawn is not None:
      return self._drawn
    keys = self.source_keys()
    if len(keys) < 2:
      raise UserError(f"the source {self.source.spec} has {len(keys)} image(s); a testset needs "
                      "a prompt image and a test image")
    order = np.random.default_rng([self.seed, 0x7E57]).permutation(len(keys))
    prompts, tests, skipped = [], [], []
    for index in order:
      if len(tests) == self.num_images:
        break
      try:
        self.read(keys[index])
      except UnreadableItemError as e:
        skipped.append([keys[index], str(e)])
        continue
      (prompts if len(prompts) < self.num_prompts else tests).append(int(index))
    if not tests:
      raise UserError(f"the source {self.source.spec} has no readable image left for tests")
    self._drawn = {"prompt_keys": [keys[i] for i in prompts],
                   "test_keys": [keys[i] for i in sorted(tests)], "skipped": skipped}
    return self._drawn

  def settings(self) -> dict:
    return {"command": self.command, **self.base_settings(), "num_images": self.num_images,
            "num_prompts": self.num_prompts, "levels": self.levels}

  def groups(self, task) -> list[str]:
    """The prompt groups of a task without shared parameters: one per level, or one."""
    return ["all"] if task.severity.fixed else [f"level{l}" for l in range(self.levels)]

  def plan(self) -> list[Unit]:
    drawn = self.draw_images()
    units = []
    for name in self.tasks:
      task = get_task(name)
      lines = [f"test\t{key}" for key in drawn["test_keys"]]
      for k, prompt_key in enumerate(drawn["prompt_keys"]):
        if task.shared:  # a prompt per test image, with that image's parameters
          lines += [f"prompt\timage:{key}\t{k}\t{prompt_key}\t{key}"
                    for key in drawn["test_keys"]]
        else:
          lines += [f"prompt\t{group}\t{k}\t{prompt_key}\t" for group in self.groups(task)]
      units.append(Unit(name, lines, split=SPLIT))
    return units

  @staticmethod
  def key(line: str) -> str:
    fields = line.split("\t")
    return fields[1] if fields[0] == "test" else f"prompt {fields[3]} ({fields[1]})"

  def _draw(self, task, test_key: str) -> tuple[np.random.Generator, Optional[int], float, dict]:
    """The generator of test image `test_key` after its draws: level, severity, shared."""
    rng = item_rng(self.seed, task.name, "test", test_key)
    level, severity = draw_severity(task, rng, self.levels)
    return rng, level, severity, task.sample_shared(severity, rng)

  def make(self, task_name: str, line: str) -> list[bytes]:
    task = get_task(task_name)
    fields = line.split("\t")
    if fields[0] == "test":
      key = fields[1]
      rng, level, severity, shared = self._draw(task, key)
      group = (f"image:{key}" if task.shared else
               "all" if level is None else f"level{level}")
      pair = task.synthesize(self.read(key), severity, rng, **shared)
      return [pair_record(task.name, key, pair, self.bit_depth, role="test", level=level,
                          severity=None if task.severity.fixed else severity, group=group)]
    _, group, k, prompt_key, test_key = fields
    if test_key:
      _, level, severity, shared = self._draw(task, test_key)
    elif group == "all":
      level, severity, shared = None, 0.0, {}
    else:
      level = int(group[len("level"):])
      severity, shared = (level / (self.levels - 1) if self.levels > 1 else 0.5), {}
    rng = item_rng(self.seed, task.name, "prompt", group, k)
    pair = task.synthesize(self.read(prompt_key), severity, rng, **shared)
    return [pair_record(task.name, prompt_key, pair, self.bit_depth, role="prompt",
                        level=level, severity=None if task.severity.fixed else severity,
                        group=group, prompt=int(k))]

  def description(self, shards: dict[str, list[str]]) -> dict:
    """The content of `testset.json`."""
    drawn = self.draw_images()
    return {"format": 1, "protocol": "glv101", "source": self.source.spec,
            "size": self.resize, "levels": self.levels, "seed": self.seed,
            "num_images": len(drawn["test_keys"]), "num_prompts": len(drawn["prompt_keys"]),
            "test_keys": drawn["test_keys"], "prompt_keys": drawn["prompt_keys"],
            "skipped": drawn["skipped"],
            "tasks": {task: {"shards": names} for task, names in shards.items()}}


def write_description(output: str, description: dict) -> None:
  files.write_bytes_atomically(files.join(output, TESTSET_FILE),
                               (json.dumps(description, indent=1, sort_keys=True) + "\n").encode())
