"""Streaming: `shipper run`'s peak memory stays flat while its input grows eight-fold, for the big formats.

Each input is one file (a single filter-log-events JSON document, one export object, one Firehose
object), so nothing but streaming keeps memory flat: holding the larger input, or what it inflates
to, would take more than its 20+ MB of content. Peak RSS is measured by bench/bench_run.py. What does
grow a little is bounded state (the classifier's memory of log streams and requests, allocator
fragmentation), which levels off: a 1 GB input peaks near 41 MB.
"""

from __future__ import annotations

import gzip

import pytest

from bench_run import measure
from exports import copies, export_objects, filter_log_events, firehose_object, fleet

LIMIT_MB = 8


def _write(path, fmt, streams) -> int:
    """Write the input; returns the size of its content once inflated."""
    if fmt == "filter-log-events":
        content = filter_log_events(streams)
        path.write_bytes(content)
        return len(content)
    if fmt == "export":
        objects = export_objects(streams, "p", events_per_object=10**9)
        content = b"".join(gzip.decompress(body) for key, body in sorted(objects.items()) if key.endswith(".gz"))
        path.write_bytes(gzip.compress(content, compresslevel=1))
        return len(content)
    body, _ = firehose_object(streams)
    path.write_bytes(body)
    return len(gzip.decompress(body))


@pytest.mark.parametrize("fmt", ["filter-log-events", "export", "firehose"])
def test_peak_memory_does_not_grow_with_input_size(tmp_path, fmt):
    streams, _ = fleet(4000, seed=51)
    content = _write(tmp_path / "small", fmt, [s for group in copies(streams, 4) for s in group])
    if fmt == "firehose":  # members concatenated are a Firehose object too; gzip level 9 is slow to write
        (tmp_path / "large").write_bytes((tmp_path / "small").read_bytes() * 8)
        content *= 8
    else:
        content = _write(tmp_path / "large", fmt, [s for group in copies(streams, 32) for s in group])
    small, large = measure(tmp_path / "small"), measure(tmp_path / "large")
    assert small["status"] == large["status"] == 0
    assert large["log_events"] == 8 * small["log_events"]
    assert content > 2.5 * LIMIT_MB * 1e6
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < LIMIT_MB, (small, large)
