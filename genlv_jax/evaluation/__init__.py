"""Evaluation: the fixed samples, the papers' metrics per task, LPIPS, the mismatch test and
reports. One library for the trainer's periodic evaluation and `python -m genlv_jax.evaluate`,
so that their numbers are the same numbers."""

from genlv_jax.evaluation.evaluator import (evaluate, evaluate_checkpoint, lpips_metric,
                                           run_evaluation, scalar_metrics)
from genlv_jax.evaluation.report import (check_report_output, markdown_report, markdown_table,
                                        sample_grid, write_report)
from genlv_jax.evaluation.samples import EvalSamples, make_samples

__all__ = ["EvalSamples", "check_report_output", "evaluate", "evaluate_checkpoint",
           "lpips_metric", "make_samples",
           "markdown_report", "markdown_table", "run_evaluation", "sample_grid",
           "scalar_metrics", "write_report"]
