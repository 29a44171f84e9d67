"""Every ensure_* builder, called twice, under the in-process cloud and the server; every delete_* too."""

import json

import pytest

from labkit.config import ENV_STATE_DELAY, MANAGED_POLICY_ARNS, Config
from labkit.errors import ResourceError
from labkit.resources import dynamodb, functions, iam, sns, sqs, triggers


@pytest.fixture(params=["in_process", "server"])
def env(request):
    """(config, clients) on a fresh local cloud, in this process or behind an HTTP endpoint."""
    cloud = request.getfixturevalue("local_cloud" if request.param == "in_process" else "local_server")
    return cloud.config, cloud.clients


def test_table_twice_is_the_same_table(env):
    config, clients = env
    first = dynamodb.ensure_table(config, clients)
    second = dynamodb.ensure_table(config, clients)
    assert first == second
    table = clients("dynamodb").describe_table(TableName="Orders")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "orderId", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert dynamodb.delete_table(config, clients) is True
    assert dynamodb.delete_table(config, clients) is False


def test_table_with_another_key_is_refused_with_the_fix(env):
    config, clients = env
    clients("dynamodb").create_table(
        TableName="Orders",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ResourceError, match=r"Orders.*orderId.*labkit down"):
        dynamodb.ensure_table(config, clients)


def test_topic_twice_is_one_standard_topic(env):
    config, clients = env
    first = sns.ensure_topic(config, clients)
    assert sns.ensure_topic(config, clients) == first
    assert first.arn.endswith(":OrderTopic")
    assert len(clients("sns").list_topics()["Topics"]) == 1
    assert sns.delete_topic(config, clients) is True
    assert sns.delete_topic(config, clients) is False


