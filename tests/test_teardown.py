"""Safe teardown: only what labkit built (its tags, this prefix) is deleted; on AWS only after a yes."""

import itertools

import boto3
import pytest

from labkit import cli
from labkit.config import Config
from labkit.lab import Lab
from labkit.localcloud import LocalCloud
from labkit.resources import dynamodb, sqs, teardown
from labkit.session import Clients

REGION = "us-east-1"
_PREFIXES = itertools.count(1)


# One in-process cloud for the module (moto costs seconds to start); each test uses its own prefixes.
# It also stands in for the AWS account of the `aws` backend tests: in-process moto answers every boto3 call.
@pytest.fixture(scope="module")
def cloud():
    cloud = LocalCloud.in_process(Config.from_env({}, function_timeout=1, visibility_timeout=1))
    yield cloud
    cloud.stop()


@pytest.fixture
def make_lab(cloud):
    def make(prefix):
        return Lab(cloud.config.with_(prefix=prefix), cloud=cloud)

    return make


def _table(client, name):
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_down_deletes_all_that_labkit_built(make_lab):
    lab = make_lab("d1")
    lab.up()

    chosen = teardown.plan(lab.config, lab.clients)

    assert [f.kind for f in chosen.delete] == list(teardown.KINDS)
    assert chosen.keep == ()
    assert all(lab.down().values())
    assert teardown.plan(lab.config, lab.clients).found == ()
    assert not any(lab.down().values())


def test_foreign_resources_with_similar_names_survive_down(make_lab):
    """GIVEN resources labkit did not create: some with similar names, and a table and DLQ with the very names
    the pipeline uses (made by hand, so untagged) that `up()` adopted
    WHEN `down()` runs THEN it deletes the five resources it created and nothing else."""
    lab = make_lab("s1")
    ddb, sqs_client, sns_client = lab.clients("dynamodb"), lab.clients("sqs"), lab.clients("sns")
    for name in ("s1-Orders", "s1-Orders-archive", "Orders", "s2-Orders"):
        _table(ddb, name)
    ddb.put_item(TableName="s1-Orders", Item={"orderId": {"S": "kept-by-hand"}})
    for name in ("s1-OrderDLQ", "s1-OrderQueue-old", "OrderQueue"):
        sqs_client.create_queue(QueueName=name)
    sns_client.create_topic(Name="s1-OrderTopic2")
    # Another student's pipeline, tagged by labkit with another prefix.
    other = Lab(lab.config.with_(prefix="s2"), lab.clients)
    other.ensure_queues()
    lab.up()

    chosen = teardown.plan(lab.config, lab.clients)
    removed = lab.down()

    assert {f.kind for f in chosen.keep} == {"table", "dlq"}
    assert all("labkit did not create it" in f.note for f in chosen.keep)
    assert removed == {k: k not in ("table", "dlq") for k in teardown.KINDS}
    tables = {t for t in ddb.list_tables()["TableNames"] if "Orders" in t}
    assert tables == {"s1-Orders", "s1-Orders-archive", "Orders", "s2-Orders"}
    assert dynamodb.get_order(lab.config, lab.clients, "kept-by-hand") == {"orderId": "kept-by-hand"}
    queues = {url.rsplit("/", 1)[-1] for url in sqs_client.list_queues()["QueueUrls"]}
    assert queues == {"s1-OrderDLQ", "s1-OrderQueue-old", "OrderQueue", "s2-OrderQueue", "s2-OrderDLQ"}
    topics = {t["TopicArn"].rsplit(":", 1)[-1] for t in sns_client.list_topics()["Topics"]}
    assert topics == {"s1-OrderTopic2", "s2-OrderTopic"}
    # Clean up by hand what labkit rightly would not.
    other.down()
    for name in ("s1-Orders", "s1-Orders-archive", "Orders", "s2-Orders"):
        ddb.delete_table(TableName=name)
    for name in ("s1-OrderDLQ", "s1-OrderQueue-old", "OrderQueue"):
        sqs_client.delete_queue(QueueUrl=sqs_client.get_queue_url(QueueName=name)["QueueUrl"])
    sns_client.delete_topic(TopicArn=next(t["TopicArn"] for t in sns_client.list_topics()["Topics"]))


