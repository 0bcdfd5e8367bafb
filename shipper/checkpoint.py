"""Where `shipper consume` remembers how far it got in each shard.

A checkpoint is, per shard, the sequence number of the last record whose events were all delivered
or dead-lettered, or SHARD_END once a closed shard has been read to its end (its children may then
be read). Two stores:

- FileCheckpoints (default): one JSON file per stream in a directory, rewritten whole at each
  checkpoint: written to a temporary file, fsync'd, renamed over the old one, and the directory
  fsync'd, so after a crash the file holds either the previous checkpoint or the new one.
- DynamoDBCheckpoints: one item per (stream, shard) in a table, for hosts without durable disk. The
  table is created (on-demand capacity) when it does not exist.

Both are for one process: nothing here arbitrates between two consumers of one stream.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Protocol

import orjson

from shipper.errors import ConfigError
from shipper.files import write_durably

SHARD_END = "SHARD_END"


class Checkpoints(Protocol):
    def load(self) -> dict[str, str]:
        """{shard id: last sequence number done, or SHARD_END} for the stream."""
        ...

    def save(self, shard: str, position: str) -> None:
        """Record that `shard` is done up to `position` (a sequence number or SHARD_END), durably."""
        ...

    def describe(self) -> str:
        """Where the checkpoints are, for messages."""
        ...


class FileCheckpoints:
    """Checkpoints of one stream in DIRECTORY/<stream>.json, replaced atomically at each save."""

    def __init__(self, directory: str | os.PathLike[str], stream: str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{stream}.json"
        self.stream = stream
        self._positions: dict[str, str] | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--checkpoint-dir: cannot create {self.directory}: {exc.strerror}") from exc

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> dict[str, str]:
        try:
            document = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            document = {"stream": self.stream, "shards": {}}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"checkpoint file {self.path} cannot be read ({exc}); fix or remove it") from exc
        shards = document.get("shards") if isinstance(document, dict) else None
        if not isinstance(shards, dict) or not all(isinstance(v, str) for v in shards.values()):
            raise ConfigError(f"checkpoint file {self.path} is not a shipper checkpoint file; fix or remove it")
        self._positions = dict(shards)  # what `save` rewrites: a failed write later needs no re-read
        return dict(shards)

    def save(self, shard: str, position: str) -> None:
        if self._positions is None:
            self._positions = self.load()
        self._positions[shard] = position
        data = orjson.dumps(
            {"stream": self.stream, "shards": self._positions, "updated": time.time()},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )
        write_durably(self.path, data)


class DynamoDBCheckpoints:
    """Checkpoints in a DynamoDB table keyed by `stream` (hash) and `shard` (range), attribute `position`."""

    def __init__(self, client: Any, table: str, stream: str) -> None:
        self._client = client
        self.table = table
        self.stream = stream
        self._ensure_table()

    def describe(self) -> str:
        return f"DynamoDB table {self.table}"

    def _ensure_table(self) -> None:
        errors = self._client.exceptions
        try:
            description = self._client.describe_table(TableName=self.table)["Table"]
        except errors.ResourceNotFoundException:
            self._client.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": "stream", "KeyType": "HASH"},
                    {"AttributeName": "shard", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "stream", "AttributeType": "S"},
                    {"AttributeName": "shard", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            self._client.get_waiter("table_exists").wait(
                TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            return
        keys = {key["AttributeName"]: key["KeyType"] for key in description["KeySchema"]}
        if keys != {"stream": "HASH", "shard": "RANGE"}:
            raise ConfigError(
                f"--checkpoint-table: table {self.table} has keys {keys}; it needs stream (hash) and shard (range)"
            )

    def load(self) -> dict[str, str]:
        positions: dict[str, str] = {}
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="#stream = :stream",
            ExpressionAttributeNames={"#stream": "stream"},
            ExpressionAttributeValues={":stream": {"S": self.stream}},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page["Items"]:
                positions[item["shard"]["S"]] = item["position"]["S"]
        return positions

    def save(self, shard: str, position: str) -> None:
        self._client.put_item(
            TableName=self.table,
            Item={
                "stream": {"S": self.stream},
                "shard": {"S": shard},
                "position": {"S": position},
                "updated": {"N": str(int(time.time()))},
            },
        )
