"""The one place labkit touches moto's internals: fail loudly if a moto release moves them."""

import boto3

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
    from labkit.functions import build_zip

    function_arn = built_lab.clients("lambda").get_function_configuration(FunctionName="OrderProcessor")["FunctionArn"]
    assert seam.function_code(function_arn) == build_zip()


def test_aws_managed_policies_exist_in_iam(local_cloud):
    iam = local_cloud.clients("iam")
    for arn in ("arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess", "arn:aws:iam::aws:policy/AmazonSQSFullAccess"):
        assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn
