"""Training: the pure train step, sharding rules, checkpoints, metric writers, the loop
(`trainer.train_and_evaluate`) and few-shot fine-tuning (`finetune`).

Import the submodule you need: this package's `__init__` loads nothing, so that
`training.checkpointing` does not pull in the loop's dependencies (TensorFlow via clu).
"""
