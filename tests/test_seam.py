"""The one place labkit touches moto's internals: fail loudly if a moto release moves them."""

import json
import os
import subprocess
import sys
import time
import types

import boto3
import pytest

from labkit.config import Config
from labkit.localcloud import LocalCloud, seam


def test_moto_has_what_the_hooks_replace():
    seam.check_compatible()


def test_hooks_are_installed_by_the_local_cloud(local_cloud):
    assert seam.trigger_disabled()


def test_motos_own_trigger_never_consumes_a_message():
    # GIVEN a local cloud whose Lambda service is stopped, so nothing but moto could consume
    cloud = LocalCloud.in_process(Config.from_env({}, function_timeout=1, visibility_timeout=1))
    try:
        cloud.service.stop()
        from labkit.lab import Lab

        lab = Lab(cloud.config, cloud.clients)
        lab.up()
        # WHEN a message arrives on a queue that has an enabled mapping
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.get_queue_url(QueueName="OrderQueue")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        # THEN it is still there, never received: moto did not pretend to run the function
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert counts["ApproximateNumberOfMessages"] == "1"
        messages = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"]
        assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    finally:
        cloud.stop()


def test_function_code_comes_from_the_lambda_backend(built_lab):
    from labkit.resources.functions import build_zip

    function_arn = built_lab.clients("lambda").get_function_configuration(FunctionName="OrderProcessor")["FunctionArn"]
    assert seam.function_code(function_arn) == build_zip()


def test_aws_managed_policies_exist_in_iam(local_cloud):
    iam = local_cloud.clients("iam")
    for arn in ("arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess", "arn:aws:iam::aws:policy/AmazonSQSFullAccess"):
        assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn


def test_aws_managed_policies_are_loaded_in_the_labs_partition_only(local_cloud):
    # GIVEN moto's IAM backends of the lab's account, one per partition, built by a first IAM request
    from moto.iam.models import iam_backends

    local_cloud.clients("iam").list_roles()
    backends = iam_backends[local_cloud.clients.account_id]
    # THEN the aws partition holds AWS's managed policies and the others, which the lab never reaches, none
    assert "arn:aws:iam::aws:policy/AdministratorAccess" in backends[seam.iam.LAB_PARTITION].managed_policies
    others = [backends[name] for name in ("aws-cn", "aws-us-gov")]
    assert [backend.aws_managed_policies for backend in others] == [[], []]


# The fast paths: each must return exactly what the moto code it replaces returns.


def test_fast_clock_reads_the_same_clock_as_moto(local_cloud):
    from datetime import datetime

    from moto.core import utils as moto_utils
    from moto.sqs import models as sqs_models

    assert sqs_models.unix_time is seam.sqs._unix_time and sqs_models.unix_time_millis is seam.sqs._unix_time_millis
    assert abs(seam.sqs._unix_time() - moto_utils.unix_time()) < 0.05
    assert abs(seam.sqs._unix_time_millis() - moto_utils.unix_time_millis()) < 50
    moment = datetime(2025, 5, 3, 12, 0, 0)
    assert seam.sqs._unix_time(moment) == moto_utils.unix_time(moment)
    assert seam.sqs._unix_time_millis(moment) == moto_utils.unix_time_millis(moment)


def test_queue_attribute_names_are_motos(local_cloud):
    from moto.sqs.models import Queue

    for name in Queue.BASE_ATTRIBUTES + Queue.FIFO_ATTRIBUTES + Queue.KMS_ATTRIBUTES:
        assert seam.sqs._sqs_models.camelcase_to_underscores(name) == seam.sqs._original_camelcase(name)


def test_retention_check_agrees_with_motos(local_cloud):
    # GIVEN a queue that keeps messages for 60 s, one fresh message and one sent two minutes ago
    from moto.sqs.models import sqs_backends

    sqs = local_cloud.clients("sqs")
    url = sqs.create_queue(QueueName="retention", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="fresh")
    sqs.send_message(QueueUrl=url, MessageBody="stale")
    backend = sqs_backends[local_cloud.clients.account_id][local_cloud.config.region]
    fresh, stale = backend.get_queue("retention")._messages
    stale.sent_timestamp -= 120_000
    # THEN labkit's check and moto's own agree on both
    for message, kept in ((fresh, True), (stale, False)):
        assert seam.sqs._retention_ok(backend, "retention", message) is kept
        assert seam.sqs._original_retention_check(backend, "retention", message) is kept
    # AND the expired message is never delivered
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert bodies == ["fresh"]


