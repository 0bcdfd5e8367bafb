"""The whole pipeline against generated input whose ground truth the generator computed independently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shipper.contract import contract_violations
from shipper.pipeline import Pipeline
from shipper.sinks.base import encode_ndjson

from generate import build_corpus
from run_helpers import assert_matches_truth

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(30_000, seed=7)


def test_every_event_meets_the_contract_and_counts_match_the_generated_truth(corpus):
    pipeline = Pipeline()
    events: list[dict] = []
    for kinesis_event in corpus.kinesis_events:
        for outcome in pipeline.process_kinesis_event(kinesis_event):
            assert outcome.rejects == []
            events.extend(outcome.events)
    violations = [(event, problem) for event in events for problem in contract_violations(event)]
    assert violations == []
    # What leaves the pipeline is what the contract says, once serialised too.
    assert [orjson.loads(line) for line in encode_ndjson(events).splitlines()] == events
    assert_matches_truth(events, corpus.truth)
    assert pipeline.counts["log_events_received"] == corpus.truth["log_events"]
    assert pipeline.counts["records_received"] == corpus.truth["records"]
    assert pipeline.counts["control_messages_skipped"] == corpus.truth["control_messages"]
    assert pipeline.counts["kpl_subrecords"] == corpus.truth["kpl_user_records"]


def test_shipper_run_on_the_bundled_sample_writes_the_truth(tmp_path):
    sample = ROOT / "examples" / "sample"
    output = tmp_path / "events.ndjson"
    completed = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "run", str(sample), "--sink", f"jsonl:{output}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "0 rejected" in completed.stderr
    events = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert all(contract_violations(event) == [] for event in events)
    assert_matches_truth(events, build_corpus(3000, seed=1).sample_truth)
