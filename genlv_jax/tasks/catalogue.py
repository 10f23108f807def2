"""The full catalogue: the 101 GLV-Bench tasks (53 restoration, 22 enhancement, 18 stylization,
8 feature extraction; the large paper's Tables VI–IX), the ACMMM 30-task set and the extra
mixed-degradation task. Importing this module registers everything.
"""

from __future__ import annotations

from genlv_jax.tasks import registry
from genlv_jax.tasks.catalogue_enhancement import (ENHANCEMENT_TASKS, FEATURE_TASKS,
                                                   STYLIZATION_TASKS)
from genlv_jax.tasks.catalogue_restoration import RESTORATION_TASKS
from genlv_jax.tasks.mixed import MIXED_DEGRADATION

GLV_BENCH_TASKS = RESTORATION_TASKS + ENHANCEMENT_TASKS + STYLIZATION_TASKS + FEATURE_TASKS
EXPECTED_COUNTS = {"restoration": 53, "enhancement": 22, "stylization": 18,
                   "feature_extraction": 8}

# The 30 tasks of the ACMMM paper (§4.1; the large paper's Sec. III-C1), as the paper names them,
# mapped to catalogue entries. "Rain" is one of its ten restoration types but has two data
# sources, Rain13K and the simple additive model, which Table II reports separately (ComplexRain,
# SimpleRain) and GLV-Bench lists as two tasks; so 30 paper tasks map to 31 catalogue entries.
ACMMM_TASK_SET: dict[str, tuple[str, ...]] = {
    # Image restoration (10): "following PromptGIP".
    "Gaussian noise": ("gaussian_denoising",),
    "Gaussian blur": ("gaussian_deblurring",),
    "Poisson noise": ("poisson_denoising",),
    "salt & pepper noise": ("impulse_denoising",),
    "JPEG compression": ("jpeg_restoration",),
    "ringing artifacts": ("ringing_removal",),
    "R-L algorithm": ("lucy_richardson_deconvolution",),
    "inpainting": ("inpainting",),
    "haze": ("dehazing",),
    "rain": ("complex_deraining", "simple_deraining"),
    # Image enhancement (8).
    "LLE": ("lowlight_enhancement",),
    "photo retouching": ("photo_retouching",),
    "LLF": ("local_laplacian_filtering",),
    "MTM": ("multi_scale_tm",),
    "ICE": ("underwater_histogram_equalization",),
    "ICC": ("color_correction",),
    "SDR-to-HDR": ("sdr_to_hdr",),
    "HDR-to-SDR": ("hdr_to_sdr",),
    # Edge detection (3).
    "Canny": ("canny",),
    "Laplacian": ("laplacian",),
    "PED": ("perceptual_edge_detection",),
    # Stylization (9).
    "pencil drawing": ("pencil_drawing",),
    "photographic style": ("photographic_style",),
    "RTV": ("rtv",),
    "Vermeer": ("vermeer_style",),
    "JOJO": ("jojo_style",),
    "Raphael": ("raphael_style",),
    "Fauvism": ("fauvism_style",),
    "Divisionism": ("divisionism_style",),
    "Cloisonnism": ("cloisonnism_style",),
}

# Catalogue names of the ACMMM set (31 entries for its 30 tasks, see above), in paper order.
ACMMM_TASKS: tuple[str, ...] = tuple(n for names in ACMMM_TASK_SET.values() for n in names)


def _check() -> None:
  counts = {c: sum(t.category == c for t in GLV_BENCH_TASKS) for c in EXPECTED_COUNTS}
  if counts != EXPECTED_COUNTS:
    raise AssertionError(f"catalogue counts {counts} != paper {EXPECTED_COUNTS}")
  names = {t.name for t in GLV_BENCH_TASKS}
  missing = [n for n in ACMMM_TASKS if n not in names]
  if missing or len(ACMMM_TASK_SET) != 30:
    raise AssertionError(f"ACMMM set inconsistent: missing {missing}")


_check()
registry.register(GLV_BENCH_TASKS + (MIXED_DEGRADATION,))
