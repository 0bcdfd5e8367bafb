"""`shipper subscribe`: subscribe existing log groups to the shipper's Kinesis stream.

    shipper subscribe --destination-arn STREAM_ARN --role-arn ROLE_ARN --shipper-log-group NAME
                      (--prefix PREFIX | --log-group NAME)... [--filter-name NAME] [--filter-pattern TEXT]
                      [--distribution ByLogStream|Random] [--retention-days DAYS] [--dry-run]
                      [--region REGION] [--endpoint-url URL]

Every log group named, or whose name starts with a prefix, gets one subscription filter named
--filter-name that sends to the stream. Running it again changes nothing: a group whose filter already
matches is left alone, one whose filter differs is updated, and one already sending to the stream
through another filter is not given a second. The shipper's own log group is never subscribed, so the
shipper never ships its own output. A log group takes at most two subscription filters: a group that
already has two others is reported and left alone. With --retention-days, each group's retention is set
too. One line per group says what was done; the exit status is 1 when a group could not be subscribed
or no group matched.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shipper.errors import INSTALL_AWS, ConfigError

__all__ = [
    "RETENTION_DAYS",
    "Action",
    "GroupResult",
    "Subscription",
    "add_command",
    "find_log_groups",
    "subscribe_log_groups",
]

# The retention periods CloudWatch Logs accepts, in days.
# fmt: off
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on
MAX_FILTERS_PER_GROUP = 2


class Action(StrEnum):
    """What was done to a log group."""

    SUBSCRIBED = "subscribed"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    """The shipper's own log group."""
    FULL = "full"
    """It already has two other subscription filters."""
    FAILED = "failed"


@dataclass(frozen=True)
class Subscription:
    """The subscription filter every log group gets."""

    destination_arn: str
    role_arn: str
    filter_name: str = "shipper"
    filter_pattern: str = ""
    distribution: str = "ByLogStream"

    def matches(self, existing: dict[str, Any]) -> bool:
        """Whether a filter from DescribeSubscriptionFilters is this one already."""
        return (
            existing.get("destinationArn") == self.destination_arn
            and existing.get("roleArn") == self.role_arn
            and existing.get("filterPattern", "") == self.filter_pattern
            and existing.get("distribution", "ByLogStream") == self.distribution
        )


@dataclass(frozen=True)
class GroupResult:
    """What was done to one log group: `detail` says why, `retention` what changed."""

    log_group: str
    action: Action
    detail: str = ""
    retention: str = ""

    @property
    def ok(self) -> bool:
        return self.action not in (Action.FULL, Action.FAILED)


def find_log_groups(client: Any, prefixes: Iterable[str], names: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """{log group name: its DescribeLogGroups entry, None when a named group does not exist}, sorted by name."""
    found: dict[str, dict[str, Any] | None] = {}
    paginator = client.get_paginator("describe_log_groups")
    for prefix in prefixes:
        for page in paginator.paginate(logGroupNamePrefix=prefix):
            found.update((group["logGroupName"], group) for group in page["logGroups"])
    for name in names:
        if name not in found:
            pages = paginator.paginate(logGroupNamePrefix=name)
            found[name] = next((g for page in pages for g in page["logGroups"] if g["logGroupName"] == name), None)
    return dict(sorted(found.items()))


def subscribe_log_groups(
    client: Any,
    groups: dict[str, dict[str, Any] | None],
    subscription: Subscription,
    *,
    shipper_log_group: str,
    retention_days: int | None = None,
    dry_run: bool = False,
) -> list[GroupResult]:
    """Subscribe each group (see the module docstring); with `dry_run`, only say what would be done."""
    from botocore.exceptions import BotoCoreError, ClientError

    results = []
    for name, group in groups.items():
        if name == shipper_log_group:
            results.append(GroupResult(name, Action.SKIPPED, "the shipper's own log group"))
        elif group is None:
            results.append(GroupResult(name, Action.FAILED, "no such log group"))
        else:
            try:
                results.append(_subscribe(client, group, subscription, retention_days, dry_run))
            except (BotoCoreError, ClientError) as exc:
                results.append(GroupResult(name, Action.FAILED, str(exc)))
    return results


def _subscribe(
    client: Any, group: dict[str, Any], subscription: Subscription, retention_days: int | None, dry_run: bool
) -> GroupResult:
    name = group["logGroupName"]
    filters = client.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]
    ours = next((f for f in filters if f["filterName"] == subscription.filter_name), None)
    others = [f for f in filters if f is not ours]
    same_destination = [f["filterName"] for f in others if f.get("destinationArn") == subscription.destination_arn]
    if ours is not None and subscription.matches(ours):
        action, detail = Action.UNCHANGED, f"filter {subscription.filter_name!r} is up to date"
    elif ours is None and same_destination:
        action, detail = Action.UNCHANGED, f"already sends to the stream through filter {same_destination[0]!r}"
    elif ours is None and len(others) >= MAX_FILTERS_PER_GROUP:
        names = ", ".join(repr(f["filterName"]) for f in others)
        action, detail = Action.FULL, f"already has {len(others)} subscription filters ({names}); remove one first"
    else:
        action = Action.SUBSCRIBED if ours is None else Action.UPDATED
        detail = f"filter {subscription.filter_name!r} -> {subscription.destination_arn}"
        if not dry_run:
            client.put_subscription_filter(
                logGroupName=name,
                filterName=subscription.filter_name,
                filterPattern=subscription.filter_pattern,
                destinationArn=subscription.destination_arn,
                roleArn=subscription.role_arn,
                distribution=subscription.distribution,
            )
    retention = ""
    current = group.get("retentionInDays")
    if retention_days is not None and current != retention_days:
        retention = f"retention {current or 'never expire'} -> {retention_days} days"
        if not dry_run:
            client.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
    return GroupResult(name, action, detail, retention)


