"""SNS: the notification envelope as AWS builds it, with one certificate per subscription instead of a new
X.509 certificate minted and signed for every notification (as moto does).

Two fields differ from moto's, as AWS documents them: the signature follows the topic's
SignatureVersion attribute ("1", SHA1withRSA, unless the topic was set to "2", SHA256withRSA), and the
UnsubscribeURL names the subscription itself:
https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html#http-notification-json and
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html.
`tests/test_seam.py` compares the rest of the envelope with moto's own.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import Name, NameAttribute
from cryptography.x509.oid import NameOID
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.sns.models import Subscription
from moto.sns.models import sns_backends as _sns_backends

from labkit.localcloud.patching import Patch, PatchTable, gone_lines

_original_get_post_data = Subscription.get_post_data


def _post_data(
    self: Subscription,
    message: str,
    message_id: str,
    subject: str | None,
    message_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The SNS notification envelope, signed as the topic's SignatureVersion says, one certificate per subscription."""
    key = self.private_key()
    region = self.topic.sns_backend.region_name
    timestamp = iso_8601_datetime_with_milliseconds()
    signed = (
        f"Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\n"
        f"TopicArn\n{self.topic.arn}\nType\nNotification\n"
    )
    version = signature_version(self.topic)
    digest = hashes.SHA256() if version == "2" else hashes.SHA1()  # SNS version 1: SHA1withRSA
    signature = key.sign(signed.encode("UTF-8"), padding.PKCS1v15(), digest)
    post_data: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": self.topic.arn,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode("utf-8"),
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/{_signing_certificate(self, key, region)}",
        "UnsubscribeURL": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={self.arn}",
    }
    if subject:
        post_data["Subject"] = subject
    if message_attributes:
        post_data["MessageAttributes"] = message_attributes
    return post_data


def signature_version(topic: Any) -> str:
    """The topic's SignatureVersion attribute: "1" unless SetTopicAttributes made it "2"."""
    # moto's SetTopicAttributes (and CreateTopic's Attributes) store an attribute it does not model as the
    # topic's attribute of the snake_case name.
    return "2" if str(getattr(topic, "signature_version", "1")) == "2" else "1"


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


_PATCHES = PatchTable(Patch(Subscription, "get_post_data", _post_data))


def install() -> None:
    """Put the envelope above in moto's place."""
    _PATCHES.install()


def problems() -> list[str]:
    """What this moto lacks of the SNS internals replaced here."""
    found = _PATCHES.missing() + gone_lines([(Subscription, "private_key")])
    if "_message_public_keys" not in _original_get_post_data.__code__.co_names:
        found.append("moto's SNS no longer serves signing certificates from _message_public_keys")
    return found
