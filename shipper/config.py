"""Delivery configuration: sinks, routes, the dead letter, retries and batching.

It comes from the environment (the Lambda function), from a TOML file, or from flags on top of
either, and is checked once at start: a bad value raises ConfigError naming the variable, flag or
key and what is wrong with it. Sink options are checked when `build_router` builds the sinks.

Environment:
    SHIPPER_SINKS               sinks separated by ';' or new lines, each `SPEC [KEY=VALUE ...]`;
                                `name=NAME` names a sink (default: its kind, e.g. http, s3)
    SHIPPER_ROUTES              which event types each sink takes: `NAME=TYPE,TYPE;NAME=*`
                                (default: every type to every sink)
    SHIPPER_DEAD_LETTER         dir:PATH (or a directory path), jsonl:FILE or s3://BUCKET/PREFIX
    SHIPPER_RETRY_MAX_ATTEMPTS  attempts per batch, 1 to 100 (default 5)
    SHIPPER_RETRY_BASE_S        backoff base, seconds (default 0.2)
    SHIPPER_RETRY_CAP_S         longest backoff, seconds (default 10)
    SHIPPER_RETRY_AFTER_MAX_S   longest Retry-After obeyed, seconds (default 300); a longer one
                                returns the events as not delivered, to be sent again later
    SHIPPER_BATCH_MAX_WAIT_S    longest an event waits for its batch to fill, seconds (default 1)

TOML file: `dead_letter = "..."`, one `[[sinks]]` table per sink (`spec`, optional `name`, the
rest are options; `[sinks.header]` holds headers), `[routes]` (NAME = ["log", "error"] or "*"),
`[delivery]` (retry_max_attempts, retry_base_s, retry_cap_s, retry_after_max_s, batch_max_wait_s).

Flags, through `merge_cli`: --sink (repeated; replaces the sinks and their routes), --route
NAME=TYPES (repeated), --dead-letter, --retry-max-attempts, --retry-base-s, --retry-cap-s,
--retry-after-max-s, --batch-max-wait-s.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shipper.contract import EVENT_TYPES
from shipper.delivery import DEFAULT_MAX_WAIT_S, Delivery, RetryPolicy, Route, Router
from shipper.errors import ConfigError
from shipper.sinks import Sink, SinkError, build_sink, sink_kind

__all__ = [
    "Config",
    "ConfigError",
    "SinkConfig",
    "build_router",
    "load_config_from_env",
    "load_config_from_file",
    "merge_cli",
]

OptionValue = str | int | float | bool

_DEFAULT_RETRY = RetryPolicy()
# field: (environment variable, flag, type, lowest, highest); the TOML key is the field in [delivery].
_NUMBERS: dict[str, tuple[str, str, type, float, float]] = {
    "retry_max_attempts": ("SHIPPER_RETRY_MAX_ATTEMPTS", "--retry-max-attempts", int, 1, 100),
    "retry_base_s": ("SHIPPER_RETRY_BASE_S", "--retry-base-s", float, 0.001, 60.0),
    "retry_cap_s": ("SHIPPER_RETRY_CAP_S", "--retry-cap-s", float, 0.001, 900.0),
    "retry_after_max_s": ("SHIPPER_RETRY_AFTER_MAX_S", "--retry-after-max-s", float, 0.0, 86400.0),
    "batch_max_wait_s": ("SHIPPER_BATCH_MAX_WAIT_S", "--batch-max-wait-s", float, 0.0, 900.0),
}
_DEAD_LETTER_KINDS = ("dir", "jsonl", "s3")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_TOML_KEYS = ("sinks", "routes", "dead_letter", "delivery")


@dataclass(frozen=True)
class SinkConfig:
    spec: str
    name: str
    options: tuple[tuple[str, OptionValue], ...] = ()
    types: frozenset[str] | None = None
    """Event types routed to this sink; None means every type."""
    where: str = ""
    """Where it was configured (variable, flag or file), for messages."""


@dataclass(frozen=True)
class Config:
    sinks: tuple[SinkConfig, ...]
    dead_letter: str | None = None
    retry_max_attempts: int = _DEFAULT_RETRY.max_attempts
    retry_base_s: float = _DEFAULT_RETRY.base_s
    retry_cap_s: float = _DEFAULT_RETRY.cap_s
    retry_after_max_s: float = _DEFAULT_RETRY.retry_after_max_s
    batch_max_wait_s: float = DEFAULT_MAX_WAIT_S

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retry_max_attempts, self.retry_base_s, self.retry_cap_s, self.retry_after_max_s)


def load_config_from_env(environ: Mapping[str, str]) -> Config:
    """The configuration the SHIPPER_* variables of `environ` describe (see the module docstring)."""
    entries = [entry.strip() for entry in re.split(r"[;\n]", environ.get("SHIPPER_SINKS", "")) if entry.strip()]
    if not entries:
        raise ConfigError("SHIPPER_SINKS is not set: name at least one sink, e.g. SHIPPER_SINKS='s3://BUCKET/PREFIX'")
    sinks = tuple(_sink_from_text(entry, f"SHIPPER_SINKS entry {i}") for i, entry in enumerate(entries, 1))
    routes_text = environ.get("SHIPPER_ROUTES", "").strip()
    routes = _routes_from_text(re.split(r"[;\n]", routes_text), "SHIPPER_ROUTES") if routes_text else None
    numbers = {
        field: _number(environ[variable], variable, kind, low, high)
        for field, (variable, _, kind, low, high) in _NUMBERS.items()
        if environ.get(variable, "").strip()
    }
    dead_letter = environ.get("SHIPPER_DEAD_LETTER", "")
    return _config(sinks, routes, "SHIPPER_ROUTES", _dead_letter(dead_letter, "SHIPPER_DEAD_LETTER"), numbers)


def load_config_from_file(path: str) -> Config:
    """The configuration in a TOML file (see the module docstring)."""
    import tomllib  # only `shipper run --config` reads TOML: kept off the handler's import path

    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    _no_unknown_keys(document, _TOML_KEYS, path)
    tables = document.get("sinks")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f'{path}: no sink configured: add a [[sinks]] table with spec = "..."')
    sinks = tuple(_sink_from_table(table, f"{path}: sinks[{i}]") for i, table in enumerate(tables))
    routes = None
    if "routes" in document:
        table = _table(document["routes"], f"{path}: routes")
        pairs = [(name, _type_list(types, f"{path}: routes.{name}")) for name, types in table.items()]
        routes = _routes(pairs, f"{path}: routes")
    delivery = _table(document.get("delivery", {}), f"{path}: delivery")
    _no_unknown_keys(delivery, _NUMBERS, f"{path}: delivery")
    numbers = {
        field: _number(value, f"{path}: delivery.{field}", *_NUMBERS[field][2:]) for field, value in delivery.items()
    }
    dead_letter = document.get("dead_letter", "")
    if not isinstance(dead_letter, str):
        raise ConfigError(f"{path}: dead_letter must be a string, got {dead_letter!r}")
    return _config(sinks, routes, f"{path}: routes", _dead_letter(dead_letter, f"{path}: dead_letter"), numbers)


def merge_cli(
    config: Config | None,
    *,
    sinks: Sequence[str] = (),
    routes: Sequence[str] = (),
    dead_letter: str | None = None,
    retry_max_attempts: str | int | None = None,
    retry_base_s: str | float | None = None,
    retry_cap_s: str | float | None = None,
    retry_after_max_s: str | float | None = None,
    batch_max_wait_s: str | float | None = None,
) -> Config:
    """`config` (from a file or the environment, or None) with the values given as flags on top.

    --sink replaces the sinks, and with them their routes unless --route is given too.
    """
    if sinks:
        current = tuple(_sink_from_text(text, f"--sink {text!r}") for text in sinks)
    elif config is None:
        raise ConfigError("no sink configured: pass --sink SPEC, e.g. --sink stdout")
    elif routes:
        current = tuple(replace(sink, types=None) for sink in config.sinks)
    else:
        current = config.sinks
    flags = {
        "retry_max_attempts": retry_max_attempts,
        "retry_base_s": retry_base_s,
        "retry_cap_s": retry_cap_s,
        "retry_after_max_s": retry_after_max_s,
        "batch_max_wait_s": batch_max_wait_s,
    }
    numbers = {} if config is None else {field: getattr(config, field) for field in _NUMBERS}
    numbers.update(
        (field, _number(value, _NUMBERS[field][1], *_NUMBERS[field][2:]))
        for field, value in flags.items()
        if value is not None
    )
    if dead_letter is not None:
        dead_letter = _dead_letter(dead_letter, "--dead-letter")
    elif config is not None:
        dead_letter = config.dead_letter
    return _config(current, _routes_from_text(routes, "--route") if routes else None, "--route", dead_letter, numbers)


def build_router(
    config: Config, *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
) -> Router:
    """Build every sink and the dead letter, each inside a Delivery, and the Router over them.

    A sink that cannot be built (a bad option, an unwritable file) raises ConfigError naming where
    it was configured; sinks already built are closed first.
    """
    settings = {"retry": config.retry, "max_wait_s": config.batch_max_wait_s, "sleep": sleep, "clock": clock}
    built: list[Sink] = []
    try:
        dead_letter = None
        if config.dead_letter is not None:
            sink = _build_sink(config.dead_letter, {}, f"dead letter {config.dead_letter!r}")
            built.append(sink)
            dead_letter = Delivery(sink, name="dead_letter", **settings)
        routes = []
        for sink_config in config.sinks:
            options = dict(sink_config.options)
            sink = _build_sink(sink_config.spec, options, f"{sink_config.where}: sink {sink_config.name!r}")
            built.append(sink)
            delivery = Delivery(sink, name=sink_config.name, dead_letter=dead_letter, **settings)
            routes.append(Route(delivery, sink_config.types))
    except BaseException:
        for sink in built:
            sink.close()
        raise
    return Router(routes, dead_letter)


def _build_sink(spec: str, options: dict[str, OptionValue], where: str) -> Sink:
    try:
        return build_sink(spec, options)
    except (ValueError, SinkError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _config(
    sinks: tuple[SinkConfig, ...],
    routes: dict[str, frozenset[str] | None] | None,
    routes_where: str,
    dead_letter: str | None,
    numbers: dict[str, Any],
) -> Config:
    first_named: dict[str, SinkConfig] = {}
    for sink in sinks:
        other = first_named.setdefault(sink.name, sink)
        if other is not sink:
            raise ConfigError(
                f"{other.where} and {sink.where}: two sinks are named {sink.name!r}; give one a name=NAME option"
            )
    if routes is not None:
        unknown = [name for name in routes if name not in first_named]
        if unknown:
            raise ConfigError(f"{routes_where}: no sink is named {unknown[0]!r}; sinks: {', '.join(first_named)}")
        for sink in sinks:
            if sink.name not in routes:
                raise ConfigError(f"{routes_where}: sink {sink.name!r} gets no events; route it, e.g. {sink.name}=*")
        sinks = tuple(replace(sink, types=routes[sink.name]) for sink in sinks)
    return Config(sinks, dead_letter, **numbers)


def _sink_from_text(text: str, where: str) -> SinkConfig:
    """A sink from `SPEC [KEY=VALUE ...]`; values are read as true/false, numbers, or text."""
    try:
        spec, *pairs = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot read {text!r}: {exc}") from None
    options: dict[str, OptionValue] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{where}: {pair!r} is not KEY=VALUE")
        if key in options:
            raise ConfigError(f"{where}: option {key!r} is given twice")
        options[key] = value if key == "name" else _scalar(value)
    return _sink(spec, options, where)


def _sink_from_table(table: Any, where: str) -> SinkConfig:
    table = dict(_table(table, where))
    spec = table.pop("spec", None)
    if not isinstance(spec, str):
        raise ConfigError(f'{where}: needs spec = "..." (a string), e.g. spec = "stdout"')
    options: dict[str, OptionValue] = {}
    for key, value in table.items():
        for option, item in value.items() if isinstance(value, dict) else [(None, value)]:
            if not isinstance(item, OptionValue):
                raise ConfigError(f"{where}: option {key!r} must be a string, number or boolean, got {item!r}")
            options[key if option is None else f"{key}.{option}"] = item
    return _sink(spec, options, where)


def _sink(spec: str, options: dict[str, OptionValue], where: str) -> SinkConfig:
    try:
        kind = sink_kind(spec)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    name = options.pop("name", kind)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: sink name {name!r} must be 1 to 64 letters, digits, '_', '.' or '-'")
    return SinkConfig(spec, name, tuple(sorted(options.items())), None, where)


def _routes_from_text(entries: Iterable[str], where: str) -> dict[str, frozenset[str] | None]:
    """Routes from `NAME=TYPE,TYPE` entries."""
    pairs = []
    for entry in filter(None, (entry.strip() for entry in entries)):
        name, sep, types = entry.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{where}: {entry!r} is not NAME=TYPE,TYPE (or NAME=*)")
        pairs.append((name.strip(), [item.strip() for item in types.split(",")]))
    return _routes(pairs, where)


def _routes(pairs: Iterable[tuple[str, list[str]]], where: str) -> dict[str, frozenset[str] | None]:
    """{sink name: its event types, None for all} from (name, types) pairs, `*` meaning all."""
    routes: dict[str, frozenset[str] | None] = {}
    for name, wanted in pairs:
        if name in routes:
            raise ConfigError(f"{where}: sink {name!r} is routed twice")
        unknown = [item for item in wanted if item not in EVENT_TYPES and item != "*"]
        if unknown:
            raise ConfigError(
                f"{where}: sink {name!r}: unknown event type {unknown[0]!r}; expected {', '.join(EVENT_TYPES)} or *"
            )
        routes[name] = None if "*" in wanted else frozenset(wanted)
    return routes


def _type_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    raise ConfigError(f'{where}: expected a list of event types or "*", got {value!r}')


def _dead_letter(value: str, where: str) -> str | None:
    """The dead-letter sink spec: a plain directory path becomes dir:PATH; empty means none."""
    value = value.strip()
    if not value:
        return None
    if ":" not in value:
        return f"dir:{value}"
    if value.partition(":")[0] not in _DEAD_LETTER_KINDS:
        raise ConfigError(
            f"{where}: {value!r} cannot hold dead letters: use dir:PATH, a directory path, jsonl:FILE or "
            "s3://BUCKET/PREFIX"
        )
    return value


def _number(raw: Any, where: str, kind: type, low: float, high: float) -> Any:
    what = "a whole number" if kind is int else "a number"
    if isinstance(raw, str):
        try:
            value = kind(raw.strip())
        except ValueError:
            raise ConfigError(f"{where}: {raw!r} is not {what}") from None
    elif isinstance(raw, int | float) and not isinstance(raw, bool) and kind(raw) == raw:
        value = kind(raw)
    else:
        raise ConfigError(f"{where}: {raw!r} is not {what}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: {raw!r} is out of range: expected {low:g} to {high:g}")
    return value


def _scalar(text: str) -> OptionValue:
    """An option value as written in a variable or flag: true/false, an integer, a decimal, or text."""
    if text in ("true", "false"):
        return text == "true"
    match = _NUMBER.fullmatch(text)
    if match is None:
        return text
    return float(text) if match.group(1) else int(text)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return value


def _no_unknown_keys(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    unknown = sorted(table.keys() - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