# --- the command -------------------------------------------------------------------------------------


def add_command(commands: argparse._SubParsersAction) -> None:
    """Register `shipper subscribe`."""
    parser = commands.add_parser(
        "subscribe",
        help="subscribe existing log groups to the shipper's Kinesis stream",
        description="Attach a subscription filter to log groups, by prefix or by name. Safe to run again.",
    )
    parser.set_defaults(func=_run, parser=parser)
    parser.add_argument("--destination-arn", required=True, metavar="ARN", help="the Kinesis stream's ARN")
    parser.add_argument(
        "--role-arn", required=True, metavar="ARN", help="the role CloudWatch Logs assumes to put records"
    )
    parser.add_argument(
        "--shipper-log-group",
        required=True,
        metavar="NAME",
        help="the shipper function's own log group, which is never subscribed",
    )
    parser.add_argument("--prefix", action="append", default=[], help="subscribe every log group whose name starts so")
    parser.add_argument("--log-group", action="append", default=[], metavar="NAME", help="subscribe this log group")
    parser.add_argument("--filter-name", default="shipper", metavar="NAME", help="default: shipper")
    parser.add_argument("--filter-pattern", default="", metavar="TEXT", help="default: every event")
    parser.add_argument("--distribution", choices=("ByLogStream", "Random"), default="ByLogStream")
    parser.add_argument(
        "--retention-days", type=int, choices=RETENTION_DAYS, metavar="DAYS", help="also set each group's retention"
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or the profile's)")
    parser.add_argument("--endpoint-url", metavar="URL", help="another CloudWatch Logs endpoint")


def _run(args: argparse.Namespace) -> int:
    if not args.prefix and not args.log_group:
        raise ConfigError("name the log groups to subscribe: --prefix PREFIX or --log-group NAME")
    client = _logs_client(args.region, args.endpoint_url)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        groups = find_log_groups(client, args.prefix, args.log_group)
    except (BotoCoreError, ClientError) as exc:
        print(f"shipper: cannot list log groups: {exc}", file=sys.stderr)
        return 1
    subscription = Subscription(
        args.destination_arn, args.role_arn, args.filter_name, args.filter_pattern, args.distribution
    )
    results = subscribe_log_groups(
        client,
        groups,
        subscription,
        shipper_log_group=args.shipper_log_group,
        retention_days=args.retention_days,
        dry_run=args.dry_run,
    )
    _print_results(results, args.dry_run)
    return 0 if results and all(result.ok for result in results) else 1


def _logs_client(region: str | None, endpoint_url: str | None) -> Any:
    try:
        from shipper.aws_clients import COMMAND_ATTEMPTS, client
    except ImportError as exc:
        raise ConfigError(f"shipper subscribe needs boto3: {INSTALL_AWS} ({exc})") from None
    where = "--region or AWS_REGION"
    return client("logs", region=region, endpoint_url=endpoint_url, attempts=COMMAND_ATTEMPTS, region_from=where)


def _print_results(results: Sequence[GroupResult], dry_run: bool) -> None:
    prefix = "[dry run] " if dry_run else ""
    for result in results:
        parts = [part for part in (result.detail, result.retention) if part]
        print(f"{prefix}{result.action:<10} {result.log_group}: {'; '.join(parts)}")
    if not results:
        print("shipper: no log group matched", file=sys.stderr)
        return
    actions = Counter(result.action for result in results)
    counts = ", ".join(f"{actions[action]} {action}" for action in Action if actions[action])
    note = " (dry run: nothing changed)" if dry_run else ""
    print(f"shipper: {len(results)} log groups: {counts}{note}", file=sys.stderr)
