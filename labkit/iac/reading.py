"""The pipeline's resources read back through the describe APIs, each as a template resource.

`Reader` reads each resource once and remembers, for every value of the pipeline it met (a table's
name and ARN, a queue's URL and ARN, a topic's ARN, the role's and the function's ARNs, the function's
log group), the `!Ref` or `!GetAtt` the template says instead; `substitute` puts them in place.
"""

from __future__ import annotations

import io
import json
import logging
import urllib.request
import zipfile
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.config import Config
from labkit.iac.names import HAS_PREFIX, PREFIX_PARAMETER
from labkit.session import Clients

log = logging.getLogger(__name__)
# SQS's defaults (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html).
_QUEUE_DEFAULTS = {
    "VisibilityTimeout": {"30"},
    "MessageRetentionPeriod": {"345600"},
    "DelaySeconds": {"0"},
    "MaximumMessageSize": {"262144", "1048576"},
    "ReceiveMessageWaitTimeSeconds": {"0"},
}
_QUEUE_NUMBERS = tuple(_QUEUE_DEFAULTS)


def named(base: str) -> dict[str, Any]:
    """`<Prefix>-base`, or *base* when the Prefix parameter is empty."""
    return {"Fn::If": [HAS_PREFIX, {"Fn::Sub": f"${{{PREFIX_PARAMETER}}}-{base}"}, base]}


