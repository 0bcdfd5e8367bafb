"""Log lines as Lambda, its runtimes and other tools really write them, and the same lines in every export format.

Each runtime's lines are short excerpts of the samples in AWS's Lambda developer guide (python-logging,
nodejs-logging, java-logging, golang-logging, ruby-logging, csharp-logging, powershell-logging,
runtimes-custom): the request ids with `xmpl` in them are AWS's own. A message is stored as CloudWatch
Logs holds it: TAB between REPORT fields, the X-Ray fields on the REPORT's second line, a line end.
`CONSOLE_COPIES` are the same REPORT lines as the guide prints them, tabs turned into spaces.

`export_files` writes streams of these messages with examples/exports.py, in each format users export.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

from exports import export_objects, filter_log_events, insights_csv, insights_results, ndjson, sam_logs, tail
from generate import FLEET, Stream


class Runtime(NamedTuple):
    name: str
    request_id: str
    trace_id: str
    messages: list[str]


def _report(request_id: str, fields: str, trace_id: str, segment: str) -> str:
    return (
        f"REPORT RequestId: {request_id}\t{fields}\t\nXRAY TraceId: {trace_id}\tSegmentId: {segment}\tSampled: true\t\n"
    )


PYTHON = Runtime(
    "python",
    "8f507cfc-xmpl-4697-b07a-ac58fc914c95",
    "1-5e34a614-10bdxmplf1fb44f07bc535a1",
    [
        "START RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95 Version: $LATEST\n",
        "## ENVIRONMENT VARIABLES\n",
        "[INFO]\t2020-01-31T22:12:58.534Z\t8f507cfc-xmpl-4697-b07a-ac58fc914c95\t## EVENT\n",
        "END RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95\n",
        _report(
            "8f507cfc-xmpl-4697-b07a-ac58fc914c95",
            "Duration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms",
            "1-5e34a614-10bdxmplf1fb44f07bc535a1",
            "07f5xmpl2d1f6f85",
        ),
    ],
)
NODE = Runtime(
    "node",
    "c793869b-ee49-115b-a5b6-4fd21e8dedac",
    "1-5d9d007f-0a8c7fd02xmpl480aed55ef0",
    [
        "START RequestId: c793869b-ee49-115b-a5b6-4fd21e8dedac Version: $LATEST\n",
        '2019-06-07T19:11:20.562Z\tc793869b-ee49-115b-a5b6-4fd21e8dedac\tINFO\tENVIRONMENT VARIABLES\n{\n  "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"\n}\n',
        "2019-06-07T19:11:20.564Z\tc793869b-ee49-115b-a5b6-4fd21e8dedac\tWARN\tEvent not processed.\n",
        "END RequestId: c793869b-ee49-115b-a5b6-4fd21e8dedac\n",
        # The guide's Node sample: the X-Ray fields after a TAB on the REPORT's own line.
        "REPORT RequestId: c793869b-ee49-115b-a5b6-4fd21e8dedac\tDuration: 128.83 ms\tBilled Duration: 200 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 74 MB\tInit Duration: 166.62 ms\tXRAY TraceId: "
        "1-5d9d007f-0a8c7fd02xmpl480aed55ef0\tSegmentId: 3d752xmpl1bbe37e\tSampled: true\t\n",
    ],
)
JAVA = Runtime(
    "java",
    "6bc28136-xmpl-4365-b021-0ce6b2e64ab0",
    "1-5e73xmpl-4b2c8e42b6e8e0c8d39f16f6",
    [
        "START RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64ab0 Version: $LATEST\n",
        'ENVIRONMENT VARIABLES: \n{\n    "_HANDLER": "example.Handler"\n}\n',
        # log4j2 with the guide's LambdaAppender pattern `%d{yyyy-MM-dd HH:mm:ss} %X{AWSRequestId} %-5p %c{1}:%L - %m%n`
        "2020-03-18 22:52:15 6bc28136-xmpl-4365-b021-0ce6b2e64ab0 INFO  Handler:31 - EVENT TYPE: class java.util.LinkedHashMap\n",
        "6bc28136-xmpl-4365-b021-0ce6b2e64ab0 DEBUG Handler:54 - processed 3 records\n",
        "END RequestId: 6bc28136-xmpl-4365-b021-0ce6b2e64ab0\n",
        _report(
            "6bc28136-xmpl-4365-b021-0ce6b2e64ab0",
            "Duration: 198.50 ms\tBilled Duration: 200 ms\tMemory Size: 512 MB\tMax Memory Used: 90 MB\tInit Duration: 524.75 ms",
            "1-5e73xmpl-4b2c8e42b6e8e0c8d39f16f6",
            "1b40xmpl9ea4e8b6",
        ),
    ],
)
GO = Runtime(
    "go",
    "dbda340c-xmpl-4031-8810-11bb609b4c71",
    "1-5e7d8xmpl-3a4e1a1a3d8f1e1fa3c0f6ea",
    [
        "START RequestId: dbda340c-xmpl-4031-8810-11bb609b4c71 Version: $LATEST\n",
        '2020/03/27 03:40:05 EVENT: {\n  "Records": []\n}\n',
        "2020/03/27 03:40:05 REGION: us-east-2\n",
        "END RequestId: dbda340c-xmpl-4031-8810-11bb609b4c71\n",
        _report(
            "dbda340c-xmpl-4031-8810-11bb609b4c71",
            "Duration: 38.66 ms\tBilled Duration: 39 ms\tMemory Size: 128 MB\tMax Memory Used: 54 MB\tInit Duration: 203.69 ms",
            "1-5e7d8xmpl-3a4e1a1a3d8f1e1fa3c0f6ea",
            "02cbxmpl3c1e2b9d",
        ),
    ],
)
RUBY = Runtime(
    "ruby",
    "50aba555-xmpl-4b21-8358-644ee996a05f",
    "1-5e34a246-2a04xmpl0fa44eb60ea08c5f",
    [
        "START RequestId: 50aba555-xmpl-4b21-8358-644ee996a05f Version: $LATEST\n",
        "## ENVIRONMENT VARIABLES\n",
        "I, [2019-10-26T10:04:01.689856 #8]  INFO 50aba555-xmpl-4b21-8358-644ee996a05f -- : ## EVENT\n",
        "END RequestId: 50aba555-xmpl-4b21-8358-644ee996a05f\n",
        _report(
            "50aba555-xmpl-4b21-8358-644ee996a05f",
            "Duration: 12.96 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 48 MB\tInit Duration: 117.86 ms",
            "1-5e34a246-2a04xmpl0fa44eb60ea08c5f",
            "454xmpl46ca1c7d3",
        ),
    ],
)
DOTNET = Runtime(
    "dotnet",
    "d1cf0ccb-xmpl-46e6-950d-04c96c9b1c5d",
    "1-5e7e8131-7ff0xmpl32bfb31045d0a3bb",
    [
        "START RequestId: d1cf0ccb-xmpl-46e6-950d-04c96c9b1c5d Version: $LATEST\n",
        'ENVIRONMENT VARIABLES: \n{\n  "AWS_EXECUTION_ENV": "AWS_Lambda_dotnetcore2.1"\n}\n',
        "END RequestId: d1cf0ccb-xmpl-46e6-950d-04c96c9b1c5d\n",
        _report(
            "d1cf0ccb-xmpl-46e6-950d-04c96c9b1c5d",
            "Duration: 4157.16 ms\tBilled Duration: 4200 ms\tMemory Size: 256 MB\tMax Memory Used: 99 MB\tInit Duration: 841.60 ms",
            "1-5e7e8131-7ff0xmpl32bfb31045d0a3bb",
            "0152xmpl6016310f",
        ),
    ],
)
POWERSHELL = Runtime(
    "powershell",
    "56639408-xmpl-435f-9041-ac47ae25ceed",
    "1-5e843da6-733cxmple7d0c3c020510040",
    [
        "START RequestId: 56639408-xmpl-435f-9041-ac47ae25ceed Version: $LATEST\n",
        "Importing module ./Modules/AWSPowerShell.NetCore/3.3.618.0/AWSPowerShell.NetCore.psd1\n",
        "[Information] - ## Environment variables\n",
        "[Information] - AWS_LAMBDA_FUNCTION_VERSION=$LATEST\n",
        "END RequestId: 56639408-xmpl-435f-9041-ac47ae25ceed\n",
        _report(
            "56639408-xmpl-435f-9041-ac47ae25ceed",
            "Duration: 3906.38 ms\tBilled Duration: 4000 ms\tMemory Size: 512 MB\tMax Memory Used: 367 MB\tInit Duration: 5960.19 ms",
            "1-5e843da6-733cxmple7d0c3c020510040",
            "3913xmpl20999446",
        ),
    ],
)
CUSTOM = Runtime(
    "custom",
    "b6ba8cf4-xmpl-4f17-9a7d-2c33b1e5d0a8",
    "1-66a0xmpl-2b6f3d4e5a6b7c8d9e0f1a2b",
    [
        "INIT_START Runtime Version: provided:al2023.v29\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:8d2e\n",
        "START RequestId: b6ba8cf4-xmpl-4f17-9a7d-2c33b1e5d0a8 Version: $LATEST\n",
        'bootstrap: handling event {"key1":"value1"}\n',
        "END RequestId: b6ba8cf4-xmpl-4f17-9a7d-2c33b1e5d0a8\n",
        _report(
            "b6ba8cf4-xmpl-4f17-9a7d-2c33b1e5d0a8",
            "Duration: 2.10 ms\tBilled Duration: 45 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\tInit Duration: 42.31 ms",
            "1-66a0xmpl-2b6f3d4e5a6b7c8d9e0f1a2b",
            "6a1cxmpl8b2d4e3f",
        ),
    ],
)
RUNTIMES = (PYTHON, NODE, JAVA, GO, RUBY, DOTNET, POWERSHELL, CUSTOM)

CONSOLE_COPIES = {
    # python-logging: tabs turned into runs of spaces, one of them a single space.
    "python": (
        "REPORT RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95  Duration: 15.74 ms  Billed Duration: 147 ms "
        "Memory Size: 128 MB Max Memory Used: 56 MB  Init Duration: 130.49 ms\n"
        "XRAY TraceId: 1-5e34a614-10bdxmplf1fb44f07bc535a1   SegmentId: 07f5xmpl2d1f6f85   Sampled: true\n"
    ),
    # java-logging / csharp-logging `--log-type Tail` output: wide runs of spaces, no X-Ray.
    "java": (
        "REPORT RequestId: 57f231fb-1730-4395-85cb-4f71bd2b87b8  Duration: 79.67 ms      Billed Duration: 100 ms"
        "         Memory Size: 128 MB     Max Memory Used: 73 MB\n"
    ),
}

EXPORT_FORMATS = ("tail", "export", "text", "filter-log-events", "ndjson", "insights", "insights-csv", "sam-logs")
"""The formats users export logs in, as `shipper run` names them (`sam-logs`: `sam logs` output)."""

STREAM_NAME = "2024/05/20/[$LATEST]3893xmpl7fac4485b47bb75b671a283c"
START_MS = 1716222585000


def stream_of(function: str, messages: list[str], start_ms: int = START_MS) -> Stream:
    """A log stream of `function` holding `messages`, one millisecond apart."""
    spec = dataclasses.replace(FLEET[0], name=function, log_group="")
    events = [(start_ms + number, message) for number, message in enumerate(messages)]
    return Stream(spec, STREAM_NAME, "p", events)


def export_files(directory: Path, function: str, messages: list[str]) -> dict[str, Path]:
    """`messages` written in each of EXPORT_FORMATS under DIRECTORY/<format>/aws/lambda/FUNCTION...: format -> path."""
    stream = stream_of(function, messages)
    bodies = {
        "tail": tail([stream]),
        "text": "".join(m if m.endswith("\n") else m + "\n" for m in messages).encode(),
        "filter-log-events": filter_log_events([stream]),
        "ndjson": ndjson([stream]),
        "insights": insights_results([stream]),
        "insights-csv": insights_csv([stream]),
        "sam-logs": sam_logs([stream]),
    }
    paths = {}
    for name, body in bodies.items():
        path = directory / name / "aws" / "lambda" / f"{function}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        paths[name] = path
    for key, body in export_objects([stream], f"export/aws/lambda/{function}").items():
        if key.endswith(".gz"):
            path = directory / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            paths["export"] = path
    return paths


LEGACY_REQUEST_ID = "8f507cfc-xmpl-4697-b07a-ac58fc914c95"


def legacy_report(duration: str, billed: str, memory: int, max_memory: int) -> str:
    """A REPORT as Lambda wrote it before `Status:` existed (before December 2020: a space before the TAB after Billed Duration)."""
    return (
        f"REPORT RequestId: {LEGACY_REQUEST_ID}\tDuration: {duration} ms\tBilled Duration: {billed} ms \t"
        f"Memory Size: {memory} MB\tMax Memory Used: {max_memory} MB\t\n"
    )


LEGACY_TIMEOUT = [
    f"START RequestId: {LEGACY_REQUEST_ID} Version: $LATEST\n",
    f"2020-06-09T15:02:23.145Z {LEGACY_REQUEST_ID} Task timed out after 3.00 seconds\n\n",
    f"END RequestId: {LEGACY_REQUEST_ID}\n",
    legacy_report("3003.17", "3000", 128, 40),
]
"""A timeout as Lambda logged it before REPORT had a status."""

LEGACY_OOM_KILL = [
    f"START RequestId: {LEGACY_REQUEST_ID} Version: $LATEST\n",
    f"RequestId: {LEGACY_REQUEST_ID} Error: Runtime exited with error: signal: killed\nRuntime.ExitError\n",
    f"END RequestId: {LEGACY_REQUEST_ID}\n",
    legacy_report("1519.42", "1600", 128, 128),
]
"""An out-of-memory kill as Lambda logged it before REPORT had a status."""


NODE_HEAP_OUT_OF_MEMORY = (
    "2020-06-09T15:02:26.150Z 8f507cfc-xmpl-4697-b07a-ac58fc914c95 FATAL ERROR: Ineffective mark-compacts near "
    "heap limit Allocation failed - JavaScript heap out of memory\n"
)
"""Node.js running out of heap, with the time and request id prefix (the Datadog forwarder's fixture shape)."""


DATADOG_NODE_METRIC = (
    '{"e":1583425836.114,"m":"serverless.lambda-extension.integration-test.count",'
    '"t":["tagkey:tagvalue","dd_lambda_layer:datadog-nodev12.16.1"],"v":1}\n'
)
"""The Datadog Node.js layer's metric with DD_FLUSH_TO_LOG: epoch seconds with milliseconds."""
DATADOG_LEGACY_METRIC = "MONITORING|1609983680.41|1|count|orders.processed|#env:prod\n"
"""The older Datadog text form, its epoch seconds fractional."""
