"""Inference on image files: prompt pairs, output planning, tiling, a folder run."""
