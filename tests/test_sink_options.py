"""Sink options written as text (SHIPPER_SINKS, --sink): each option reads the text by its own type.

A text option takes the text as written, even when it looks like a number or a boolean, quoted or not
(`loki:URL tenant=12345`); a number option parses a number, a flag true or false; anything else is a
clear ConfigError naming the option, never an exception of another kind.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.config import ConfigError, build_router, load_config_from_env, merge_cli
from shipper.sinks import build_sink

URL = "http://127.0.0.1:9"
KINDS = {
    "http": (f"{URL}/events", {}),
    "otlp": (f"otlp:{URL}", {}),
    "loki": (f"loki:{URL}", {}),
    "datadog": ("datadog", {"api_key": "env:DD_API_KEY"}),
    "splunk-hec": (f"splunk-hec:{URL}", {"token": "env:HEC_TOKEN"}),
    "prometheus-remote-write": (f"prometheus-remote-write:{URL}", {}),
    "s3": ("s3://bucket/prefix", {}),
    "kinesis": ("kinesis:stream", {}),
    "firehose": ("firehose:stream", {}),
    "cloudwatch": ("cloudwatch", {}),
    "cloudwatch:emf": ("cloudwatch:emf", {}),
}
"""Each kind of sink that takes options: its spec and the options it cannot be built without."""
_AWS = ("s3", "kinesis", "firehose", "cloudwatch", "cloudwatch:emf")

TEXT, OTHER_TEXT, NUMBER, FLAG = "text", "other text", "number", "flag"
OPTIONS = {
    # free text, kept as written
    "api_key_header": TEXT,
    "api_key_scheme": TEXT,
    "header.NAME": TEXT,
    "label.NAME": TEXT,
    "index": TEXT,
    "tenant": TEXT,
    "service": TEXT,
    "region": TEXT,
    "tags": TEXT,
    "source": TEXT,
    "sourcetype": TEXT,
    "job": TEXT,
    "instance": TEXT,
    "namespace": TEXT,
    # text of a given form (a choice, a reference, a path or a URL): checked by the option itself
    "preset": OTHER_TEXT,
    "api_key": OTHER_TEXT,
    "token": OTHER_TEXT,
    "ca_bundle": OTHER_TEXT,
    "signals": OTHER_TEXT,
    "labels": OTHER_TEXT,
    "format": OTHER_TEXT,
    "site": OTHER_TEXT,
    "logs_url": OTHER_TEXT,
    "metrics_url": OTHER_TEXT,
    "endpoint_url": OTHER_TEXT,
    "partition_key": OTHER_TEXT,
    "connect_timeout_s": NUMBER,
    "read_timeout_s": NUMBER,
    "max_batch_events": NUMBER,
    "max_batch_bytes": NUMBER,
    "max_line_bytes": NUMBER,
    "max_item_bytes": NUMBER,
    "max_series_per_request": NUMBER,
    "ack_timeout_s": NUMBER,
    "timeout": NUMBER,
    "gzip": FLAG,
    "ack": FLAG,
    "record_per_event": FLAG,
}
"""Every option of every sink, by how its text is read (the completeness test keeps this whole)."""
_REAL_OPTIONS = {"header.NAME": "header.X-Tenant", "label.NAME": "label.team"}
_FIXED = {("splunk-hec", "api_key_header"), ("splunk-hec", "api_key_scheme")}
"""Options a sink declares through the HTTP transport but refuses: Splunk's token header is fixed."""
_UNREAD = {("cloudwatch:emf", name) for name in ("endpoint_url", "region", "timeout")}
"""Options a sink takes but never reads: EMF goes to standard output, with no AWS client."""


def known_options(kind: str) -> list[str]:
    """The options a kind of sink declares, as its error for an unknown option lists them."""
    spec, required = KINDS[kind]
    with pytest.raises(ConfigError) as raised:
        build_sink(spec, {**required, "no_such_option": "x"})
    listed = re.split(r"(?:known|allowed): ", str(raised.value))[1]
    return [name for name in listed.split(", ") if name]


def options_of(kind: str, category: str) -> list[str]:
    names = [*known_options(kind), *(["token"] if kind == "splunk-hec" else [])]
    names += ["label.NAME"] if kind == "loki" else []
    return [
        _REAL_OPTIONS.get(name, name)
        for name in names
        if OPTIONS[name] == category
        and (kind, name) not in _FIXED | _UNREAD
        and not (kind in _AWS and name == "region")  # botocore checks region names
    ]


