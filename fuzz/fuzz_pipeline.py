"""Coverage-guided fuzzing of the decoder and classifier with atheris (`make fuzz`).

Every input must end as events or rejects with a reason: any exception is a finding. Inputs are
mutated around real shapes: gzip'd CloudWatch Logs envelopes, KPL aggregates, and log lines (REPORT,
platform JSON, metric lines) placed inside a valid envelope so the classifier sees them.

    python fuzz/fuzz_pipeline.py [-max_total_time=SECONDS] [-runs=N] [corpus dir]
"""

from __future__ import annotations

import gzip
import sys

import atheris

with atheris.instrument_imports():
    import orjson

    from shipper.contract import contract_violations
    from shipper.decode import KPL_MAGIC, RawRecord
    from shipper.pipeline import Pipeline

_LINE_SEEDS = (
    "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 9 MB\t\n",
    '{"time":"2024-05-20T16:29:45.022Z","type":"platform.report","record":{"requestId":"r","status":"timeout"}}',
    "page.views:1|c|#env:prod\n",
    "MONITORING|1716222585|1|count|orders|#env:prod\n",
    '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M"}]}]},"D":"d","M":[1]}',
    "[ERROR] KeyError: 'x'\nTraceback (most recent call last):\n",
)


def _envelope(messages: list[str]) -> bytes:
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": "1",
        "logGroup": "/aws/lambda/fuzz",
        "logStream": "s",
        "logEvents": [{"id": str(i), "timestamp": i, "message": m} for i, m in enumerate(messages)],
    }
    return gzip.compress(orjson.dumps(document), mtime=0)


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    shape = provider.ConsumeIntInRange(0, 3)
    if shape == 0:
        payload = provider.ConsumeBytes(provider.remaining_bytes())
    elif shape == 1:
        payload = gzip.compress(provider.ConsumeBytes(provider.remaining_bytes()), mtime=0)
    elif shape == 2:
        payload = KPL_MAGIC + provider.ConsumeBytes(provider.remaining_bytes())
    else:
        seed = _LINE_SEEDS[provider.ConsumeIntInRange(0, len(_LINE_SEEDS) - 1)]
        payload = _envelope([seed + provider.ConsumeUnicodeNoSurrogates(200) for _ in range(3)])
    pipeline = Pipeline(max_decompressed_bytes=1 << 20)
    for outcome in pipeline.process_records([RawRecord(payload, "1", "fuzz")]):
        for event in outcome.events:
            problems = contract_violations(event)
            if problems:
                raise AssertionError(problems)
            orjson.dumps(event)
        for reject in outcome.rejects:
            if not reject.reason or not reject.code:
                raise AssertionError(f"reject without a reason: {reject!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
