"""Security: least privilege that the local cloud enforces, the queue policy, and no secret in any output."""

import itertools
import json
import re
import secrets
import string
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from labkit import cli
from labkit.cli import common
from labkit.config import BASIC_EXECUTION_POLICY_ARN, MANAGED_POLICY_ARNS, Config
from labkit.experiments.reliability import measure, mixed_load
from labkit.lab import Lab
from labkit.localcloud import LocalCloud, seam
from labkit.observe.logs import function_log_records
from labkit.orders import MALFORMED_BODY, SAMPLE_ORDER, sample_order
from labkit.resources import sqs

ROOT = Path(__file__).resolve().parent.parent
FAST = {"function_timeout": 1, "visibility_timeout": 1}
DYNAMODB_FULL, SQS_FULL = MANAGED_POLICY_ARNS[0], MANAGED_POLICY_ARNS[1]


_PREFIXES = itertools.count(1)


@pytest.fixture(scope="module")
def enforcing_cloud():
    """One in-process local cloud that checks every request against IAM, for the module's tests."""
    cloud = LocalCloud.in_process(Config.from_env({}, enforce_iam=True, **FAST))
    yield cloud
    cloud.stop()
    assert not seam.iam_enforced()


@pytest.fixture
def enforced(request):
    """Build the pipeline with a role policy under a fresh prefix, on the enforcing cloud (or a server of its own)."""
    servers = []

    def start(role_policy, server=False):
        if server:
            servers.append(LocalCloud.server(Config.from_env({}, enforce_iam=True, **FAST)))
            cloud = servers[-1]
        else:
            cloud = request.getfixturevalue("enforcing_cloud")
        lab = Lab(cloud.config.with_(prefix=f"p{next(_PREFIXES)}", role_policy=role_policy), cloud=cloud)
        lab.up()
        return lab

    yield start
    for server in servers:
        server.stop()


def role_client(lab, service):
    """A client with the execution role's own credentials, as the handler gets them."""
    role_arn = lab.clients("iam").get_role(RoleName=lab.config.role_name)["Role"]["Arn"]
    creds = seam.assume_role_as_lambda(role_arn, "security-test")
    return boto3.client(
        service,
        region_name=lab.config.region,
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"],
    )


def denied(call):
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")


# ---------------------------------------------------------------- IAM enforced in the local cloud


# First in the module: the server must be the only local cloud of the process while it runs.
@pytest.mark.slow
def test_enforcement_over_http_with_the_least_privilege_role(enforced):
    """GIVEN `labkit serve` with IAM enforced, reached through AWS_ENDPOINT_URL with the local key
    WHEN orders go through THEN they are stored, and unknown keys are refused."""
    lab = enforced("least-privilege", server=True)
    lab.publish_orders([sample_order(orderId="H1"), sample_order(orderId="H2")])

    assert lab.wait_until_drained(timeout=20)["orders"] == 2
    stranger = boto3.client(
        "sqs",
        endpoint_url=lab.config.endpoint_url,
        region_name=lab.config.region,
        aws_access_key_id="AKIA" + "X" * 16,
        aws_secret_access_key="x" * 40,
    )
    with pytest.raises(ClientError, match=r"InvalidClientTokenId|security token"):
        stranger.list_queues()


