"""Local code in a template uploaded to S3 and replaced by its location, as `aws cloudformation package` does.

`CodeUri` of an `AWS::Serverless::Function` and `Code` of an `AWS::Lambda::Function` may name a
local folder or file, relative to the template; CloudFormation itself takes only S3 locations, so the
folder is zipped, uploaded under the MD5 of the zip, and its `s3://bucket/key` (for `Code`:
`S3Bucket`/`S3Key`) put in its place
(https://docs.aws.amazon.com/cli/latest/reference/cloudformation/package.html).
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import zipfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code
from labkit.errors import InputError
from labkit.iac.names import ARTIFACT_BUCKET
from labkit.session import Clients

log = logging.getLogger(__name__)
# A fixed time in every zip entry: the same code gives the same zip, hence the same key.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def artifact_bucket(clients: Clients) -> str:
    """The account's bucket for packaged code in this region, created if missing."""
    name = ARTIFACT_BUCKET.format(account=clients.account_id, region=clients.config.region)
    s3 = clients("s3")
    try:
        s3.head_bucket(Bucket=name)
        return name
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    log.info("creating bucket %s for packaged code", name)
    region = clients.config.region
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return name


def zip_path(path: Path) -> bytes:
    """A folder's files (or one file) as a zip, paths relative to the folder, as `package` zips them."""
    buffer = io.BytesIO()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    base = path if path.is_dir() else path.parent
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            if "__pycache__" in file.parts:
                continue
            entry = zipfile.ZipInfo(file.relative_to(base).as_posix(), _ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, file.read_bytes())
    return buffer.getvalue()


def upload(clients: Clients, bucket: str, path: Path) -> str:
    """Upload *path* zipped (a .zip as it is) under the MD5 of its bytes; returns the key."""
    package = path.read_bytes() if path.suffix in (".zip", ".jar") else zip_path(path)
    key = hashlib.md5(package, usedforsecurity=False).hexdigest()
    clients("s3").put_object(Bucket=bucket, Key=key, Body=package)
    return key


def local_code(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(logical id, property, local path) of every function whose code is a local path."""
    found = []
    for logical, resource in (template.get("Resources") or {}).items():
        properties = (resource or {}).get("Properties") or {}
        kind = (resource or {}).get("Type")
        if kind == "AWS::Serverless::Function":
            uri = properties.get("CodeUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                found.append((logical, "CodeUri", uri))
        elif kind == "AWS::Lambda::Function" and isinstance(properties.get("Code"), str):
            found.append((logical, "Code", properties["Code"]))
    return found


def package_template(
    template: dict[str, Any], base_dir: Path, clients: Clients, bucket: str | None = None
) -> dict[str, Any]:
    """A copy of *template* whose local code is uploaded to S3 (*bucket*, else the account's artifact bucket)."""
    wanted = local_code(template)
    if not wanted:
        return template
    bucket = bucket or artifact_bucket(clients)
    packaged = copy.deepcopy(template)
    for logical, prop, uri in wanted:
        path = (base_dir / uri).resolve()
        if not path.exists():
            raise InputError(
                f"{prop} of {logical} names {uri}, which does not exist next to the template ({path}): "
                "give a folder or file relative to the template."
            )
        key = upload(clients, bucket, path)
        properties = packaged["Resources"][logical]["Properties"]
        properties[prop] = f"s3://{bucket}/{key}" if prop == "CodeUri" else {"S3Bucket": bucket, "S3Key": key}
        log.info("uploaded %s of %s to s3://%s/%s", prop, logical, bucket, key)
    return packaged