def test_untagged_deletes_what_a_student_built_without_the_tags_and_nothing_of_other_names(make_lab):
    """GIVEN a table and a DLQ a student created in an exercise without labkit's tags, beside a table of another name
    WHEN `down(untagged=True)` runs THEN both of the pipeline's names go, the other table stays."""
    lab = make_lab("u1")
    ddb, sqs_client = lab.clients("dynamodb"), lab.clients("sqs")
    for name in ("u1-Orders", "u1-Orders-archive"):
        _table(ddb, name)
    sqs_client.create_queue(QueueName="u1-OrderDLQ")
    assert {f.kind for f in teardown.plan(lab.config, lab.clients).keep} == {"table", "dlq"}

    removed = lab.down(untagged=True)

    assert removed["table"] and removed["dlq"]
    assert {t for t in ddb.list_tables()["TableNames"] if t.startswith("u1-")} == {"u1-Orders-archive"}
    ddb.delete_table(TableName="u1-Orders-archive")


def test_the_plan_warns_what_deleting_discards(make_lab):
    lab = make_lab("w1")
    lab.up()
    dlq = sqs.get_queue(lab.clients, lab.config.dlq_name)
    lab.clients("sqs").send_message(QueueUrl=dlq.url, MessageBody="a failed order")

    notes = {f.kind: f.note for f in teardown.plan(lab.config, lab.clients).delete}

    assert notes["dlq"] == "holds 1 message(s), deleted with it"
    lab.down()


@pytest.fixture
def aws_account(cloud, monkeypatch):
    """A lab on the `aws` backend with a table and a DLQ; moto stands in for the account, nothing real is reached."""
    monkeypatch.setenv("LABKIT_BACKEND", "aws")
    monkeypatch.setenv("LABKIT_PREFIX", f"t{next(_PREFIXES)}")
    config = Config.from_env()
    clients = Clients(config)
    dynamodb.ensure_table(config, clients)
    sqs.ensure_dlq(config, clients)
    lab = Lab(config, clients)
    yield lab
    lab.down(confirm=True)


def test_on_aws_down_needs_confirmation(aws_account):
    lab = aws_account

    with pytest.raises(teardown.ConfirmationRequired, match=r"deletes 2 resource\(s\) from AWS account 123456789012"):
        lab.down()

    assert lab.counts()["orders"] == 0
    removed = lab.down(confirm=True)
    assert removed["table"] and removed["dlq"]
    assert lab.counts()["orders"] is None


def test_on_aws_labkit_down_asks_first(aws_account, monkeypatch, capsys):
    answers = iter(["", "n", "y"])
    monkeypatch.setattr("builtins.input", lambda question: print(question, end="") or next(answers))

    for _ in range(2):  # Enter, then "n": both mean no
        assert cli.main(["down"]) == 1
        out = capsys.readouterr().out
        assert (
            f"table    {aws_account.config.table_name}" in out and "Delete 2 resource(s)? [y/N] nothing deleted" in out
        )
    assert aws_account.counts()["orders"] == 0

    assert cli.main(["down"]) == 0
    assert capsys.readouterr().out.endswith("deleted: dlq, table\n")
    assert aws_account.counts()["orders"] is None


def test_on_aws_labkit_down_yes_skips_the_question(aws_account, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda question: pytest.fail("asked although --yes"))

    assert cli.main(["down", "--yes"]) == 0
    assert capsys.readouterr().out == "deleted: dlq, table\n"


def test_on_aws_labkit_down_without_a_terminal_deletes_nothing(aws_account, monkeypatch, capsys):
    def no_terminal(question):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    assert cli.main(["down"]) == 1
    assert aws_account.counts()["orders"] == 0


def test_a_foreign_resource_on_aws_survives_labkit_down(aws_account, capsys):
    """GIVEN an untagged table with the lab's own name (made in the console) WHEN `labkit down --yes`
    THEN it survives, and the command says why."""
    name = aws_account.config.table_name
    client = boto3.client("dynamodb", region_name=REGION)
    client.delete_table(TableName=name)
    _table(client, name)

    assert cli.main(["down", "--yes"]) == 0
    out = capsys.readouterr().out

    assert out.startswith(f"deleted: dlq\nkept:    table    {name}  (no labkit:lab=orders-lab tag for this prefix")
    assert client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    assert teardown.required_tags(aws_account.config) == {
        "labkit:lab": "orders-lab",
        "labkit:prefix": aws_account.config.prefix,
    }
    client.delete_table(TableName=name)