def held(value: Any, depth: int = 0) -> Iterator[str]:
    """Every text a built sink holds, however deep in its parts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif depth < 5 and isinstance(value, dict):
        for key, item in value.items():
            yield from held(key, depth + 1)
            yield from held(item, depth + 1)
    elif depth < 5 and isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from held(item, depth + 1)
    elif depth < 5 and hasattr(value, "__dict__") and type(value).__module__.startswith("shipper."):
        yield from held(vars(value), depth + 1)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", "0" * 32)
    monkeypatch.setenv("HEC_TOKEN", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_REGION", raising=False)


def sink_from(line: str, source: str) -> Any:
    """The sink built from one SHIPPER_SINKS entry or one --sink flag, as the shipper builds it."""
    if source == "SHIPPER_SINKS":
        config = load_config_from_env({"SHIPPER_SINKS": line})
    else:
        config = merge_cli(None, sinks=[line])
    router = build_router(config)
    [route] = router.routes
    return route.delivery.sink


def line_with(kind: str, option: str, written: str) -> str:
    spec, required = KINDS[kind]
    extra = {"preset": "elasticsearch"} if option == "index" and kind == "http" else {}
    pairs = [f"{key}={shlex.quote(str(value))}" for key, value in {**required, **extra}.items()]
    return " ".join([spec, *pairs, f"{option}={written}"])


NUMBER_LIKE = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False).map(str),
    st.integers(min_value=0, max_value=999).map(lambda n: f"{n:05d}"),  # leading zeros
    st.sampled_from(["1e3", "0x1f", "1_000", "-0", "0.0", "1.50", ".5"]),
)
BOOL_LIKE = st.sampled_from(["true", "false", "True", "FALSE", "yes", "no", "on", "null"])
TEXT_PAIRS = [(kind, option) for kind in KINDS for option in options_of(kind, TEXT)]


def quoted(value: str) -> st.SearchStrategy[str]:
    """The value as a shell-like line may write it: bare, in double quotes or in single quotes."""
    return st.sampled_from([value, f'"{value}"', f"'{value}'"])


def test_every_option_of_every_sink_is_classified() -> None:
    for kind in KINDS:
        unclassified = [name for name in known_options(kind) if name not in OPTIONS]
        assert not unclassified, (kind, unclassified)
    assert {option.split(".")[0] for _, option in TEXT_PAIRS} >= {"tenant", "index", "job", "header", "label"}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pair=st.sampled_from(TEXT_PAIRS),
    value=NUMBER_LIKE | BOOL_LIKE,
    data=st.data(),
    source=st.sampled_from(["SHIPPER_SINKS", "--sink"]),
)
def test_a_text_option_takes_number_and_bool_like_text_as_written(
    pair: tuple[str, str], value: str, data: st.DataObject, source: str
) -> None:
    kind, option = pair
    if kind == "cloudwatch" or kind == "cloudwatch:emf":  # a CloudWatch namespace cannot start with a digit or '-'
        value = f"ns{value}"
    sink = sink_from(line_with(kind, option, data.draw(quoted(value))), source)
    assert any(value in text for text in held(sink)), (kind, option, value)
    sink.close()


OTHER_TEXT_PAIRS = [(kind, option) for kind in KINDS for option in options_of(kind, OTHER_TEXT)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=st.sampled_from(OTHER_TEXT_PAIRS), value=NUMBER_LIKE | BOOL_LIKE, data=st.data())
def test_a_text_option_of_a_given_form_judges_number_like_text_by_that_form(
    pair: tuple[str, str], value: str, data: st.DataObject
) -> None:
    kind, option = pair
    try:
        sink_from(line_with(kind, option, data.draw(quoted(value))), "SHIPPER_SINKS").close()
    except ConfigError as exc:
        assert "must be text" not in str(exc) and "wrong type" not in str(exc), str(exc)


NUMBER_PAIRS = [(kind, option) for kind in KINDS for option in options_of(kind, NUMBER)]
FLAG_PAIRS = [(kind, option) for kind in KINDS for option in options_of(kind, FLAG)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pair=st.sampled_from(NUMBER_PAIRS),
    number=st.integers(min_value=1, max_value=10_000),
    data=st.data(),
)
def test_a_number_option_still_reads_numbers_and_refuses_other_text(
    pair: tuple[str, str], number: int, data: st.DataObject
) -> None:
    kind, option = pair
    written = data.draw(quoted(str(number)))
    sink_from(line_with(kind, option, written), "SHIPPER_SINKS").close()
    bad = data.draw(st.sampled_from(["abc", "nan", "inf", "-5", "0", "1e3", "9" * 5000, "true", '""']))
    with pytest.raises(ConfigError, match=re.escape(option)):
        sink_from(line_with(kind, option, bad), "SHIPPER_SINKS")


@pytest.mark.parametrize(("kind", "option"), FLAG_PAIRS)
def test_a_flag_option_reads_true_and_false_and_refuses_other_text(kind: str, option: str) -> None:
    extra = " format=json" if kind == "loki" else ""  # loki's protobuf body is snappy-compressed, never gzip'd
    for written in ("false", "'false'"):
        sink_from(line_with(kind, option, written) + extra, "SHIPPER_SINKS").close()
    for written in ("true", '"true"'):
        try:
            sink_from(line_with(kind, option, written) + extra, "SHIPPER_SINKS").close()
        except ConfigError as exc:  # a sink that cannot take it (remote write's body is never gzip'd) says so
            assert "must be true or false" not in str(exc) and option in str(exc), str(exc)
    for bad in ("yes", "1", "True", ""):
        with pytest.raises(ConfigError, match=re.escape(option)):
            sink_from(line_with(kind, option, bad), "SHIPPER_SINKS")


def test_gzip_false_written_as_text_is_false() -> None:
    """A flag read from text is the flag, not the (truthy) text: loki's protobuf format takes gzip=false."""
    sink_from(f"loki:{URL} gzip=false", "SHIPPER_SINKS").close()
    with pytest.raises(ConfigError, match="gzip is for format=json"):
        sink_from(f"loki:{URL} gzip=true", "SHIPPER_SINKS")
