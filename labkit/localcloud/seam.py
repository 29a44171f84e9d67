"""Every use of moto's internals in labkit, in one place.

moto mocks the AWS APIs but runs Lambda code only in Docker, and its own SQS trigger consumes
messages without running anything. The local cloud therefore needs four things moto's public API
does not offer: switch that trigger off, read a function's deployed zip, route `lambda:Invoke` to
labkit's runtime, and load the AWS managed policies into IAM. `tests/test_seam.py` fails loudly
if a moto release moves any of them.

With IAM enforced (`Config.enforce_iam`) it needs five more: an administrator whose access key is
the local cloud's own key, credentials for the execution role minted as the Lambda service
principal (moto's AssumeRole cannot evaluate a `Service` principal), DynamoDB requests checked
against the table's ARN (moto checks them against `*`), a fix for moto's signature check of
bodiless GET/DELETE requests (every Lambda read fails it), and access-denied errors in the JSON
form that DynamoDB, SQS and CloudWatch Logs clients parse (moto sends XML, read as code "403").

AWS's resource rules live in their own modules, installed from here: SNS delivery gated on the
queue's access policy (`delivery`), transitional resource states and answer shapes (`lifecycle`),
and event source mappings validated as Lambda validates them (`mappings`).

For speed (the section at the end) it replaces moto's per-message work in SQS and SNS with
equivalents, and lets the Lambda service read a function's settings and write its logs directly,
as AWS's service does, instead of one API request each per invocation.
"""

from __future__ import annotations

import base64
import copy
import functools
import inspect
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import moto
import moto.iam.access_control as _access_control
import moto.sqs.models as _sqs_models
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import Name, NameAttribute
from cryptography.x509.oid import NameOID
from moto import settings as _moto_settings
from moto.awslambda.models import LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend as _lambda_backend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.common_models import BaseModel
from moto.core.exceptions import JsonRESTError
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.dynamodb.responses import DynamoHandler
from moto.iam.models import IAMBackend
from moto.iam.models import iam_backends as _iam_backends
from moto.logs.models import LogsBackend
from moto.logs.models import logs_backends as _logs_backends
from moto.sns.models import Subscription
from moto.sns.models import sns_backends as _sns_backends
from moto.sqs.models import Queue, SQSBackend
from moto.sts.models import STSBackend
from moto.sts.models import sts_backends as _sts_backends

from labkit.localcloud import delivery, lifecycle, mappings

# The moto releases these hooks were tested against; pyproject.toml pins the same range.
TESTED_MOTO = ("5.1", "5.2")

InvokeHook = Callable[[str, dict[str, Any]], tuple[str, bool, str]]

_lock = threading.Lock()
_installed = False
_invoke_hook: InvokeHook | None = None
_original_invoke = LambdaFunction._invoke_lambda
_original_invoke_api = LambdaFunction.invoke
_original_create_access_key = _access_control.create_access_key
_original_create_aws_request = _access_control.IAMRequestBase._create_aws_request
_original_check_action_permitted = _access_control.IAMRequestBase.check_action_permitted
_original_raise_access_denied = _access_control.IAMRequest._raise_access_denied
# The local cloud's administrator: its access key is the one labkit's clients use locally.
ADMIN_USER = "labkit-admin"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
_admin_keys: dict[str, str] = {}
_enforcing = 0
_saved_auth: tuple[float, int] | None = None


class _NoTrigger:
    """Stands in for `Queue.lambda_event_source_mappings`: always empty, ignores writes.

    moto's `Queue.add_message` walks this dict and, with Docker absent, deletes each message as if
    a function had processed it. Keeping it empty leaves the queue to labkit's Lambda service, which
    reads the mappings through the Lambda API like AWS's pollers do.
    """

    def __get__(self, instance: object, owner: type | None = None) -> dict[str, Any]:
        return {}

    def __set__(self, instance: object, value: object) -> None:
        pass


