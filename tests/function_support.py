"""Deploying test functions with plain boto3, as a console user would: a trust policy and a zip."""

from __future__ import annotations

import io
import json
import zipfile

ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def package(files: dict[str, str]) -> bytes:
    """A deployment package holding *files* (name to source)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()