class Reader:
    """Reads each resource once and remembers what other resources may refer to."""

    def __init__(self, config: Config, clients: Clients) -> None:
        self.config = config
        self.clients = clients
        self.account = clients.account_id
        self.region = config.region
        self.missing: list[str] = []
        self.code: dict[str, bytes] = {}
        # Value found in the account -> what the template says instead.
        self.references: dict[str, Any] = {}
        self._queues: dict[str, tuple[str, str, dict[str, str]] | None] = {}
        self._function: dict[str, Any] | None = None

    def _refer(self, value: str | None, replacement: Any) -> None:
        if value:
            self.references[value] = replacement

    def table(self) -> dict[str, Any] | None:
        try:
            table = self.clients("dynamodb").describe_table(TableName=self.config.table_name)["Table"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        self._refer(table["TableName"], {"Ref": "OrdersTable"})
        self._refer(table["TableArn"], {"Fn::GetAtt": ["OrdersTable", "Arn"]})
        mode = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        props: dict[str, Any] = {
            "TableName": named("Orders"),
            "BillingMode": mode,
            "AttributeDefinitions": table["AttributeDefinitions"],
            "KeySchema": table["KeySchema"],
        }
        if mode == "PROVISIONED":
            throughput = table.get("ProvisionedThroughput", {})
            props["ProvisionedThroughput"] = {
                "ReadCapacityUnits": throughput.get("ReadCapacityUnits", 1),
                "WriteCapacityUnits": throughput.get("WriteCapacityUnits", 1),
            }
        return {"Type": "AWS::DynamoDB::Table", "Properties": props}

    def topic(self) -> dict[str, Any] | None:
        arn = f"arn:aws:sns:{self.region}:{self.account}:{self.config.topic_name}"
        try:
            attributes = self.clients("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
        except ClientError as exc:
            if error_code(exc) in ("NotFound", "NotFoundException"):
                return None
            raise
        self._refer(arn, {"Ref": "OrderTopic"})
        props: dict[str, Any] = {"TopicName": named("OrderTopic")}
        if attributes.get("DisplayName"):
            props["DisplayName"] = attributes["DisplayName"]
        if attributes.get("FifoTopic") == "true":
            props["FifoTopic"] = True
        return {"Type": "AWS::SNS::Topic", "Properties": props}

    def _queue(self, name: str) -> tuple[str, str, dict[str, str]] | None:
        if name not in self._queues:
            sqs = self.clients("sqs")
            try:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as exc:
                if "NonExistentQueue" not in error_code(exc) and error_code(exc) != "QueueDoesNotExist":
                    raise
                self._queues[name] = None
            else:
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                self._queues[name] = (url, attributes["QueueArn"], attributes)
        return self._queues[name]

    def _queue_resource(self, logical: str, base: str, name: str) -> dict[str, Any] | None:
        found = self._queue(name)
        if found is None:
            return None
        url, arn, attributes = found
        self._refer(url, {"Ref": logical})
        self._refer(arn, {"Fn::GetAtt": [logical, "Arn"]})
        props: dict[str, Any] = {"QueueName": named(base)}
        for key in _QUEUE_NUMBERS:
            if key in attributes and attributes[key] not in _QUEUE_DEFAULTS[key]:
                props[key] = int(attributes[key])
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if attributes.get(key):
                props[key] = json.loads(attributes[key])
        if attributes.get("FifoQueue") == "true":
            props["FifoQueue"] = True
        if attributes.get("KmsMasterKeyId"):
            props["KmsMasterKeyId"] = attributes["KmsMasterKeyId"]
        return {"Type": "AWS::SQS::Queue", "Properties": props}

    def dlq(self) -> dict[str, Any] | None:
        return self._queue_resource("OrderDLQ", "OrderDLQ", self.config.dlq_name)

    def queue(self) -> dict[str, Any] | None:
        resource = self._queue_resource("OrderQueue", "OrderQueue", self.config.queue_name)
        redrive = (resource or {}).get("Properties", {}).get("RedrivePolicy")
        if redrive and "maxReceiveCount" in redrive:
            redrive["maxReceiveCount"] = int(redrive["maxReceiveCount"])
        return resource

    def queue_policy(self) -> dict[str, Any] | None:
        found = self._queue(self.config.queue_name)
        if found is None or not found[2].get("Policy"):
            return None
        document = json.loads(found[2]["Policy"])
        return {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {"Queues": [{"Ref": "OrderQueue"}], "PolicyDocument": document},
        }

    def subscription(self) -> dict[str, Any] | None:
        queue = self._queue(self.config.queue_name)
        topic = f"arn:aws:sns:{self.region}:{self.account}:{self.config.topic_name}"
        if queue is None:
            return None
        sns = self.clients("sns")
        try:
            subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        except ClientError as exc:
            if error_code(exc) in ("NotFound", "NotFoundException"):
                return None
            raise
        for subscription in subscriptions:
            if subscription["Protocol"] == "sqs" and subscription["Endpoint"] == queue[1]:
                arn = subscription["SubscriptionArn"]
                attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
                props: dict[str, Any] = {"TopicArn": topic, "Protocol": "sqs", "Endpoint": queue[1]}
                if attributes.get("RawMessageDelivery") == "true":
                    props["RawMessageDelivery"] = True
                if attributes.get("FilterPolicy"):
                    props["FilterPolicy"] = json.loads(attributes["FilterPolicy"])
                return {"Type": "AWS::SNS::Subscription", "Properties": props}
        return None

    def _function_configuration(self) -> dict[str, Any] | None:
        if self._function is not None:
            return self._function
        lam = self.clients("lambda")
        names = list(self.config.function_names)
        queue = self._queue(self.config.queue_name)
        if queue is not None:
            # The function the order queue triggers is the pipeline's, whatever its name.
            triggered = lam.list_event_source_mappings(EventSourceArn=queue[1]).get("EventSourceMappings", [])
            names = [m["FunctionArn"].split(":")[6] for m in triggered] + names
        for name in names:
            try:
                self._function = lam.get_function(FunctionName=name)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                continue
            return self._function
        return None

    def role(self) -> dict[str, Any] | None:
        function = self._function_configuration()
        if function is None:
            return None
        role_arn = function["Configuration"]["Role"]
        iam = self.clients("iam")
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        self._refer(role_arn, {"Fn::GetAtt": ["OrderProcessorRole", "Arn"]})
        props: dict[str, Any] = {"AssumeRolePolicyDocument": _document(role["AssumeRolePolicyDocument"])}
        if role.get("Path", "/") != "/":
            props["Path"] = role["Path"]
        inline = [
            {
                "PolicyName": policy,
                "PolicyDocument": _document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]),
            }
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        ]
        if inline:
            props["Policies"] = inline
        managed = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
        if managed:
            props["ManagedPolicyArns"] = managed
        return {"Type": "AWS::IAM::Role", "Properties": props}

    def function(self, code_folder: str) -> dict[str, Any] | None:
        function = self._function_configuration()
        if function is None:
            return None
        configuration = function["Configuration"]
        self._refer(configuration["FunctionName"], {"Ref": "OrderProcessor"})
        self._refer(configuration["FunctionArn"], {"Fn::GetAtt": ["OrderProcessor", "Arn"]})
        log_group = f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/lambda/{configuration['FunctionName']}"
        pattern = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${Name}"
        self._refer(log_group, {"Fn::Sub": [pattern, {"Name": named("OrderProcessor")}]})
        self._refer(f"{log_group}:*", {"Fn::Sub": [f"{pattern}:*", {"Name": named("OrderProcessor")}]})
        props: dict[str, Any] = {
            "FunctionName": named("OrderProcessor"),
            "Code": f"{code_folder}/",
            "Handler": configuration.get("Handler"),
            "Runtime": configuration.get("Runtime"),
            "Timeout": configuration.get("Timeout"),
            "MemorySize": configuration.get("MemorySize"),
            "Role": configuration["Role"],
        }
        variables = (configuration.get("Environment") or {}).get("Variables")
        if variables:
            props["Environment"] = {"Variables": variables}
        reserved = (function.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        if reserved is not None:
            props["ReservedConcurrentExecutions"] = reserved
        self.code.update(_code_files(function.get("Code", {}).get("Location"), code_folder))
        return {"Type": "AWS::Lambda::Function", "Properties": props}

    def mapping(self) -> dict[str, Any] | None:
        function = self._function_configuration()
        queue = self._queue(self.config.queue_name)
        if function is None or queue is None:
            return None
        mappings = self.clients("lambda").list_event_source_mappings(
            EventSourceArn=queue[1], FunctionName=function["Configuration"]["FunctionName"]
        )["EventSourceMappings"]
        if not mappings:
            return None
        mapping = mappings[0]
        props: dict[str, Any] = {
            "EventSourceArn": queue[1],
            "FunctionName": {"Ref": "OrderProcessor"},
            "BatchSize": mapping.get("BatchSize", 10),
        }
        if mapping.get("State") in ("Disabled", "Disabling"):
            props["Enabled"] = False
        for key in ("FunctionResponseTypes", "ScalingConfig", "FilterCriteria"):
            if mapping.get(key):
                props[key] = mapping[key]
        if mapping.get("MaximumBatchingWindowInSeconds"):
            props["MaximumBatchingWindowInSeconds"] = mapping["MaximumBatchingWindowInSeconds"]
        return {"Type": "AWS::Lambda::EventSourceMapping", "Properties": props}

    def substitute(self, value: Any) -> Any:
        """*value* with every value of the pipeline replaced by its reference, and account and region by theirs."""
        if isinstance(value, dict):
            if len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref")):
                return value  # written by the exporter itself (a name, a reference): already what it should be
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if not isinstance(value, str):
            return value
        if value in self.references:
            return self.references[value]
        marker = f":{self.region}:{self.account}:"
        if marker in value:
            text = value.replace(marker, ":${AWS::Region}:${AWS::AccountId}:").replace(
                "arn:aws:", "arn:${AWS::Partition}:"
            )
            return {"Fn::Sub": text}
        return value


def _document(document: Any) -> Any:
    return json.loads(document) if isinstance(document, str) else document


def _code_files(location: str | None, folder: str) -> dict[str, bytes]:
    """The function's files from GetFunction's Code.Location (a URL valid for ten minutes), under *folder*."""
    if not location or not location.startswith(("http://", "https://")):
        log.warning("the function's code has no download location; the template names %s/ with nothing in it", folder)
        return {}
    with urllib.request.urlopen(location, timeout=30) as answer:
        package = answer.read()
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {f"{folder}/{name}": archive.read(name) for name in archive.namelist() if not name.endswith("/")}