def install(invoke_hook: InvokeHook | None = None) -> None:
    """Patch moto for the local cloud; idempotent. *invoke_hook* runs `lambda:Invoke` requests."""
    global _installed, _invoke_hook
    with _lock:
        if invoke_hook is not None:
            _invoke_hook = invoke_hook
        if _installed:
            return
        check_compatible()
        Queue.lambda_event_source_mappings = _NoTrigger()  # type: ignore[assignment]
        LambdaFunction._invoke_lambda = _invoke  # type: ignore[method-assign]
        LambdaFunction.invoke = _invoke_api  # type: ignore[method-assign]
        DynamoHandler._determine_resource = _dynamodb_resource  # type: ignore[attr-defined]
        _access_control.create_access_key = _create_access_key
        _access_control.IAMRequestBase._create_aws_request = _create_aws_request  # type: ignore[method-assign]
        _access_control.IAMRequestBase.check_action_permitted = _check_action_permitted  # type: ignore[method-assign]
        _access_control.IAMRequest._raise_access_denied = _raise_access_denied  # type: ignore[method-assign]
        _install_fast_paths()
        IAMBackend._init_aws_policies = _managed_policies_in_lab_partition_only  # type: ignore[method-assign]
        delivery.install()
        lifecycle.install()
        # After lifecycle: validation runs before a mapping is made and given its first state.
        mappings.install()
        # Read whenever moto builds an IAM backend, in this process and in a moto server.
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        _installed = True