def test_queues_twice_keep_one_redrive_policy(env):
    config, clients = env
    dlq = sqs.ensure_dlq(config, clients)
    queue = sqs.ensure_queue(config, clients, dlq.arn)
    assert sqs.ensure_dlq(config, clients) == dlq
    assert sqs.ensure_queue(config, clients, dlq.arn) == queue
    attributes = clients("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 3}
    assert attributes["VisibilityTimeout"] == str(config.visibility_timeout)
    assert len(clients("sqs").list_queues()["QueueUrls"]) == 2


def test_queue_settings_changed_by_hand_are_brought_back(env):
    # GIVEN a queue whose student set maxReceiveCount 5 and a 1 s visibility timeout in the console
    config, clients = env
    dlq = sqs.ensure_dlq(config, clients)
    queue = sqs.ensure_queue(config, clients, dlq.arn)
    clients("sqs").set_queue_attributes(
        QueueUrl=queue.url,
        Attributes={"RedrivePolicy": json.dumps(sqs.redrive_policy(dlq.arn, 5)), "VisibilityTimeout": "1"},
    )
    # WHEN the builder runs again THEN the lab's settings are back
    sqs.ensure_queue(config, clients, dlq.arn)
    attributes = clients("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3
    assert attributes["VisibilityTimeout"] == str(config.visibility_timeout)
    assert sqs.delete_queue(clients, config.queue_name) is True
    assert sqs.delete_queue(clients, config.queue_name) is False


def test_queue_policy_lets_only_this_topic_send():
    policy = sqs.queue_policy_for_topic("arn:aws:sqs:us-east-1:1:OrderQueue", "arn:aws:sns:us-east-1:1:OrderTopic")
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == "arn:aws:sqs:us-east-1:1:OrderQueue"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:OrderTopic"}}


def test_queue_policy_and_subscription_twice(env):
    config, clients = env
    topic = sns.ensure_topic(config, clients)
    dlq = sqs.ensure_dlq(config, clients)
    queue = sqs.ensure_queue(config, clients, dlq.arn)
    assert sqs.ensure_queue_policy(clients, queue, topic.arn) == sqs.ensure_queue_policy(clients, queue, topic.arn)
    first = sns.ensure_subscription(clients, topic.arn, queue.arn)
    second = sns.ensure_subscription(clients, topic.arn, queue.arn)
    assert first == second and not first.raw_delivery
    subs = clients("sns").list_subscriptions_by_topic(TopicArn=topic.arn)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("sqs", queue.arn)]
    raw = sns.ensure_subscription(clients, topic.arn, queue.arn, raw_delivery=True)
    assert raw.arn == first.arn and raw.raw_delivery


def _table_and_queue(config, clients):
    table = dynamodb.ensure_table(config, clients)
    queue = sqs.ensure_queue(config, clients, sqs.ensure_dlq(config, clients).arn)
    return table, queue


def test_role_twice_with_the_seeds_managed_policies(env):
    config, clients = env
    config = config.with_(role_policy="managed")
    table, queue = _table_and_queue(config, clients)
    first = iam.ensure_role(config, clients, table.arn, queue.arn)
    assert iam.ensure_role(config, clients, table.arn, queue.arn) == first
    attached = clients("iam").list_attached_role_policies(RoleName=first.name)["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted(MANAGED_POLICY_ARNS)
    trust = clients("iam").get_role(RoleName=first.name)["Role"]["AssumeRolePolicyDocument"]
    assert trust == iam.lambda_trust_policy()


def test_role_switches_to_least_privilege_and_back(env):
    config, clients = env
    table, queue = _table_and_queue(config, clients)
    least = config.with_(role_policy="least-privilege")
    iam.ensure_role(least, clients, table.arn, queue.arn)
    iam.ensure_role(least, clients, table.arn, queue.arn)
    iam_client = clients("iam")
    attached = [
        p["PolicyArn"] for p in iam_client.list_attached_role_policies(RoleName=config.role_name)["AttachedPolicies"]
    ]
    assert attached == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    document = iam_client.get_role_policy(RoleName=config.role_name, PolicyName="OrderProcessorLeastPrivilege")
    actions = {a for s in document["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert {"dynamodb:PutItem", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions
    assert not any(a.endswith("*") for a in actions)
    iam.ensure_role(config.with_(role_policy="managed"), clients, table.arn, queue.arn)
    assert iam_client.list_role_policies(RoleName=config.role_name)["PolicyNames"] == []
    assert iam.delete_role(config, clients) is True
    assert iam.delete_role(config, clients) is False


def test_function_twice_deploys_once_and_redeploys_changed_code(env):
    config, clients = env
    table, queue = _table_and_queue(config, clients)
    role = iam.ensure_role(config, clients, table.arn, queue.arn)
    first = functions.ensure_function(config, clients, role.arn)
    assert functions.ensure_function(config, clients, role.arn) == first
    assert first.code_sha256 == functions.code_sha256(functions.build_zip())
    settings = clients("lambda").get_function_configuration(FunctionName="OrderProcessor")
    assert settings["Handler"] == "code.lambda_handler"
    assert settings["Environment"]["Variables"] == {"TABLE_NAME": "Orders"}
    assert settings["Timeout"] == config.function_timeout
    changed = functions.ensure_function(config, clients, role.arn, source="def lambda_handler(e, c):\n    return 1\n")
    assert changed.code_sha256 != first.code_sha256
    longer = functions.ensure_function(config.with_(function_timeout=2, visibility_timeout=12), clients, role.arn)
    assert clients("lambda").get_function_configuration(FunctionName="OrderProcessor")["Timeout"] == 2
    assert longer.code_sha256 == first.code_sha256
    assert functions.delete_function(config, clients) is True
    assert functions.delete_function(config, clients) is False


def test_zip_holds_the_one_handler_file_and_is_stable():
    package = functions.build_zip()
    assert package == functions.build_zip()
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.namelist() == ["code.py"]
        assert archive.read("code.py").decode() == functions.handler_source()


def test_trigger_twice_and_batch_size_change(env):
    config, clients = env
    table, queue = _table_and_queue(config, clients)
    role = iam.ensure_role(config, clients, table.arn, queue.arn)
    functions.ensure_function(config, clients, role.arn)
    first = triggers.ensure_mapping(config, clients, queue.arn, queue.url)
    assert triggers.ensure_mapping(config, clients, queue.arn, queue.url) == first
    assert (first.state, first.batch_size) == ("Enabled", 1)
    bigger = triggers.ensure_mapping(config.with_(batch_size=10), clients, queue.arn, queue.url)
    assert bigger.uuid == first.uuid and bigger.batch_size == 10
    paused = triggers.set_mapping_enabled(config, clients, queue.arn, enabled=False)
    assert paused.state == "Disabled"
    assert len(clients("lambda").list_event_source_mappings()["EventSourceMappings"]) == 1
    assert triggers.delete_mapping(config, clients, queue.arn) is True
    assert triggers.delete_mapping(config, clients, queue.arn) is False


@pytest.mark.slow
def test_trigger_made_again_while_the_old_one_is_deleting(env, monkeypatch):
    """A trigger deleted and at once made again: the builder waits until the old one is gone, since AWS
    refuses a second trigger of the same queue and function until then.
    https://docs.aws.amazon.com/lambda/latest/api/API_DeleteEventSourceMapping.html"""
    config, clients = env
    table, queue = _table_and_queue(config, clients)
    role = iam.ensure_role(config, clients, table.arn, queue.arn)
    functions.ensure_function(config, clients, role.arn)
    # Long enough to be caught mid-transition on a loaded machine; the steps above keep the default.
    monkeypatch.setenv(ENV_STATE_DELAY, "1")
    first = triggers.ensure_mapping(config, clients, queue.arn, queue.url)

    assert triggers.delete_mapping(config, clients, queue.arn) is True
    assert triggers.find_mapping(clients, config.function_name, queue.arn) is None
    again = triggers.ensure_mapping(config, clients, queue.arn, queue.url)

    assert again.uuid != first.uuid and again.state == "Enabled"
    listed = clients("lambda").list_event_source_mappings(EventSourceArn=queue.arn)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [again.uuid]


@pytest.mark.slow
def test_trigger_changed_while_it_is_still_being_created(env, monkeypatch):
    """Pausing or deleting a trigger that is still Creating waits for it to settle, since AWS refuses
    to change a mapping mid-transition (ResourceInUseException).
    https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#API_UpdateEventSourceMapping_Errors"""
    config, clients = env
    table, queue = _table_and_queue(config, clients)
    role = iam.ensure_role(config, clients, table.arn, queue.arn)
    functions.ensure_function(config, clients, role.arn)
    # Long enough to be caught mid-transition on a loaded machine; the steps above keep the default.
    monkeypatch.setenv(ENV_STATE_DELAY, "1")
    lam = clients("lambda")

    lam.create_event_source_mapping(EventSourceArn=queue.arn, FunctionName=config.function_name)
    assert triggers.set_mapping_enabled(config, clients, queue.arn, enabled=False).state == "Disabled"
    lam.update_event_source_mapping(
        UUID=triggers.find_mapping(clients, config.function_name, queue.arn)["UUID"], Enabled=True
    )
    assert triggers.delete_mapping(config, clients, queue.arn) is True


def test_a_trigger_deleting_for_longer_than_the_wait_is_named(local_cloud, monkeypatch):
    """If the old trigger is still Deleting when the wait ends, the error names it and says what to do."""
    config, clients = local_cloud.config, local_cloud.clients
    table, queue = _table_and_queue(config, clients)
    role = iam.ensure_role(config, clients, table.arn, queue.arn)
    functions.ensure_function(config, clients, role.arn)
    uuid = triggers.ensure_mapping(config, clients, queue.arn, queue.url).uuid
    monkeypatch.setenv(ENV_STATE_DELAY, "30")
    triggers.delete_mapping(config, clients, queue.arn)

    with pytest.raises(ResourceError, match=f"trigger {uuid} from {config.queue_name} .* still being deleted"):
        triggers._wait_deleted(clients, config.function_name, queue.arn, timeout=0.3)


def test_trigger_refused_when_visibility_is_shorter_than_the_function_timeout(env):
    config, clients = env
    table, queue = _table_and_queue(config, clients)
    role = iam.ensure_role(config, clients, table.arn, queue.arn)
    functions.ensure_function(config.with_(function_timeout=5, visibility_timeout=30), clients, role.arn)
    with pytest.raises(ResourceError, match=r"OrderQueue.*visibility timeout of 3s.*at least 5s"):
        triggers.ensure_mapping(config, clients, queue.arn, queue.url)


def test_up_twice_and_down_twice(env):
    from labkit.lab import Lab

    config, clients = env
    lab = Lab(config, clients)
    first = lab.up()
    second = lab.up()
    assert first == second
    assert all(lab.down().values())
    assert not any(lab.down().values())


def test_prefixed_pipelines_share_one_cloud(env):
    from labkit.lab import Lab

    config, clients = env
    Lab(config, clients).up()
    other = Lab(config.with_(prefix="s2"), clients)
    other.up()
    names = sorted(url.rsplit("/", 1)[-1] for url in clients("sqs").list_queues()["QueueUrls"])
    assert names == ["OrderDLQ", "OrderQueue", "s2-OrderDLQ", "s2-OrderQueue"]
    other.down()
    assert Config().table_name in clients("dynamodb").list_tables()["TableNames"]
