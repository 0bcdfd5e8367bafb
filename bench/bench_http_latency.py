"""The Lambda handler with the HTTP sink when the endpoint takes a while to answer, as a real one does.

    python bench/bench_http_latency.py [--events N] [--delay-ms MS]

Runs the handler (gzip on) over the core benchmark's corpus, one call per Kinesis event of 100 records,
against a loopback server that answers each POST after --delay-ms (default 20, a request to a nearby
region's endpoint), once with the sink's default batch limits and once with max_batch_events=1000, and
prints the time per invocation: what a Lambda function is billed for.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench_pipeline import SERVER, build_corpus, configure_logging, handler_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="log events in the corpus (default 200000)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="the server's time to answer (default 20)")
    args = parser.parse_args()

    invocations = build_corpus(args.events).kinesis_events
    configure_logging("ERROR")
    command = [sys.executable, "-c", SERVER, str(args.delay_ms / 1000)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        print(f"{len(invocations)} invocations, the server answering after {args.delay_ms:g} ms")
        for options in ("", " max_batch_events=1000"):
            run = handler_run(f"http://127.0.0.1:{port}/ gzip=true{options}")
            started = time.perf_counter()
            sent = run(invocations)
            per_invocation = (time.perf_counter() - started) / len(invocations)
            label = options.strip() or "default batch limits"
            print(f"{label:24s} {per_invocation * 1000:6.1f} ms an invocation ({sent:,} events sent)")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