def test_least_privilege_role_stores_orders_and_may_do_nothing_else(enforced):
    """GIVEN IAM enforced and the least-privilege role WHEN an order is published THEN it is stored;
    and with the role's credentials only PutItem/UpdateItem on this table and its queue are allowed."""
    lab = enforced("least-privilege")
    lab.publish_order()
    lab.wait_until_drained(timeout=20)
    assert lab.get_order(SAMPLE_ORDER["orderId"])["status"] == "new"

    ddb, queue = role_client(lab, "dynamodb"), role_client(lab, "sqs")
    item = {"orderId": {"S": "probe"}}
    ddb.put_item(TableName=lab.config.table_name, Item=item)
    lab.clients("dynamodb").create_table(
        TableName="Other",
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert denied(lambda: ddb.put_item(TableName="Other", Item=item))  # another table
    assert denied(lambda: ddb.delete_item(TableName=lab.config.table_name, Key=item))  # another action
    assert denied(lambda: ddb.scan(TableName=lab.config.table_name))
    assert denied(lambda: ddb.list_tables())
    queue_url = sqs.get_queue(lab.clients, lab.config.queue_name).url
    dlq_url = sqs.get_queue(lab.clients, lab.config.dlq_name).url
    queue.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    assert denied(lambda: queue.receive_message(QueueUrl=dlq_url))  # another queue
    assert denied(lambda: queue.send_message(QueueUrl=queue_url, MessageBody="x"))
    assert denied(lambda: role_client(lab, "iam").list_roles())


@pytest.mark.slow
def test_the_seeds_policies_work_and_without_dynamodb_write_orders_reach_the_dlq(enforced):
    """GIVEN IAM enforced and the seed's managed policies THEN an order is stored.
    WHEN the role keeps only AWSLambdaBasicExecutionRole THEN each of 3 receives fails with AccessDenied and the
    order lands in the DLQ; once the write permission is back, the redriven order is stored."""
    lab = enforced("managed")
    iam = lab.clients("iam")
    attached = iam.list_attached_role_policies(RoleName=lab.config.role_name)["AttachedPolicies"]
    assert {p["PolicyArn"] for p in attached} == set(MANAGED_POLICY_ARNS)
    lab.publish_order(sample_order(orderId="seed-policies"))
    assert lab.wait_until_drained(timeout=20)["orders"] == 1

    for policy in (DYNAMODB_FULL, SQS_FULL):
        iam.detach_role_policy(RoleName=lab.config.role_name, PolicyArn=policy)
    attached = iam.list_attached_role_policies(RoleName=lab.config.role_name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [BASIC_EXECUTION_POLICY_ARN]

    lab.publish_order()
    counts = lab.wait_until_drained(timeout=20)

    assert counts["orders"] == 1 and counts["dlq_visible"] == 1
    records = function_log_records(lab, order_id=SAMPLE_ORDER["orderId"])
    assert [r.receive_count for r in records] == [1, 2, 3]
    for r in records:
        assert r.outcome == "error"
        role = f"arn:aws:sts::123456789012:assumed-role/{lab.config.role_name}/{lab.config.function_name}"
        assert r.reason.startswith(f"AccessDeniedException: User: {role} is not authorized")
        table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{lab.config.table_name}"
        assert f"dynamodb:PutItem on resource: {table}" in r.reason
        assert "allow dynamodb:PutItem in the function's execution role" in r.reason

    iam.attach_role_policy(RoleName=lab.config.role_name, PolicyArn=DYNAMODB_FULL)
    assert lab.redrive() == 1
    lab.wait_until_drained(timeout=20)
    assert lab.get_order(SAMPLE_ORDER["orderId"]) is not None


# ---------------------------------------------------------------- the queue policy


def _allows(policy, principal_service, action, resource, source_arn):
    """Whether an Allow statement of a resource policy matches one request; only what the lab's policy uses
    (a service principal, exact action and resource, ArnEquals on aws:SourceArn) is understood."""
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        conditions = statement.get("Condition", {})
        if set(conditions) - {"ArnEquals"} or set(conditions.get("ArnEquals", {})) - {"aws:SourceArn"}:
            continue  # a condition this check does not understand: assume it does not match
        if (
            statement["Effect"] == "Allow"
            and statement.get("Principal") == {"Service": principal_service}
            and action in actions
            and statement["Resource"] == resource
            and conditions.get("ArnEquals", {}).get("aws:SourceArn", source_arn) == source_arn
        ):
            return True
    return False


def test_queue_policy_lets_only_this_topic_send_through_sns(enforced):
    """The queue policy allows sqs:SendMessage to sns.amazonaws.com only with aws:SourceArn = this topic
    (no confused deputy: another topic, in any account, cannot use SNS to write into the queue);
    a policy someone loosened is put back by ensuring the queues again."""
    built_lab = enforced("least-privilege")
    queue = sqs.get_queue(built_lab.clients, built_lab.config.queue_name)
    attributes = built_lab.clients("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["Policy"])
    policy = json.loads(attributes["Attributes"]["Policy"])
    topic = built_lab.ensure_topic().arn
    other_topic = topic.replace(built_lab.config.topic_name, "SomeoneElsesTopic").replace(
        "123456789012", "999999999999"
    )

    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": topic}}
    assert _allows(policy, "sns.amazonaws.com", "sqs:SendMessage", queue.arn, topic)
    assert not _allows(policy, "sns.amazonaws.com", "sqs:SendMessage", queue.arn, other_topic)
    assert not _allows(policy, "s3.amazonaws.com", "sqs:SendMessage", queue.arn, topic)
    assert not _allows(policy, "sns.amazonaws.com", "sqs:DeleteMessage", queue.arn, topic)
    assert "*" not in json.dumps(policy)

    # Someone opens the queue to every principal; ensuring the queues again puts the tight policy back.
    open_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": queue.arn}],
    }
    client = built_lab.clients("sqs")
    client.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(open_policy)})
    built_lab.ensure_queues()
    attributes = client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["Policy"])
    assert json.loads(attributes["Attributes"]["Policy"]) == policy


