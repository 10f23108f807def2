"""GenLV task catalogue: the 101 GLV-Bench tasks and how to synthesise their training pairs.

Host-side code only (numpy, OpenCV, Pillow, scipy; no jax), so that data-loader workers stay
light. Typical use::

    from genlv_jax import tasks
    task = tasks.get_task("Gaussian Denoising")        # by name or paper name
    inp, target = task.synthesize(clean, severity=0.5, rng=np.random.default_rng(0))
    sample = tasks.make_quadruplet(task, prompt_clean, input_clean, 0.5, rng)

`python -m genlv_jax.tasks list|show|sample` is the command-line view of the same registry.
"""

from genlv_jax.tasks.catalogue import ACMMM_TASK_SET, ACMMM_TASKS, GLV_BENCH_TASKS
from genlv_jax.tasks.mixed import MIXED_DEGRADATION
from genlv_jax.tasks.registry import (CATEGORIES, SOURCES, Severity, Task, all_tasks,
                                      extra_tasks, get_task, make_quadruplet, procedural_tasks)

__all__ = [
    "ACMMM_TASKS", "ACMMM_TASK_SET", "CATEGORIES", "GLV_BENCH_TASKS", "MIXED_DEGRADATION",
    "SOURCES", "Severity", "Task", "all_tasks", "extra_tasks", "get_task", "make_quadruplet",
    "procedural_tasks",
]
