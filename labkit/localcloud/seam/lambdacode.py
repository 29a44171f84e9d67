"""Lambda: GetFunction's `Code.Location` is a URL that downloads the deployed package, as on AWS.

AWS answers GetFunction with a presigned URL of the function's zip, valid for ten minutes
(https://docs.aws.amazon.com/lambda/latest/api/API_FunctionCodeLocation.html); moto answers an
address nothing serves, or none at all for a zip uploaded inline. Here the zip is put in the local
cloud's S3 (bucket `awslambda-REGION-tasks`, as AWS names its own) and the URL is that object's, on
the endpoint the cloud serves, so `labkit template` (and any student's script) can fetch the code.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import boto3
import botocore.config
from moto.awslambda.models import LambdaFunction
from moto.s3.models import s3_backends

from labkit.localcloud.patching import Patch, PatchTable, gone_lines
from labkit.session import LOCAL_CREDENTIALS

# How long the URL is valid, as AWS's: ten minutes.
URL_LIFETIME_S = 600

_original_get_code = LambdaFunction.get_code
_endpoint: str | None = None


def _get_code(self: LambdaFunction) -> dict[str, Any]:
    answer: dict[str, Any] = _original_get_code(self)
    package = getattr(self, "code_bytes", None)
    if _endpoint is None or not package or answer.get("Code", {}).get("RepositoryType") == "ECR":
        return answer
    bucket = f"awslambda-{self.region}-tasks"
    key = f"snapshots/{self.account_id}/{self.function_name}-{hashlib.sha256(package).hexdigest()[:16]}"
    backend = s3_backends[self.account_id]["aws"]
    if bucket not in backend.buckets:
        backend.create_bucket(bucket, self.region)
    backend.put_object(bucket, key, package)
    url = _signer(_endpoint, self.region).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=URL_LIFETIME_S
    )
    answer["Code"] = {"RepositoryType": "S3", "Location": url}
    return answer


@cache
def _signer(endpoint: str, region: str) -> Any:
    """An S3 client that only signs URLs (it sends nothing), path-style on the cloud's endpoint."""
    path_style = botocore.config.Config(s3={"addressing_style": "path"}, signature_version="s3v4")
    return boto3.session.Session(**LOCAL_CREDENTIALS).client(
        "s3", region_name=region, endpoint_url=endpoint, config=path_style
    )


_PATCHES = PatchTable(Patch(LambdaFunction, "get_code", _get_code))


def install(endpoint: str | None = None) -> None:
    """Answer GetFunction with a download URL on *endpoint* (the latest one given; none: moto's answer)."""
    global _endpoint
    if endpoint is not None:
        _endpoint = endpoint.rstrip("/")
    _PATCHES.install()


def problems() -> list[str]:
    """What this moto lacks of the Lambda and S3 internals used here."""
    found = _PATCHES.missing()
    backend_type = type(s3_backends["123456789012"]["aws"])
    return found + gone_lines([(backend_type, "create_bucket"), (backend_type, "put_object")])
