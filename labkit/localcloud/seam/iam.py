"""IAM: requests checked against IAM when a local cloud asks for it (`Config.enforce_iam`), as AWS checks them.

moto's public API lacks five things for that: an administrator whose access key is the local
cloud's own key, credentials for the execution role minted as the Lambda service principal (moto's
AssumeRole cannot evaluate a `Service` principal), DynamoDB requests checked against the table's
ARN (moto checks them against `*`), a fix for moto's signature check of bodiless GET/DELETE
requests (every Lambda read fails it), and access-denied errors in the JSON form that DynamoDB, SQS
and CloudWatch Logs clients parse (moto sends XML, read as code "403"). The AWS managed policies
are loaded (into the aws partition, the lab's), so a role may attach them as on AWS.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import moto.iam.access_control as _access_control
from moto import settings as _moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.responses import DynamoHandler
from moto.iam.models import IAMBackend
from moto.iam.models import iam_backends as _iam_backends
from moto.sts.models import STSBackend
from moto.sts.models import sts_backends as _sts_backends

from labkit.localcloud.patching import Patch, PatchTable, gone_lines

_lock = threading.Lock()
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


# moto builds an IAM backend for each of six partitions (aws, aws-cn, aws-us-gov, ...) and loads all ~1,580
# AWS managed policies into each, on the first IAM request and again when a local cloud stops: about 1.5 s
# of CPU per cloud. The lab's account lives in the aws partition; the other partitions' backends, which
# nothing reaches, start without them.
LAB_PARTITION = "aws"
_original_init_aws_policies = IAMBackend._init_aws_policies


def _managed_policies_in_lab_partition_only(self: IAMBackend) -> list[Any]:
    # moto names each IAM backend after its partition, in the place of a region.
    if self.region_name != LAB_PARTITION:
        return []
    return _original_init_aws_policies(self)


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


_GONE = "{module} {name} is gone"
_PATCHES = PatchTable(
    Patch(DynamoHandler, "_determine_resource", _dynamodb_resource, added=True),
    Patch(_access_control, "create_access_key", _create_access_key),
    Patch(_access_control.IAMRequestBase, "_create_aws_request", _create_aws_request),
    Patch(_access_control.IAMRequestBase, "check_action_permitted", _check_action_permitted),
    Patch(_access_control.IAMRequest, "_raise_access_denied", _raise_access_denied),
    Patch(IAMBackend, "_init_aws_policies", _managed_policies_in_lab_partition_only),
    gone=_GONE,
)


def install() -> None:
    """Route moto's IAM checks through the hooks above (they change nothing until `enable_iam()`)."""
    # Read whenever moto builds an IAM backend, in this process and in a moto server.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    _PATCHES.install()


def problems() -> list[str]:
    """What this moto lacks of the IAM internals replaced here."""
    found = []
    if not isinstance(getattr(_moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", None), (int, float)):
        found.append("moto.settings.INITIAL_NO_AUTH_ACTION_COUNT is gone")
    if not isinstance(getattr(ActionAuthenticatorMixin, "request_count", None), int):
        found.append("moto.core.authorization.ActionAuthenticatorMixin.request_count is gone")
    found += _PATCHES.missing() + gone_lines([(_access_control, "IAMUserAccessKey")], gone=_GONE)
    iam_calls = ("create_user", "get_user", "attach_user_policy", "create_access_key", "get_role_by_arn")
    found += gone_lines([(STSBackend, "assume_role"), *((IAMBackend, name) for name in iam_calls)])
    if "_init_aws_policies" not in IAMBackend.__init__.__code__.co_names:
        found.append("moto's IAMBackend no longer loads AWS managed policies through _init_aws_policies")
    if getattr(DynamoHandler, "_determine_resource", _dynamodb_resource) is not _dynamodb_resource:
        found.append("moto's DynamoHandler now names its own IAM resource; drop labkit's")
    return found
