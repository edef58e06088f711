"""A deployed stack's outputs (CloudFormation DescribeStacks): how operator commands find the stack's resources."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class StackNotFound(LookupError):
    """No stack of that name in the region the credentials point at."""


def stack_outputs(stack_name: str, *, client: Any = None) -> dict[str, str]:
    """OutputKey -> OutputValue of ``stack_name``; raises :class:`StackNotFound`."""
    if client is None:
        import boto3

        client = boto3.client("cloudformation")
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationError":
            region = client.meta.region_name
            raise StackNotFound(f"no CloudFormation stack {stack_name!r} in {region}") from exc
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
