"""The pipeline as code: templates read and written, linted, packaged, compared, and exported from what was built."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest

from labkit import iac
from labkit.cfnyaml import dump_template, load_template
from labkit.cli import main
from labkit.config import Config
from labkit.errors import InputError
from labkit.experiments.scenarios import FAST
from labkit.iac.package import package_template, zip_path
from labkit.lab import Lab
from labkit.localcloud import LocalCloud
from labkit.resources.functions import handler_source

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    cloud = LocalCloud.in_process(Config.from_env({}, **FAST))
    yield cloud
    cloud.stop()


@pytest.fixture(scope="module")
def lab(cloud: LocalCloud) -> Lab:
    return Lab(cloud.config, cloud.clients, cloud=cloud)


# Reading and writing templates.


def test_short_form_intrinsics_read_as_cloudformation_reads_them():
    """`!Ref X` is {"Ref": "X"}, `!GetAtt A.B` {"Fn::GetAtt": ["A", "B"]}, `!Sub` {"Fn::Sub": ...}; a policy
    version stays the string 2012-10-17, never a date.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html"""
    template = load_template(
        "Resources:\n  P:\n    Type: T\n    Properties:\n      A: !Ref X\n      B: !GetAtt Q.Arn\n"
        "      C: !Sub '${AWS::Region}-x'\n      D: !If [Cond, 1, 2]\n      Version: 2012-10-17\n"
    )
    assert template["Resources"]["P"]["Properties"] == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Q", "Arn"]},
        "C": {"Fn::Sub": "${AWS::Region}-x"},
        "D": {"Fn::If": ["Cond", 1, 2]},
        "Version": "2012-10-17",
    }


def test_the_lab_template_survives_a_round_trip_through_yaml():
    template = load_template(iac.TEMPLATE_PATH.read_text())
    written = dump_template(template)
    assert "!GetAtt OrderQueue.Arn" in written and "!Ref OrderTopic" in written
    assert load_template(written) == template


def test_a_malformed_template_names_the_line():
    """CloudFormation answers "Template format error: YAML not well-formed" with where."""
    with pytest.raises(InputError, match=r"not well-formed YAML \(line 3, column 1\)"):
        load_template("Resources:\n  X: [\n")


# Linting.


def test_the_lab_template_is_clean_under_cfn_lint():
    """cfn-lint (offline, CloudFormation's and SAM's schemas) finds nothing in infra/template.yaml.
    https://github.com/aws-cloudformation/cfn-lint"""
    assert iac.lint_template(iac.TEMPLATE_PATH) == []


def test_cfn_lint_catches_a_key_type_aws_does_not_have():
    """A partition key typed `PARTITION` (the console's word) instead of `HASH` is an error cfn-lint reports at its line."""
    text = iac.TEMPLATE_PATH.read_text()
    line = text[: text.index("KeyType: HASH")].count("\n") + 1
    findings = iac.lint_template(text.replace("KeyType: HASH", "KeyType: PARTITION"))
    assert [(f.rule, f.level, f.line) for f in findings if f.line == line] == [("E3002", "error", line)]
    assert "'HASH' was expected" in str(findings[-1])


def test_the_lab_lints_its_template_and_a_students():
    """`lab.lint_template()`: cfn-lint's findings for infra/template.yaml (none), or for any template text."""
    assert Lab.lint_template() == []
    wrong = iac.TEMPLATE_PATH.read_text().replace("!GetAtt OrderQueue.Arn", "!GetAtt OrderQueue.QueueArn", 1)
    assert {f.rule for f in Lab.lint_template(wrong)} >= {"E1010"}


# Packaging.


def test_code_is_zipped_the_same_way_every_time(tmp_path):
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("y = 2\n")
    first = zip_path(tmp_path)
    assert zip_path(tmp_path) == first
    assert zipfile.ZipFile(BytesIO(first)).namelist() == ["code.py", "pkg/mod.py"]


def test_package_uploads_local_code_and_puts_its_s3_location_in_place(lab):
    """CodeUri of a SAM function becomes s3://bucket/md5 of the zip, as `aws cloudformation package` writes it.
    https://docs.aws.amazon.com/cli/latest/reference/cloudformation/package.html"""
    template = load_template(iac.TEMPLATE_PATH.read_text())
    packaged = package_template(template, iac.TEMPLATE_PATH.parent, lab.clients)
    uri = packaged["Resources"]["OrderProcessor"]["Properties"]["CodeUri"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert bucket == f"labkit-artifacts-{lab.clients.account_id}-us-east-1"
    body = lab.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert zipfile.ZipFile(BytesIO(body)).read("code.py").decode() == handler_source()
    assert (
        template["Resources"]["OrderProcessor"]["Properties"]["CodeUri"] == "../lambda/"
    )  # the original is left as it was


def test_package_names_a_code_path_that_is_missing(lab, tmp_path):
    template = {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "nowhere/"}}}}
    with pytest.raises(InputError, match="CodeUri of F names nowhere/, which does not exist next to the template"):
        package_template(template, tmp_path, lab.clients)


