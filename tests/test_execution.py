"""Execution environments: the student's function runs as on AWS, in a process of its own.

Each test cites the AWS page whose behaviour it checks. The fault handlers at the end each run
behind their own queue and dead-letter queue at once, beside a good function, as a class of
students' mistakes would on one account.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from function_support import create_function, create_role, package
from runtime_paths import PATHS, runtime_path

from labkit.config import Config
from labkit.localcloud import LocalCloud


@pytest.fixture(scope="module", params=PATHS)
def cloud(request: pytest.FixtureRequest) -> Any:
    with runtime_path(request.param):
        cloud = LocalCloud.in_process(Config.from_env({}))
    yield cloud
    pids = cloud.runtime.process_ids()
    cloud.stop()
    for pid in pids:
        assert not _running(pid), f"environment {pid} outlived the local cloud"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


@pytest.fixture(scope="module")
def role(cloud: Any) -> str:
    return create_role(cloud.clients("iam"), "exec-role")


@pytest.fixture(scope="module")
def deploy(cloud: Any, role: str) -> Callable[..., str]:
    def deploy(name: str, source: str, timeout: int = 3, memory: int = 128, **extra: Any) -> str:
        return create_function(cloud.clients("lambda"), name, role, source, timeout, MemorySize=memory, **extra)

    return deploy


def invoke(cloud: Any, name: str, event: Any = None) -> tuple[dict[str, Any] | Any, str | None]:
    reply = cloud.clients("lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}))
    return json.loads(reply["Payload"].read() or "null"), reply.get("FunctionError")


def log_messages(cloud: Any, name: str) -> list[str]:
    events = cloud.clients("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return [event["message"] for event in events]


def test_warm_environment_keeps_module_state_and_new_code_starts_cold(cloud: Any, deploy: Callable[..., str]) -> None:
    """A warm environment is reused; new code gets a new one.
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    # An environment is told apart by a token drawn when it loads the code: on Linux each runtime is process 1
    # of a PID namespace of its own, so pids do not tell.
    source = (
        "import os\nCOUNT = 0\nTOKEN = os.urandom(8).hex()\ndef lambda_handler(e, c):\n    global COUNT\n"
        "    COUNT += 1\n    return [COUNT, TOKEN, os.getpid(), '{tag}']\n"
    )
    deploy("warm", source.format(tag="v1"))
    first, _ = invoke(cloud, "warm")
    second, _ = invoke(cloud, "warm")
    assert first[0] == 1 and second[0] == 2 and first[1] == second[1]
    assert first[2] == second[2] != os.getpid()
    cloud.clients("lambda").update_function_code(
        FunctionName="warm", ZipFile=package({"code.py": source.format(tag="v2")})
    )
    third, _ = invoke(cloud, "warm")
    assert third[0] == 1 and third[3] == "v2" and third[1] != first[1]
    reports = [m for m in log_messages(cloud, "warm") if m.startswith("REPORT")]
    assert len(reports) == 3
    assert "Init Duration" in reports[0] and "Init Duration" not in reports[1]
    assert all("\tMax Memory Used: " in r and "\tMemory Size: 128 MB" in r for r in reports)


def test_environment_is_the_sandbox_not_the_host(cloud: Any, deploy: Callable[..., str]) -> None:
    """Only Lambda's reserved variables, the function's own and the role's credentials; the context is the runtime's.
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """
    os.environ["LABKIT_HOST_SECRET"] = "leak"
    try:
        deploy(
            "sandbox",
            "import os, sys\ndef lambda_handler(e, c):\n    return {'env': dict(os.environ), 'memory': c.memory_limit_in_mb,"
            " 'remaining': c.get_remaining_time_in_millis(), 'group': c.log_group_name, 'path': sys.path}\n",
            Environment={"Variables": {"TABLE_NAME": "Orders"}},
        )
        reply, error = invoke(cloud, "sandbox")
    finally:
        del os.environ["LABKIT_HOST_SECRET"]
    assert error is None
    env = reply["env"]
    assert "LABKIT_HOST_SECRET" not in env and "HOME" not in env and "VIRTUAL_ENV" not in env
    assert env["TABLE_NAME"] == "Orders"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "sandbox" and env["_HANDLER"] == "code.lambda_handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_SESSION_TOKEN"]
    assert reply["memory"] == "128"  # the runtime client gives a string
    assert 0 < reply["remaining"] <= 3000
    assert reply["group"] == "/aws/lambda/sandbox"
    assert not any("site-packages" in entry for entry in reply["path"])


def test_a_package_aws_lacks_fails_to_import_as_on_aws(cloud: Any, deploy: Callable[..., str]) -> None:
    """`import pandas` works in the lab's virtualenv but not on Lambda: Runtime.ImportModuleError.
    https://docs.aws.amazon.com/lambda/latest/dg/python-package.html
    """
    deploy("pandas", "import pandas\ndef lambda_handler(e, c):\n    return 1\n")
    reply, error = invoke(cloud, "pandas")
    assert error == "Unhandled"
    assert reply["errorType"] == "Runtime.ImportModuleError"
    assert reply["errorMessage"] == "Unable to import module 'code': No module named 'pandas'"
    messages = log_messages(cloud, "pandas")
    assert any(m.startswith("[ERROR] Runtime.ImportModuleError: Unable to import module 'code'") for m in messages)
    assert any(m.startswith("INIT_REPORT Init Duration") and "Status: error" in m for m in messages)


