"""The DynamoDB table `Orders`: build, read, delete."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from labkit.aws import error_code, found_or_none, paginate, tag_list
from labkit.config import PARTITION_KEY, Config
from labkit.errors import ResourceError
from labkit.session import Clients

log = logging.getLogger(__name__)

ORDER_ATTRIBUTES = ("orderId", "userId", "itemName", "quantity", "status", "timestamp")


@dataclass(frozen=True)
class TableInfo:
    """What a notebook needs to know about the table."""

    name: str
    arn: str
    status: str


def ensure_table(config: Config, clients: Clients) -> TableInfo:
    """Create the orders table (on-demand, key `orderId` String) unless it exists.

    Args:
        config: names and tags.
        clients: boto3 clients for the backend.
    Returns:
        The table's name, ARN and status (ACTIVE once this returns).
    Raises:
        ResourceError: a table of that name exists with another key schema.
    """
    ddb = clients("dynamodb")
    name = config.table_name
    table = found_or_none(
        lambda: ddb.describe_table(TableName=name)["Table"], ("ResourceNotFoundException",), f"table {name}"
    )
    if table is None:
        log.info("creating table %s", name)
        table = ddb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=tag_list(config.tags),
        )["TableDescription"]
    else:
        _check_key_schema(table)
    if table["TableStatus"] != "ACTIVE":
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return TableInfo(name=name, arn=table["TableArn"], status="ACTIVE")


def _check_key_schema(table: dict[str, Any]) -> None:
    keys = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    if keys != [(PARTITION_KEY, "HASH")] or types.get(PARTITION_KEY) != "S":
        raise ResourceError(
            f"Table {table['TableName']} exists but its key is {keys} with types {types}; the lab needs the "
            f"partition key {PARTITION_KEY} (String) alone. Delete the table (or run `labkit down`) and build it again."
        )


def delete_table(config: Config, clients: Clients) -> bool:
    """Delete the table; True if it existed. A missing table counts as deleted."""
    ddb = clients("dynamodb")
    try:
        ddb.delete_table(TableName=config.table_name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    ddb.get_waiter("table_not_exists").wait(TableName=config.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return True


def get_orders(config: Config, clients: Clients) -> list[dict[str, Any]]:
    """Every item of the table as plain Python values, sorted by orderId."""
    deserializer = TypeDeserializer()
    items = [
        {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}
        for item in paginate(clients("dynamodb"), "scan", "Items", TableName=config.table_name)
    ]
    return sorted(items, key=lambda item: str(item.get(PARTITION_KEY, "")))


def get_order(config: Config, clients: Clients, order_id: str) -> dict[str, Any] | None:
    """One stored order by id, or None."""
    item = (
        clients("dynamodb")
        .get_item(TableName=config.table_name, Key={PARTITION_KEY: {"S": order_id}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        return None
    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def count_orders(config: Config, clients: Clients) -> int | None:
    """How many items the table holds (a counting scan, exact), or None if there is no table."""
    pages = clients("dynamodb").get_paginator("scan").paginate(TableName=config.table_name, Select="COUNT")
    try:
        return sum(page["Count"] for page in pages)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