# Comparing.


def test_a_template_does_not_differ_from_itself():
    assert iac.diff_templates(iac.TEMPLATE_PATH, iac.TEMPLATE_PATH) == []


def test_a_changed_batch_size_is_the_one_difference():
    """The SAM template is compared after AWS's transform: the event's BatchSize is the mapping's."""
    changed = iac.TEMPLATE_PATH.read_text().replace("BatchSize: 1", "BatchSize: 10")
    (difference,) = iac.diff_templates(iac.TEMPLATE_PATH, changed)
    assert (difference.resource, difference.type, difference.path, difference.kind) == (
        "OrderProcessorOrderQueue",
        "AWS::Lambda::EventSourceMapping",
        "BatchSize",
        "changed",
    )
    assert (difference.left, difference.right) == (1, 10)


def test_the_lab_shows_the_differences_as_a_table():
    changed = iac.TEMPLATE_PATH.read_text().replace("maxReceiveCount: 3", "maxReceiveCount: 5")
    table = Lab.diff_templates(iac.TEMPLATE_PATH, changed)
    assert table.to_dict("records") == [
        {
            "resource": "OrderQueue",
            "type": "AWS::SQS::Queue",
            "change": "changed",
            "property": "RedrivePolicy.maxReceiveCount",
            "left": 3,
            "right": 5,
        }
    ]


# Exporting what was built.


@pytest.mark.slow
def test_an_exported_hand_built_pipeline_deploys_under_another_prefix_and_grades_the_same(lab, tmp_path):
    """Built step by step (as the notebooks do), exported from the describe APIs, deployed as a stack under the
    prefix p3: the stack's pipeline grades exactly as the original, probe included, and exporting it again gives
    the same template. https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/generate-IaC.html"""
    lab.up()
    lab.publish_order()
    lab.wait_until_drained(timeout=30)
    exported = lab.export_template(tmp_path / "template.yaml")
    assert exported.missing == []
    assert (tmp_path / "OrderProcessor-code" / "code.py").read_text() == handler_source()
    # Only cfn-lint's note that a local Code path needs `package`.
    assert {f.rule for f in iac.lint_template(tmp_path / "template.yaml")} == {"W3002"}

    result = lab.deploy_stack(tmp_path / "template.yaml", prefix="p3")
    assert result.ok, result.describe()
    stacked = lab.for_prefix("p3")
    stacked.publish_order()
    stacked.wait_until_drained(timeout=30)
    # The reads of both agree check by check; the probe (a bad message's three receives) runs on the copy alone.
    original, copy = lab.grade(probe=False), stacked.grade(probe=False)
    assert [(c.id, c.passed, c.points) for c in copy.checks] == [(c.id, c.passed, c.points) for c in original.checks]
    assert copy.score == original.score == original.max_score
    probed = stacked.grade(probe=True)
    assert probed.score == probed.max_score, probed.to_table()
    assert stacked.diff_templates(exported.template, stacked.export_template().template).empty
    assert stacked.delete_stack() is True


@pytest.mark.slow
def test_labkit_template_writes_the_template_and_its_code(local_server, monkeypatch, tmp_path, capsys):
    """`labkit template -o FILE` against `labkit serve`: the template and the function's code, fetched from
    GetFunction's Code.Location (a URL that downloads the package, as AWS's presigned one does).
    https://docs.aws.amazon.com/lambda/latest/api/API_FunctionCodeLocation.html"""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_server.endpoint_url)
    assert main(["template", "-o", str(tmp_path / "t.yaml")]) == 2
    assert "Nothing of the pipeline of prefix - was found" in capsys.readouterr().err
    Lab(local_server.config, local_server.clients).up()
    assert main(["template", "-o", str(tmp_path / "t.yaml")]) == 0
    written = capsys.readouterr().out.split()
    assert written == [str(tmp_path / "t.yaml"), str(tmp_path / "OrderProcessor-code" / "code.py")]
    template = load_template((tmp_path / "t.yaml").read_text())
    assert len(template["Resources"]) == 9
    assert template["Resources"]["OrderProcessor"]["Properties"]["Environment"] == {
        "Variables": {"TABLE_NAME": {"Ref": "OrdersTable"}}
    }
    assert json.loads(json.dumps(template["Parameters"]["Prefix"]))["Default"] == ""