# ---------------------------------------------------------------- no secret in any output

ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
# 40 characters of the secret-key alphabet with upper case, lower case and a digit: a secret's shape.
SECRET_SHAPED = re.compile(
    r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*\d)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
)
CREDENTIAL_NAMES = re.compile(r"(?i)(secret_?access_?key|session_?token|security_?token)\W{1,4}[\"']?[^\s\"',}]{4,}")


def find_secrets(text, values):
    """Every credential-looking string in *text*, and every one of *values* that appears in it."""
    found = [m.group(0) for m in ACCESS_KEY_ID.finditer(text)]
    found += [m.group(0) for m in SECRET_SHAPED.finditer(text)]
    found += [m.group(0) for m in CREDENTIAL_NAMES.finditer(text)]
    found += [value for value in values if value and value in text]
    return found


def test_the_scanner_finds_what_it_looks_for():
    """The scan itself must be able to fail: each kind of leak is found."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert find_secrets(f"key AKIAIOSFODNN7EXAMPLE and {secret}.", ()) == ["AKIAIOSFODNN7EXAMPLE", secret]
    assert find_secrets('{"SessionToken": "FQoGZXIvYXdzEXAMPLE"}', ()) == ['SessionToken": "FQoGZXIvYXdzEXAMPLE']
    assert find_secrets("AWS_SECRET_ACCESS_KEY=testing", ()) == ["SECRET_ACCESS_KEY=testing"]
    assert find_secrets("env says hunter2-token", ("hunter2-token",)) == ["hunter2-token"]
    assert find_secrets("a sha1 0123456789abcdef0123456789abcdef01234567 and ASIA-not", ()) == []


def _random(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


@pytest.mark.slow
def test_no_secret_reaches_logs_reports_cli_output_or_notebooks(enforced, monkeypatch, capsys):
    """GIVEN credentials in the environment and a handler running with its role's temporary credentials
    WHEN orders (good and bad) go through and every report and CLI view is produced
    THEN none of them holds a key id, a secret, a session token or any credential value in use."""
    env_values = {
        "AWS_ACCESS_KEY_ID": "AKIA" + _random(string.ascii_uppercase + string.digits, 16),
        "AWS_SECRET_ACCESS_KEY": _random(string.ascii_letters + string.digits + "/+", 40),
        "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2Vj" + _random(string.ascii_letters + string.digits, 60),
    }
    for name, value in env_values.items():
        monkeypatch.setenv(name, value)
    lab = enforced("least-privilege")
    lab.publish_orders([SAMPLE_ORDER, MALFORMED_BODY, {**SAMPLE_ORDER, "quantity": "2"}])
    lab.wait_until_drained(timeout=20)
    role_keys = [v for _, creds in lab.cloud.runtime._credentials.values() for v in creds.values()]
    assert len(role_keys) >= 3, "the handler did not run with the role's own credentials"
    in_use = [*env_values.values(), *role_keys]

    outputs = {}
    events = lab.clients("logs").filter_log_events(logGroupName=f"/aws/lambda/{lab.config.function_name}")["events"]
    outputs["CloudWatch log lines"] = "\n".join(e["message"] for e in events)
    outputs["invoke log tail"] = lab.invoke({"Records": [{"messageId": "m", "body": MALFORMED_BODY}]}).log_tail
    outputs["grade report"] = lab.grade().to_json()
    outputs["reliability figures"] = json.dumps(measure(lab, mixed_load(orders=1, malformed=0)).as_dict())
    monkeypatch.setattr(common, "connected_lab", lambda **_: lab)
    for argv in (["status", "--json"], ["orders", "--json"], ["orders"], ["redrive"], ["grade", "--json"], ["up"]):
        cli.main(argv)
        out, err = capsys.readouterr()
        outputs[f"labkit {' '.join(argv)}"] = out + err
    assert len(outputs["CloudWatch log lines"]) > 500 and "AccessDenied" not in outputs["CloudWatch log lines"]

    leaks = {where: found for where, text in outputs.items() if (found := find_secrets(text, in_use))}
    assert leaks == {}


def test_no_secret_in_notebook_outputs():
    """The saved outputs of every notebook hold no key id, secret or session token."""
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        pytest.skip("no notebooks in notebooks/ yet")
    leaks = {}
    for notebook in notebooks:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        outputs = json.dumps([c.get("outputs", []) for c in cells if c["cell_type"] == "code"], ensure_ascii=False)
        if found := find_secrets(outputs.replace("\\n", "\n"), ()):
            leaks[notebook.name] = found
    assert leaks == {}