def test_functions_do_not_see_each_others_modules(cloud: Any, deploy: Callable[..., str]) -> None:
    """Each function has only its own deployment package under /var/task.
    https://docs.aws.amazon.com/lambda/latest/dg/python-package.html
    """
    deploy(
        "owner",
        "import helper\ndef lambda_handler(e, c):\n    return helper.VALUE\n",
        files={"helper.py": "VALUE = 7\n"},
    )
    deploy("borrower", "import helper\ndef lambda_handler(e, c):\n    return helper.VALUE\n")
    assert invoke(cloud, "owner") == (7, None)
    reply, error = invoke(cloud, "borrower")
    assert error == "Unhandled" and reply["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'helper'" in reply["errorMessage"]


def test_an_error_shows_the_functions_own_frames_under_var_task(cloud: Any, deploy: Callable[..., str]) -> None:
    """The error's stackTrace and the log's traceback name /var/task/code.py and the line.
    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    """
    deploy("keyerror", "def lambda_handler(event, context):\n    return event['orderId']\n")
    reply, error = invoke(cloud, "keyerror", {"x": 1})
    assert error == "Unhandled"
    assert reply["errorType"] == "KeyError" and reply["errorMessage"] == "'orderId'"
    assert reply["requestId"]
    assert len(reply["stackTrace"]) == 1 and reply["stackTrace"][0].startswith('  File "/var/task/code.py", line 2,')
    logged = [m for m in log_messages(cloud, "keyerror") if m.startswith("[ERROR]")]
    assert logged and logged[0].startswith("[ERROR] KeyError: 'orderId'\rTraceback (most recent call last):")
    assert '/var/task/code.py", line 2, in lambda_handler' in logged[0]
    assert "labkit" not in logged[0]


FAULTS = {
    "loops": (
        "def lambda_handler(e, c):\n    while True:\n        pass\n",
        "Sandbox.Timedout",
        "Task timed out after 1.00 seconds",
    ),
    "sleeps": (
        "import time\ndef lambda_handler(e, c):\n    time.sleep(30)\n",
        "Sandbox.Timedout",
        "Task timed out after 1.00 seconds",
    ),
    "memory": (
        "def lambda_handler(e, c):\n    block = bytearray(400 * 1024 * 1024)\n    return len(block)\n",
        "Runtime.OutOfMemory",
        "Error: Runtime exited with error: signal: killed",
    ),
    "sysexit": (
        "import sys\ndef lambda_handler(e, c):\n    sys.exit(1)\n",
        "Runtime.ExitError",
        "Error: Runtime exited with error: exit status 1",
    ),
    "osexit": (
        "import os\ndef lambda_handler(e, c):\n    os._exit(3)\n",
        "Runtime.ExitError",
        "Error: Runtime exited with error: exit status 3",
    ),
    "segfault": (
        "import ctypes\ndef lambda_handler(e, c):\n    ctypes.string_at(0)\n",
        "Runtime.ExitError",
        "Error: Runtime exited with error: signal: segmentation fault",
    ),
    "importraises": (
        "raise RuntimeError('bad config')\ndef lambda_handler(e, c):\n    return 1\n",
        "RuntimeError",
        "bad config",
    ),
    "pandas": (
        "import pandas\ndef lambda_handler(e, c):\n    return 1\n",
        "Runtime.ImportModuleError",
        "No module named 'pandas'",
    ),
    "prints": (
        "def lambda_handler(e, c):\n    print('x' * (10 * 1024 * 1024))\n    raise ValueError('after printing')\n",
        "ValueError",
        "after printing",
    ),
    "unencodable": (
        "def lambda_handler(e, c):\n    return {1, 2}\n",
        "Runtime.MarshalError",
        "Unable to marshal response",
    ),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_faulty_handler_fails_its_invocation_as_on_aws(cloud: Any, deploy: Callable[..., str], name: str) -> None:
    """Timeouts, memory, exits, crashes, init and marshal errors fail the invocation with AWS's error type.
    https://repost.aws/knowledge-center/lambda-runtime-error
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
    """
    source, error_type, message = FAULTS[name]
    function = deploy(f"fault-{name}", source, timeout=1)
    started = time.monotonic()
    reply, error = invoke(cloud, function)
    assert time.monotonic() - started < 15
    assert error == "Unhandled"
    assert reply["errorType"] == error_type
    assert message in reply["errorMessage"]
    # The service itself is unharmed: another function answers at once.
    deploy(f"fine-after-{name}", "def lambda_handler(e, c):\n    return 'ok'\n")
    assert invoke(cloud, f"fine-after-{name}") == ("ok", None)


@pytest.mark.slow
def test_faulty_handlers_behind_queues_end_in_their_dlqs_while_a_good_one_runs(
    cloud: Any, deploy: Callable[..., str]
) -> None:
    """Each failed message is retried and moved to the DLQ after maxReceiveCount (3) receives; none is lost.
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#services-sqs-errorhandling
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
    """
    sqs, lam = cloud.clients("sqs"), cloud.clients("lambda")
    dlqs = {}
    names = [*sorted(FAULTS), "good"]
    for name in names:
        dlq = sqs.create_queue(QueueName=f"q-{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(
            QueueName=f"q-{name}",
            Attributes={
                "VisibilityTimeout": "2",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        source = (
            FAULTS[name][0] if name in FAULTS else "def lambda_handler(e, c):\n    return {'batchItemFailures': []}\n"
        )
        deploy(f"q-{name}", source, timeout=1)
        lam.create_event_source_mapping(FunctionName=f"q-{name}", EventSourceArn=queue_arn, BatchSize=1)
        dlqs[name] = (queue, dlq)
    cloud.service.refresh()
    for name in names:
        sqs.send_message(QueueUrl=dlqs[name][0], MessageBody=json.dumps({"orderId": name}))

    def depth(url: str) -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if all(depth(dlqs[name][1]) == 1 for name in FAULTS) and depth(dlqs["good"][0]) == 0:
            break
        time.sleep(0.5)
    for name in FAULTS:
        queue, dlq = dlqs[name]
        assert depth(queue) == 0, name
        moved = sqs.receive_message(QueueUrl=dlq, AttributeNames=["ApproximateReceiveCount"])["Messages"]
        assert json.loads(moved[0]["Body"]) == {"orderId": name}
        assert int(moved[0]["Attributes"]["ApproximateReceiveCount"]) >= 3
    assert depth(dlqs["good"][0]) == 0 and depth(dlqs["good"][1]) == 0


# Each handler writes its resident memory (from /proc/self/status) before it fails.
RSS = "def rss_kb():\n    for line in open('/proc/self/status'):\n        if line.startswith('VmRSS:'):\n            return int(line.split()[1])\nprint('RSS', rss_kb())\n"
FAILED_RUNS = {
    "init": (RSS + "raise RuntimeError('bad config')\ndef lambda_handler(e, c):\n    return 1\n", "Status: error"),
    "timeout": (
        "def lambda_handler(e, c):\n"
        + "".join("    " + line + "\n" for line in RSS.splitlines())
        + "    while True:\n        pass\n",
        "Status: timeout",
    ),
    "exit": (
        "import sys\ndef lambda_handler(e, c):\n"
        + "".join("    " + line + "\n" for line in RSS.splitlines())
        + "    sys.exit(1)\n",
        "Error Type: Runtime.ExitError",
    ),
}


@pytest.mark.parametrize("kind", sorted(FAILED_RUNS))
def test_a_failed_invocations_report_gives_the_memory_really_used(
    cloud: Any, deploy: Callable[..., str], kind: str
) -> None:
    """REPORT's Max Memory Used is what the environment held, also when it failed at init, timed out or exited.
    https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
    """
    source, status = FAILED_RUNS[kind]
    name = deploy(f"report-{kind}", source, timeout=1, memory=256)
    _, error = invoke(cloud, name)
    assert error == "Unhandled"
    messages = log_messages(cloud, name)
    rss_mb = int(next(m for m in messages if m.startswith("RSS ")).split()[1]) / 1024
    report = next(m for m in messages if m.startswith("REPORT"))
    assert status in report and "\tMemory Size: 256 MB\t" in report
    used = int(report.split("Max Memory Used: ")[1].split(" MB")[0])
    # The environment's own figure: at least what the handler saw it hold, nowhere near the 256 MB of MemorySize.
    assert rss_mb - 1 <= used <= rss_mb + 24, (rss_mb, report)


def test_the_answer_is_encoded_as_awslambdarics_encoder_does(cloud: Any, deploy: Callable[..., str]) -> None:
    """A handler's return value becomes JSON as the runtime client encodes it: DynamoDB's Decimal as a number.
    https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html
    """
    deploy(
        "decimal",
        "from decimal import Decimal\ndef lambda_handler(e, c):\n    return {'total': Decimal('19.99'), 'city': 'Köln'}\n",
    )
    assert invoke(cloud, "decimal") == ({"total": 19.99, "city": "Köln"}, None)


def test_linux_with_awslambdaric_forks_by_default_and_the_portable_path_is_one_setting_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LABKIT_LOCAL_RUNTIME chooses how environments start: `auto` (the fork server here) or `portable`."""
    from labkit.errors import ConfigError
    from labkit.localcloud.launch import chosen_path

    assert chosen_path() == "fork"
    monkeypatch.setenv("LABKIT_LOCAL_RUNTIME", "portable")
    assert chosen_path() == "portable"
    monkeypatch.setenv("LABKIT_LOCAL_RUNTIME", "fast")
    with pytest.raises(ConfigError, match="LABKIT_LOCAL_RUNTIME='fast'"):
        chosen_path()