def test_sns_envelope_matches_motos_and_its_signature_verifies(built_lab):
    # GIVEN the subscription of the queue to the topic
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    region = built_lab.config.region
    backend = sns_backends[built_lab.clients.account_id][region]
    (subscription,) = [s for s in backend.subscriptions.values() if s.protocol == "sqs"]
    attributes = {"kind": {"Type": "String", "Value": "order"}}
    # WHEN labkit and moto each build the envelope of one message
    ours = seam.sns._post_data(subscription, "body", "mid-1", "subject", message_attributes=attributes)
    motos = seam.sns._original_get_post_data(subscription, "body", "mid-1", "subject", message_attributes=attributes)
    # THEN they carry the same fields with the same values, bar the per-message signature and time, and the two
    # fields where moto differs from AWS (SignatureVersion, UnsubscribeURL: tests/test_aws_rules.py)
    assert ours.keys() == motos.keys()
    varying = {"Signature", "SigningCertURL", "Timestamp", "SignatureVersion", "UnsubscribeURL"}
    assert {k: v for k, v in ours.items() if k not in varying} == {k: v for k, v in motos.items() if k not in varying}
    assert ours["SigningCertURL"].startswith(f"https://sns.{region}.amazonaws.com/SimpleNotificationService-")
    # AND the signature verifies with the certificate moto serves at SigningCertURL
    pem = sns_backends[DEFAULT_ACCOUNT_ID][region]._message_public_keys[ours["SigningCertURL"].rsplit("/", 1)[1]]
    signed = (
        f"Message\nbody\nMessageId\nmid-1\nTimestamp\n{ours['Timestamp']}\n"
        f"TopicArn\n{ours['TopicArn']}\nType\nNotification\n"
    )
    x509.load_pem_x509_certificate(pem).public_key().verify(
        base64.b64decode(ours["Signature"]), signed.encode(), padding.PKCS1v15(), hashes.SHA1()
    )
    # AND one certificate serves every message of the subscription, as AWS's does
    assert seam.sns._post_data(subscription, "other", "mid-2", None)["SigningCertURL"] == ours["SigningCertURL"]


def test_function_configuration_is_what_the_lambda_api_returns(built_lab):
    lam = built_lab.clients("lambda")
    by_api = lam.get_function_configuration(FunctionName="OrderProcessor")
    by_api.pop("ResponseMetadata")
    account, region = built_lab.clients.account_id, built_lab.config.region
    assert seam.function_configuration("OrderProcessor", account, region) == by_api
    assert seam.function_configuration(by_api["FunctionArn"], "000000000000", "eu-west-1") == by_api


def test_function_logs_written_through_the_seam_read_back_through_the_api(local_cloud):
    # GIVEN no log group yet
    account, region = local_cloud.clients.account_id, local_cloud.config.region
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": f"line {i}"} for i in range(3)]
    # WHEN the Lambda service writes an invocation's lines, twice
    seam.put_function_logs(account, region, "/aws/lambda/Probe", "2025/05/03/[$LATEST]abc", events[:2])
    seam.put_function_logs(account, region, "/aws/lambda/Probe", "2025/05/03/[$LATEST]abc", events[2:])
    # THEN CloudWatch Logs holds all of them, in order, in the group and stream Lambda uses
    got = local_cloud.clients("logs").get_log_events(
        logGroupName="/aws/lambda/Probe", logStreamName="2025/05/03/[$LATEST]abc", startFromHead=True
    )["events"]
    assert [e["message"] for e in got] == ["line 0", "line 1", "line 2"]


def test_sqs_messages_are_not_kept_after_they_are_deleted(local_cloud):
    # GIVEN moto's record of every model instance it made
    from moto.sqs.models import Message

    sqs = local_cloud.clients("sqs")
    url = sqs.create_queue(QueueName="churn")["QueueUrl"]
    tracked = len(Message.instances_tracked)
    # WHEN messages are sent, received (moto hands out copies) and deleted
    for _ in range(3):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )
    # THEN none of them is held on to, and the queue still works as SQS does
    assert len(Message.instances_tracked) == tracked
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "0"
    }


def test_a_local_cloud_leaves_motos_cloudformation_unimported_until_a_stack_request(tmp_path):
    """moto's CloudFormation costs two seconds of imports: a cloud without stacks never pays them, and the
    first stack request is still answered by labkit's engine (the patches go in when moto imports it)."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, sys\n"
        "import labkit\n"
        "lab = labkit.connect()\n"
        "lab.ensure_queues()\n"
        "before = 'moto.cloudformation.responses' in sys.modules\n"
        "cf = lab.clients('cloudformation')\n"
        "template = {'Resources': {'Q': {'Type': 'AWS::SQS::Queue', 'Properties': {'QueueName': 'SeamQ'}}}}\n"
        "cf.create_stack(StackName='seam', TemplateBody=json.dumps(template))\n"
        "cf.get_waiter('stack_create_complete').wait(StackName='seam', WaiterConfig={'Delay': 1})\n"
        "from moto.cloudformation.responses import CloudFormationResponse\n"
        "print(json.dumps({'before': before, 'answered_by': CloudFormationResponse.create_stack.__module__,\n"
        "    'status': cf.describe_stacks(StackName='seam')['Stacks'][0]['StackStatus']}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LABKIT_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "before": False,
        "answered_by": "labkit.localcloud.seam.cloudformation",
        "status": "CREATE_COMPLETE",
    }


def test_a_moto_whose_cloudformation_moved_is_refused_when_it_is_imported(monkeypatch):
    # GIVEN a moto whose CloudFormation responses lack the operations the engine answers
    from labkit.localcloud.seam import cloudformation

    monkeypatch.setattr(cloudformation, "_table", None)
    monkeypatch.setattr(cloudformation, "_originals", {})
    moved = types.ModuleType("moto.cloudformation.responses")
    moved.CloudFormationResponse = type("CloudFormationResponse", (), {})  # type: ignore[attr-defined]
    # WHEN moto imports it, THEN the local cloud says which parts are gone
    with pytest.raises(RuntimeError, match=r"does not support this moto: .*CloudFormationResponse\.create_stack"):
        cloudformation._on_import(moved)
