"""Data: clean-image sources (builtin, folders, tfds), paired folders, image files, the task
selection, training records and the grain input pipeline. Host code: no flax, no model."""
