"""The DynamoDB tables, built from :data:`orderflow.tables.TABLES` (the same definition the local stack uses)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from orderflow.tables import TABLES
from orderflow.tables import Table as TableDef

#: What each access level may do. Writes go to the table only; reads also to its indexes (named one by one).
#: ``ConditionCheckItem`` is a read: a transaction may check an item it does not write.
READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)
WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)


def _attr(name: str | None) -> dynamodb.Attribute | None:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING) if name else None


class Data(Construct):
    """One table per :class:`orderflow.tables.Table`, keyed by its ``key`` (``orders``, ``inventory``, ...)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.definitions: dict[str, TableDef] = {t.key: t for t in TABLES}
        self.tables: dict[str, dynamodb.Table] = {}
        for definition in TABLES:
            table = dynamodb.Table(
                self,
                definition.construct_id,
                partition_key=_attr(definition.partition_key),
                sort_key=_attr(definition.sort_key),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                # Orders and the stock ledger are the record of the business; stock levels and
                # settings are the seller's data too, so nothing here goes away with the stack.
                removal_policy=RemovalPolicy.RETAIN,
                # ... and no stack update, replacement or console click deletes one while this is on.
                deletion_protection=True,
                time_to_live_attribute=definition.ttl_attribute,
            )
            for index in definition.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=_attr(index.partition_key),
                    sort_key=_attr(index.sort_key),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            self.tables[definition.key] = table

    def table_name(self, key: str) -> str:
        return self.tables[key].table_name

    def env_var(self, key: str) -> str:
        return self.definitions[key].env_var

    def grant(self, role: iam.IRole, key: str, *, write: bool, scan: bool = False) -> None:
        """Read (table and each named index) and, with ``write``, item writes on the table: nothing else.

        Hand-written instead of ``Table.grant_read_write_data`` so the policy names each index instead
        of ``<table arn>/index/*`` and leaves out ``Scan`` unless asked (only the stock-sync sweep scans).
        """
        table = self.tables[key]
        index_arns = [f"{table.table_arn}/index/{i.name}" for i in self.definitions[key].indexes]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(READ_ACTIONS),
                resources=[table.table_arn, *index_arns],
            )
        )
        if write:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=list(WRITE_ACTIONS), resources=[table.table_arn])
            )
        if scan:
            role.add_to_principal_policy(iam.PolicyStatement(actions=["dynamodb:Scan"], resources=[table.table_arn]))
