"""Plain Python values <-> DynamoDB attribute values: the one place numbers cross between float and Decimal.

boto3 refuses float and hands numbers back as Decimal. Going in, every float becomes the Decimal of its shortest
repr (so 0.1 stays 0.1); coming out, a Decimal becomes int when whole, else float. Sets come back as lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_dynamodb(value: Any) -> Any:
    """JSON-able value -> DynamoDB-able value: floats become Decimal."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamodb(value: Any) -> Any:
    """DynamoDB value -> plain Python: Decimal becomes int or float, sets become lists."""
    if isinstance(value, Mapping):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [from_dynamodb(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def marshal(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item -> low-level attribute values (``{"S": ...}``, ``{"N": ...}``) for the DynamoDB client."""
    return {k: _serializer.serialize(v) for k, v in to_dynamodb(dict(item)).items()}


def unmarshal(item: Mapping[str, Any]) -> dict[str, Any]:
    """Low-level attribute values -> a plain item (numbers as int or float)."""
    return {k: from_dynamodb(_deserializer.deserialize(v)) for k, v in item.items()}
