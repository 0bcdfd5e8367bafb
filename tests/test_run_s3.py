"""`shipper run s3://bucket/prefix` against a moto server: export objects, Firehose objects, the probe skipped."""

from __future__ import annotations

import boto3

from shipper.cli import EXIT_INCOMPLETE, EXIT_OK

from exports import by_log_group, export_objects, firehose_object, fleet
from generate import stream_truth
from run_helpers import assert_matches_truth, run


def test_export_and_firehose_objects_under_a_prefix(tmp_path, aws, capsys):
    streams, truth = fleet(1500, seed=21)
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="exports")
    groups = by_log_group(streams)
    exported = [s for group, members in groups.items() if group.startswith("/aws/lambda/") for s in members]
    for group in {s.spec.group for s in exported}:
        for key, body in export_objects(groups[group], f"logs/{group.strip('/')}", events_per_object=50).items():
            s3.put_object(Bucket="exports", Key=key, Body=body)
    shared = groups["/fleet/shared-logs"]
    body, _ = firehose_object(shared, double_gzip=True)
    s3.put_object(
        Bucket="exports", Key="logs/firehose/2024/05/20/16/central-logs-1-2024-05-20-16-00-00-x.gz", Body=body
    )
    s3.put_object(Bucket="exports", Key="elsewhere/ignored.txt", Body=b"not under the prefix")

    status, events = run(tmp_path, "s3://exports/logs/", "--endpoint-url", aws, "--report", str(tmp_path / "r.json"))
    assert status == EXIT_OK, capsys.readouterr().err
    assert_matches_truth(events, stream_truth(exported + shared))
    assert truth["functions"].keys() == {e["function"] for e in events}
    err = capsys.readouterr().err
    assert "formats: export" in err and "firehose 1" in err


def test_a_missing_bucket_is_an_error_naming_it(tmp_path, aws, capsys):
    status, events = run(tmp_path, "s3://no-such-bucket/x", "--endpoint-url", aws)
    assert status == EXIT_INCOMPLETE
    assert events == []
    assert "s3://no-such-bucket/x: cannot list objects" in capsys.readouterr().err


def test_an_empty_prefix_is_an_error(tmp_path, aws, capsys):
    boto3.client("s3", endpoint_url=aws).create_bucket(Bucket="empty")
    status, _ = run(tmp_path, "s3://empty/nothing/", "--endpoint-url", aws)
    assert status == EXIT_INCOMPLETE
    assert "s3://empty/nothing/: no objects under this prefix" in capsys.readouterr().err


def test_documentation_under_a_prefix_is_skipped_and_listed(tmp_path, aws, capsys):
    streams, _ = fleet(300, seed=5)
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="docs-beside")
    group, members = next((g, m) for g, m in by_log_group(streams).items() if g.startswith("/aws/lambda/"))
    for key, body in export_objects(members, f"logs/{group.strip('/')}").items():
        s3.put_object(Bucket="docs-beside", Key=key, Body=body)
    s3.put_object(Bucket="docs-beside", Key="logs/README.md", Body=b"ThrottlingException and Rate exceeded: retry.\n")
    status, events = run(tmp_path, "s3://docs-beside/logs/", "--endpoint-url", aws)
    err = capsys.readouterr().err
    assert status == EXIT_OK
    assert "s3://docs-beside/logs/README.md: documentation (.md), not logs" in err
    assert stream_truth(members)["functions"].keys() == {e["function"] for e in events}
    assert not [e for e in events if e["type"] == "throttle" and "retry." in e["message"]]
