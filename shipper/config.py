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

Flags (`add_delivery_arguments`, the same for `run` and `consume`): --config FILE, --sink (repeated;
replaces the sinks and their routes), --route NAME=TYPES (repeated), --dead-letter,
--retry-max-attempts, --retry-base-s, --retry-cap-s, --retry-after-max-s, --batch-max-wait-s.

`resolve_config` is the one way every command gets its Config: each setting from the first of a
flag, the --config file, the environment, its default (docs/configuration.md says why).
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from shipper.contract import EVENT_TYPES
from shipper.delivery import DEFAULT_MAX_WAIT_S, Delivery, RetryPolicy, Route, Router
from shipper.errors import ConfigError
from shipper.sinks import Sink, SinkError, build_sink, sink_kind

__all__ = [
    "Config",
    "ConfigError",
    "DeliveryFlags",
    "SinkConfig",
    "add_delivery_arguments",
    "build_router",
    "config_from_args",
    "load_config_from_env",
    "load_config_from_file",
    "merge_cli",
    "resolve_config",
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
    return _resolve([_env_layer(environ)], missing=_NO_SINK_IN_ENV)


def load_config_from_file(path: str) -> Config:
    """The configuration in a TOML file (see the module docstring)."""
    return _resolve([_file_layer(path)], missing="")


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
    flags = DeliveryFlags(
        tuple(sinks),
        tuple(routes),
        dead_letter,
        retry_max_attempts,
        retry_base_s,
        retry_cap_s,
        retry_after_max_s,
        batch_max_wait_s,
    )
    layers = [_flag_layer(flags)] if config is None else [_config_layer(config), _flag_layer(flags)]
    return _resolve(layers, missing=_NO_SINK_FLAG)


@dataclass(frozen=True)
class DeliveryFlags:
    """The delivery flags of `shipper run` and `shipper consume`, as given (unchecked text)."""

    sinks: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    dead_letter: str | None = None
    retry_max_attempts: str | int | None = None
    retry_base_s: str | float | None = None
    retry_cap_s: str | float | None = None
    retry_after_max_s: str | float | None = None
    batch_max_wait_s: str | float | None = None


def resolve_config(
    config_file: str | None,
    environ: Mapping[str, str],
    flags: DeliveryFlags | None = None,
    default_sink: Callable[[], str] | None = None,
) -> Config:
    """The one configuration of a command, the same way for the Lambda, `run` and `consume`.

    Each setting comes from the first of: a flag, the `config_file` (--config), the SHIPPER_* variables
    of `environ`, and else its default. Sinks come whole from one place, with their routes (a --route
    flag alone reroutes the sinks of the place below); with no sink anywhere, `default_sink()` names
    one, and without `default_sink` that is an error.
    """
    layers = [_env_layer(environ)]
    if config_file:
        layers.append(_file_layer(config_file))
    if flags is not None:
        layers.append(_flag_layer(flags))
    return _resolve(layers, missing=_NO_SINK_IN_ENV if flags is None else _NO_SINK_FLAG, default_sink=default_sink)


def add_delivery_arguments(parser: Any, sink_help: str = "where events go (repeatable); default stdout") -> None:
    """Add the delivery flags (`DeliveryFlags`, and --config) to an argparse parser."""
    parser.add_argument("--config", metavar="FILE", help="TOML file with sinks, routes, dead letter and delivery")
    parser.add_argument("--sink", action="append", default=[], metavar="SPEC", help=sink_help)
    parser.add_argument("--route", action="append", default=[], metavar="NAME=TYPES", help="event types a sink gets")
    parser.add_argument("--dead-letter", metavar="SPEC", help="where rejects and refused events go: dir:PATH, s3://...")
    for field, (variable, flag, _, low, high) in _NUMBERS.items():
        parser.add_argument(
            flag,
            metavar="N" if field == "retry_max_attempts" else "SECONDS",
            help=f"{low:g} to {high:g} (as {variable})",
        )


def config_from_args(args: Any, environ: Mapping[str, str], default_sink: Callable[[], str] | None = None) -> Config:
    """`resolve_config` for a command whose parser has `add_delivery_arguments`."""
    flags = DeliveryFlags(
        tuple(args.sink), tuple(args.route), args.dead_letter, *(getattr(args, field) for field in _NUMBERS)
    )
    return resolve_config(args.config, environ, flags, default_sink)


_NO_SINK_IN_ENV = "SHIPPER_SINKS is not set: name at least one sink, e.g. SHIPPER_SINKS='s3://BUCKET/PREFIX'"
_NO_SINK_FLAG = "no sink configured: pass --sink SPEC, e.g. --sink stdout"


@dataclass(frozen=True)
class _Layer:
    """What one place (environment, file, flags) sets; unset parts leave the place below showing."""

    sinks: tuple[SinkConfig, ...]
    routes: dict[str, frozenset[str] | None] | None
    routes_where: str
    dead_letter: str | None
    numbers: Mapping[str, Any]


def _resolve(layers: Sequence[_Layer], missing: str, default_sink: Callable[[], str] | None = None) -> Config:
    """Lay `layers` one over the next (later wins) into a checked Config; `missing` says what lacks a sink."""
    sinks: tuple[SinkConfig, ...] = ()
    routes: dict[str, frozenset[str] | None] | None = None
    routes_where = ""
    dead_letter: str | None = None
    numbers: dict[str, Any] = {}
    for layer in layers:
        if layer.sinks:
            sinks, routes, routes_where = layer.sinks, layer.routes, layer.routes_where
        elif layer.routes is not None:
            sinks = tuple(replace(sink, types=None) for sink in sinks)
            routes, routes_where = layer.routes, layer.routes_where
        if layer.dead_letter is not None:
            dead_letter = layer.dead_letter
        numbers.update(layer.numbers)
    if not sinks:
        if default_sink is None:
            raise ConfigError(missing)
        spec = default_sink()
        sinks = (_sink_from_text(spec, f"default sink {spec!r}"),)
    return _config(sinks, routes, routes_where, dead_letter, numbers)


def _env_layer(environ: Mapping[str, str]) -> _Layer:
    entries = [entry.strip() for entry in re.split(r"[;\n]", environ.get("SHIPPER_SINKS", "")) if entry.strip()]
    sinks = tuple(_sink_from_text(entry, f"SHIPPER_SINKS entry {i}") for i, entry in enumerate(entries, 1))
    routes_text = environ.get("SHIPPER_ROUTES", "").strip()
    routes = _routes_from_text(re.split(r"[;\n]", routes_text), "SHIPPER_ROUTES") if routes_text else None
    numbers = {
        field: _number(environ[variable], variable, kind, low, high)
        for field, (variable, _, kind, low, high) in _NUMBERS.items()
        if environ.get(variable, "").strip()
    }
    dead_letter = _dead_letter(environ.get("SHIPPER_DEAD_LETTER", ""), "SHIPPER_DEAD_LETTER")
    return _Layer(sinks, routes, "SHIPPER_ROUTES", dead_letter, numbers)


def _file_layer(path: str) -> _Layer:
    import tomllib  # only --config reads TOML: kept off the handler's import path

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
    layer = _Layer(sinks, routes, f"{path}: routes", _dead_letter(dead_letter, f"{path}: dead_letter"), numbers)
    _resolve([layer], missing="")  # the file's routes name its own sinks: checked even when flags replace them
    return layer


def _flag_layer(flags: DeliveryFlags) -> _Layer:
    sinks = tuple(_sink_from_text(text, f"--sink {text!r}") for text in flags.sinks)
    routes = _routes_from_text(flags.routes, "--route") if flags.routes else None
    numbers = {
        field: _number(value, _NUMBERS[field][1], *_NUMBERS[field][2:])
        for field in _NUMBERS
        if (value := getattr(flags, field)) is not None
    }
    dead_letter = None if flags.dead_letter is None else _dead_letter(flags.dead_letter, "--dead-letter")
    return _Layer(sinks, routes, "--route", dead_letter, numbers)


def _config_layer(config: Config) -> _Layer:
    """A checked Config as the layer below flags (its sinks carry their routes)."""
    return _Layer(config.sinks, None, "", config.dead_letter, {field: getattr(config, field) for field in _NUMBERS})


class _DeliverySettings(TypedDict):
    """What every Delivery `build_router` makes shares: the retry policy, batch wait, sleep and clock."""

    retry: RetryPolicy
    max_wait_s: float
    sleep: Callable[[float], object]
    clock: Callable[[], float]


def build_router(
    config: Config, *, sleep: Callable[[float], object] = time.sleep, clock: Callable[[], float] = time.monotonic
) -> Router:
    """Build every sink and the dead letter, each inside a Delivery, and the Router over them.

    A sink that cannot be built (a bad option, an unwritable file) raises ConfigError naming where
    it was configured; sinks already built are closed first.
    """
    settings: _DeliverySettings = {
        "retry": config.retry,
        "max_wait_s": config.batch_max_wait_s,
        "sleep": sleep,
        "clock": clock,
    }
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
    """A sink from `SPEC [KEY=VALUE ...]`; each value is text, which its option reads as its type declares
    (a text option takes `12345` or `true` as written; a number option parses it)."""
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
        options[key] = value
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


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return value


def _no_unknown_keys(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    unknown = sorted(table.keys() - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
