"""Inputs for `shipper run`: exported CloudWatch Logs in every format people have, read as a stream.

    iter_inputs(PATHS) -> Input, ...       files, directories (recursively), "-" (stdin), s3://bucket/prefix
    read_input(Input, ReadOptions, Meter) -> Opened(format, batches)

Formats and how they are recognised are in `shipper.inputs.detect` (FORMATS); how a log group and
stream are found for formats that lack them, in `log_group_from_path` and `log_stream_from_path`.
"""

from shipper.inputs.detect import FORMATS, detect
from shipper.inputs.readers import (
    Batch,
    Opened,
    ReadOptions,
    log_group_from_path,
    log_stream_from_path,
    read_input,
)
from shipper.inputs.sources import PROBE_OBJECT, Input, Skipped, iter_inputs, total_size
from shipper.inputs.streams import Meter

__all__ = [
    "FORMATS",
    "PROBE_OBJECT",
    "Batch",
    "Input",
    "Meter",
    "Opened",
    "ReadOptions",
    "Skipped",
    "detect",
    "iter_inputs",
    "log_group_from_path",
    "log_stream_from_path",
    "read_input",
    "total_size",
]