def check_compatible() -> None:
    """Fail with a clear message if moto no longer has the attributes the hooks replace."""
    version = moto.__version__
    problems = []
    if not any(version.startswith(v + ".") or version == v for v in TESTED_MOTO):
        problems.append(f"moto {version} is outside the tested range {', '.join(TESTED_MOTO)}")
    if not hasattr(LambdaFunction, "_invoke_lambda"):
        problems.append("moto.awslambda.models.LambdaFunction._invoke_lambda is gone")
    # signals.py wraps add_message to wake the pollers; the check reads the method it wraps.
    if "lambda_event_source_mappings" not in inspect.unwrap(Queue.add_message).__code__.co_names:
        problems.append("moto.sqs.models.Queue.add_message no longer walks lambda_event_source_mappings")
    if not isinstance(getattr(_moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", None), (int, float)):
        problems.append("moto.settings.INITIAL_NO_AUTH_ACTION_COUNT is gone")
    if not isinstance(getattr(ActionAuthenticatorMixin, "request_count", None), int):
        problems.append("moto.core.authorization.ActionAuthenticatorMixin.request_count is gone")
    for owner, name in (
        (_access_control, "create_access_key"),
        (_access_control.IAMRequestBase, "_create_aws_request"),
        (_access_control.IAMRequestBase, "check_action_permitted"),
        (_access_control.IAMRequest, "_raise_access_denied"),
        (_access_control, "IAMUserAccessKey"),
    ):
        if not callable(getattr(owner, name, None)):
            problems.append(f"moto.iam.access_control {name} is gone")
    for backend, names in (
        (STSBackend, ("assume_role",)),
        (IAMBackend, ("create_user", "get_user", "attach_user_policy", "create_access_key", "get_role_by_arn")),
    ):
        problems.extend(
            f"moto {backend.__name__}.{n} is gone" for n in names if not callable(getattr(backend, n, None))
        )
    if hasattr(DynamoHandler, "_determine_resource") and not _installed:
        problems.append("moto's DynamoHandler now names its own IAM resource; drop labkit's")
    problems.extend(_fast_path_problems())
    if "_init_aws_policies" not in IAMBackend.__init__.__code__.co_names:
        problems.append("moto's IAMBackend no longer loads AWS managed policies through _init_aws_policies")
    problems.extend(delivery.problems() + lifecycle.problems() + mappings.problems())
    if problems:
        raise RuntimeError("labkit's local cloud does not support this moto: " + "; ".join(problems))


def trigger_disabled() -> bool:
    """True once moto's own SQS trigger is switched off."""
    return isinstance(Queue.__dict__.get("lambda_event_source_mappings"), _NoTrigger)


def function_code(function_arn: str) -> bytes:
    """The zip deployed for the function with *function_arn* (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`)."""
    parts = function_arn.split(":")
    region, account, name = parts[3], parts[4], parts[6]
    return _lambda_backend(account, region).get_function(name).code_bytes


def _invoke_api(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
    result = _original_invoke_api(self, body, request_headers, response_headers)
    # The Python runtime reports an exception the handler raised as "Unhandled"; moto says "Handled".
    if response_headers.get("x-amz-function-error") == "Handled":
        response_headers["x-amz-function-error"] = "Unhandled"
    return result


def _invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    if _invoke_hook is None:
        return _original_invoke(self, event)
    # moto's invoke() hands over the payload already decoded (any JSON value, a string too), or the
    # text "{}" when the request had no payload; decoding it again would break on a string event.
    payload = {} if event == "{}" else event
    return _invoke_hook(self.function_arn, payload)


def enable_iam(access_key_id: str, secret_access_key: str) -> None:
    """Check every request against IAM from now on; *access_key_id* belongs to an administrator.

    moto's switch is one per process, so every local cloud of the process is checked until the
    last one that asked for it calls `disable_iam()`.
    """
    global _enforcing, _saved_auth
    with _lock:
        _admin_keys[access_key_id] = secret_access_key
        if _enforcing == 0:
            _saved_auth = (_moto_settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
            _moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
            ActionAuthenticatorMixin.request_count = 0
        _enforcing += 1


def disable_iam() -> None:
    """Undo one `enable_iam()`; checks stop when none is left."""
    global _enforcing, _saved_auth
    with _lock:
        if _enforcing == 0:
            return
        _enforcing -= 1
        if _enforcing == 0 and _saved_auth is not None:
            _moto_settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = _saved_auth
            _saved_auth = None


def iam_enforced() -> bool:
    """True while moto checks requests against IAM."""
    return ActionAuthenticatorMixin.request_count >= _moto_settings.INITIAL_NO_AUTH_ACTION_COUNT


def assume_role_as_lambda(role_arn: str, session_name: str) -> dict[str, str]:
    """Credentials of *role_arn* for a function, minted as the Lambda service would mint them.

    Raises:
        PermissionError: the role's trust policy does not let `lambda.amazonaws.com` assume it.
    """
    parts = role_arn.split(":")
    account, partition = parts[4], parts[1]
    role = _iam_backends[account][partition].get_role_by_arn(role_arn)
    if not _trusts_lambda(role.assume_role_policy_document):
        raise PermissionError(
            f"The role {role_arn} cannot be assumed by Lambda: its trust policy must allow "
            f"{LAMBDA_PRINCIPAL} to call sts:AssumeRole."
        )
    assumed = _sts_backends[account][partition].assume_role(
        region_name="us-east-1",
        role_session_name=session_name,
        role_arn=role_arn,
        policy="",
        duration=3600,
        external_id="",
    )
    return {
        "AWS_ACCESS_KEY_ID": assumed.access_key_id,
        "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
        "AWS_SESSION_TOKEN": assumed.session_token,
    }


def _trusts_lambda(document: str | dict[str, Any]) -> bool:
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        services = (
            statement.get("Principal", {}).get("Service", []) if isinstance(statement.get("Principal"), dict) else []
        )
        actions = [actions] if isinstance(actions, str) else actions
        services = [services] if isinstance(services, str) else services
        if (
            statement.get("Effect") == "Allow"
            and LAMBDA_PRINCIPAL in services
            and ("sts:AssumeRole" in actions or "sts:*" in actions or "*" in actions)
        ):
            return True
    return False


def _create_access_key(account_id: str, partition: str, access_key_id: str, headers: dict[str, str]) -> Any:
    secret = _admin_keys.get(access_key_id)
    if secret is None:
        return _original_create_access_key(account_id, partition, access_key_id, headers)
    _ensure_admin(account_id, partition, access_key_id, secret)
    # The local key is an IAM user's, whatever session token a shell adds to it (moto's docs set one).
    plain = {k: v for k, v in headers.items() if k.lower() != "x-amz-security-token"}
    return _access_control.IAMUserAccessKey(account_id, partition, access_key_id, plain)


def _ensure_admin(account_id: str, partition: str, access_key_id: str, secret: str) -> None:
    # Made on first use in each account, so it survives `/moto-api/reset` as an AWS account's admin would.
    backend = _iam_backends[account_id][partition]
    with _lock:
        if ADMIN_USER not in backend.users:
            backend.create_user("us-east-1", ADMIN_USER)
            backend.attach_user_policy(ADMIN_POLICY_ARN, ADMIN_USER)
        user = backend.get_user(ADMIN_USER)
        if not any(key.access_key_id == access_key_id for key in user.access_keys):
            key = backend.create_access_key(ADMIN_USER)
            key.access_key_id = access_key_id
            key.secret_access_key = secret


def _create_aws_request(self: Any) -> Any:
    # moto signs a bodiless GET/DELETE over its parsed parameters, not the empty body the client
    # signed, so every Lambda read would fail with SignatureDoesNotMatch.
    if not self._body and self._method in ("GET", "HEAD", "DELETE"):
        self._data = {}
    return _original_create_aws_request(self)


def _dynamodb_resource(self: Any) -> str:
    # AWS checks a table's operations against the table's ARN; moto checks every one against "*",
    # which no least-privilege policy matches.
    params = self.body if isinstance(self.body, dict) else {}
    table = params.get("TableName")
    if not isinstance(table, str) or not table:
        return "*"
    if table.startswith("arn:"):
        return table
    return f"arn:{self.partition}:dynamodb:{self.region}:{self.current_account}:table/{table}"


def _check_action_permitted(self: Any, resource: str) -> None:
    self.labkit_resource = resource
    _original_check_action_permitted(self, resource)


def _raise_access_denied(self: Any) -> None:
    target = next((v for k, v in self._headers.items() if k.lower() == "x-amz-target"), "")
    if not target:
        _original_raise_access_denied(self)
    resource = getattr(self, "labkit_resource", "*")
    code = "AccessDenied" if target.startswith("AmazonSQS") else "AccessDeniedException"
    raise JsonRESTError(
        code, f"User: {self._access_key.arn} is not authorized to perform: {self._action} on resource: {resource}"
    )


# Speed. moto rebuilds every attribute of a queue (three scans of all its messages, each message
# reading the clock through two datetimes) for each message it sends or receives, mints and signs
# a new X.509 certificate for each SNS notification, and keeps every SQS message it ever made, so
# the pipeline slowed down as the queue grew and its memory grew with every order. The replacements
# return what moto returns; tests/test_seam.py compares them with moto's own.
_original_retention_check = SQSBackend.is_message_valid_based_on_retention_period
_original_sqs_unix_time = _sqs_models.unix_time
_original_sqs_unix_time_millis = _sqs_models.unix_time_millis
_original_get_post_data = Subscription.get_post_data
_original_camelcase = _sqs_models.camelcase_to_underscores


def _install_fast_paths() -> None:
    SQSBackend.is_message_valid_based_on_retention_period = _retention_ok  # type: ignore[method-assign]
    _sqs_models.unix_time = _unix_time
    _sqs_models.unix_time_millis = _unix_time_millis
    Subscription.get_post_data = _post_data  # type: ignore[method-assign]
    # A pure function of a name, called 14 times each time moto builds a queue's attributes.
    _sqs_models.camelcase_to_underscores = functools.lru_cache(maxsize=256)(_original_camelcase)
    # moto keeps every model instance it ever made, for its dashboard: each SQS message twice (the
    # copy a receive hands out too), bodies and all, long after it was deleted, about 3 KB an order.
    _sqs_models.Message.__new__ = _untracked_new  # type: ignore[method-assign]


def _fast_path_problems() -> list[str]:
    problems = [
        f"moto {owner.__name__}.{name} is gone"
        for owner, name in (
            (SQSBackend, "is_message_valid_based_on_retention_period"),
            (Subscription, "get_post_data"),
            (Subscription, "private_key"),
        )
        if not callable(getattr(owner, name, None))
    ]
    # lifecycle wraps Queue.attributes; the name is read by the property moto wrote.
    if "camelcase_to_underscores" not in lifecycle.moto_queue_attributes().__code__.co_names:
        problems.append("moto's Queue no longer names its attributes through camelcase_to_underscores")
    if "instances_tracked" not in BaseModel.__new__.__code__.co_names or (
        "__new__" in vars(_sqs_models.Message) and _sqs_models.Message.__new__ is not _untracked_new
    ):
        problems.append("moto's BaseModel no longer tracks instances the way labkit stops it for SQS messages")
    if "MessageRetentionPeriod" not in Queue.BASE_ATTRIBUTES:
        problems.append("moto's Queue no longer keeps MessageRetentionPeriod")
    for prop in (_sqs_models.Message.visible, _sqs_models.Message.delayed):
        if "unix_time_millis" not in prop.fget.__code__.co_names:  # type: ignore[attr-defined]
            problems.append("moto's SQS Message no longer reads the clock through unix_time_millis")
    for owner, name in (
        (LambdaFunction, "get_configuration"),
        (LambdaResponse, "_set_configuration_qualifier"),
        (LogsBackend, "create_log_group"),
        (LogsBackend, "create_log_stream"),
        (LogsBackend, "put_log_events"),
    ):
        if not callable(getattr(owner, name, None)):
            problems.append(f"moto {owner.__name__}.{name} is gone")
    if "_message_public_keys" not in _original_get_post_data.__code__.co_names:
        problems.append("moto's SNS no longer serves signing certificates from _message_public_keys")
    return problems


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def _unix_time(dt: datetime | None = None) -> float:
    return time.time() if dt is None else _original_sqs_unix_time(dt)


def _unix_time_millis(dt: datetime | None = None) -> float:
    return time.time() * 1000.0 if dt is None else _original_sqs_unix_time_millis(dt)


def _retention_ok(self: SQSBackend, queue_name: str, message: Any) -> bool:
    # moto reads the period through get_queue_attributes, which rebuilds all attributes three times.
    queue = self.get_queue(queue_name)
    retention = queue.message_retention_period  # type: ignore[attr-defined]  # moto sets it from BASE_ATTRIBUTES
    return retention + message.sent_timestamp / 1000 > _sqs_models.unix_time()


def _post_data(
    self: Subscription,
    message: str,
    message_id: str,
    subject: str | None,
    message_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """moto's SNS notification envelope, signed as moto signs it, with one certificate per subscription."""
    key = self.private_key()
    region = self.topic.sns_backend.region_name
    timestamp = iso_8601_datetime_with_milliseconds()
    signed = (
        f"Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\n"
        f"TopicArn\n{self.topic.arn}\nType\nNotification\n"
    )
    signature = key.sign(signed.encode("UTF-8"), padding.PKCS1v15(), hashes.SHA256())
    post_data: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": self.topic.arn,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "2",
        "Signature": base64.b64encode(signature).decode("utf-8"),
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/{_signing_certificate(self, key, region)}",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
        f"arn:aws:sns:us-east-1:{self.account_id}:{self.topic.name}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    }
    if subject:
        post_data["Subject"] = subject
    if message_attributes:
        post_data["MessageAttributes"] = message_attributes
    return post_data


def _signing_certificate(subscription: Subscription, key: Any, region: str) -> str:
    # AWS signs a region's notifications with one long-lived certificate; moto made one per message
    # (about 0.4 ms, and a PEM kept for the life of the process). Cached on the subscription, as
    # moto caches its key, so `/moto-api/reset` starts afresh.
    name: str | None = getattr(subscription, "labkit_signing_cert", None)
    if name is not None:
        return name
    issuer = [
        NameAttribute(NameOID.COUNTRY_NAME, "US"),
        NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
        NameAttribute(NameOID.COMMON_NAME, "Amazon RSA 2048 M01"),
    ]
    now = datetime.now(UTC).replace(tzinfo=None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(Name([NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")]))
        .issuer_name(Name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    name = f"SimpleNotificationService-{uuid.uuid4().hex}.pem"
    # moto serves every certificate from the default account's backend of the region.
    _sns_backends[DEFAULT_ACCOUNT_ID][region]._message_public_keys[name] = cert.public_bytes(serialization.Encoding.PEM)
    subscription.labkit_signing_cert = name  # type: ignore[attr-defined]
    return name


# IAM's managed policies. moto builds an IAM backend for each of six partitions (aws, aws-cn, aws-us-gov, ...)
# and loads all ~1,580 AWS managed policies into each, on the first IAM request and again when a local
# cloud stops: about 1.5 s of CPU per cloud. The lab's account lives in the aws partition; the other
# partitions' backends, which nothing reaches, start without them.
LAB_PARTITION = "aws"
_original_init_aws_policies = IAMBackend._init_aws_policies


def _managed_policies_in_lab_partition_only(self: IAMBackend) -> list[Any]:
    # moto names each IAM backend after its partition, in the place of a region.
    if self.region_name != LAB_PARTITION:
        return []
    return _original_init_aws_policies(self)


def function_configuration(function: str, account: str, region: str) -> dict[str, Any]:
    """What GetFunctionConfiguration returns for *function* (name or ARN), read from moto's Lambda backend.

    The local Lambda service reads it before every invocation, as AWS's does from its own state;
    through the API that was one more request per invocation.
    """
    if function.startswith("arn:"):
        region, account = function.split(":")[3:5]
    configuration = copy.deepcopy(_lambda_backend(account, region).get_function(function).get_configuration())
    # The API leaves out fields that have no value.
    configuration = {key: value for key, value in configuration.items() if value is not None}
    return LambdaResponse._set_configuration_qualifier(configuration, function, None)  # type: ignore[arg-type]


def put_function_logs(account: str, region: str, group: str, stream: str, events: list[dict[str, Any]]) -> None:
    """Append *events* to a CloudWatch Logs stream, creating the group and stream first if need be.

    The Lambda service writes a function's logs from inside AWS; through the API that was one more
    request per invocation.
    """
    backend = _logs_backends[account][region]
    if group not in backend.groups:
        backend.create_log_group(group, {})
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    backend.put_log_events(group, stream, events)
