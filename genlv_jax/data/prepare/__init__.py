"""GLV-Bench data preparation at scale: `python -m genlv_jax.data.prepare paired|targets|heavy|
testset`, an Apache Beam pipeline that writes (input, target) pairs as ArrayRecord shards.

Importing this package loads no Beam: the readers (`read_shards`, `PreparedPairs`,
`decode_record`) are for the training and evaluation processes, which need only grain's
ArrayRecord support. Beam (`apache-beam`) is imported by `pipeline` when a job runs.
"""

from genlv_jax.data.prepare.shards import (PreparedPairs, decode_record, encode_record,
                                           read_shards, shard_paths)

__all__ = ["PreparedPairs", "decode_record", "encode_record", "read_shards", "shard_paths"]
