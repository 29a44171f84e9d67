"""Every use of moto's internals in labkit, one module per AWS service it patches.

moto mocks the AWS APIs but runs Lambda code only in Docker, and its own SQS trigger consumes
messages without running anything. The local cloud therefore reaches into moto where its public API
offers nothing: `awslambda` (the trigger off, Invoke routed to labkit's runtime, a function's code and
configuration), `iam` (requests checked against IAM as on AWS, the execution role's credentials),
`logs` (a function's log events written as AWS's service writes them), `cloudformation` (stack operations
answered by labkit's stack engine, `labkit.localcloud.stacks`), `lambdacode` (GetFunction's code location
a URL that downloads the package), and for speed `sqs` and `sns`
(moto's per-message work replaced with equivalents). Each module says what it replaces, in one
table (`labkit.localcloud.patching`) that its `install()` puts in place, and lists what a moto release
would have to keep (`problems()`, read from the same table); `check_compatible()` fails loudly, and
`tests/test_seam.py` with it, if a release moves any of it.

AWS's resource rules live in their own modules, installed from here: SNS delivery gated on the
queue's access policy (`delivery`), transitional resource states and answer shapes (`lifecycle`),
event source mappings' states (`mappingstates`), and mappings validated as Lambda validates them
(`mappings`).
"""

from __future__ import annotations

import threading

import moto

from labkit.localcloud import delivery, lifecycle, mappings, mappingstates
from labkit.localcloud.seam import awslambda, cloudformation, iam, lambdacode, logs, sns, sqs
from labkit.localcloud.seam.awslambda import InvokeHook, function_code, function_configuration, trigger_disabled
from labkit.localcloud.seam.iam import assume_role_as_lambda, disable_iam, enable_iam, iam_enforced
from labkit.localcloud.seam.logs import put_function_logs

__all__ = [
    "TESTED_MOTO",
    "assume_role_as_lambda",
    "check_compatible",
    "disable_iam",
    "enable_iam",
    "function_code",
    "function_configuration",
    "iam_enforced",
    "install",
    "put_function_logs",
    "trigger_disabled",
]

# The moto releases these hooks were tested against; pyproject.toml pins the same range.
TESTED_MOTO = ("5.1", "5.2")

_lock = threading.Lock()
_installed = False


def install(invoke_hook: InvokeHook | None = None) -> None:
    """Patch moto for the local cloud; idempotent. *invoke_hook* runs `lambda:Invoke` requests."""
    global _installed
    with _lock:
        if _installed:
            if invoke_hook is not None:
                awslambda.install(invoke_hook)
            return
        _check(include_cloudformation=False)
        awslambda.install(invoke_hook)
        iam.install()
        sqs.install()
        sns.install()
        delivery.install()
        lifecycle.install()
        mappingstates.install()
        # After mappingstates: validation runs before a mapping is made and given its first state.
        mappings.install()
        cloudformation.install()
        lambdacode.install()
        _installed = True


def check_compatible() -> None:
    """Fail with a clear message if moto no longer has the attributes the hooks replace."""
    _check(include_cloudformation=True)


def _check(include_cloudformation: bool) -> None:
    # install() leaves CloudFormation out: it checks itself when moto first imports it (importing it here
    # would cost every local cloud two seconds).
    version = moto.__version__
    problems = []
    if not any(version.startswith(v + ".") or version == v for v in TESTED_MOTO):
        problems.append(f"moto {version} is outside the tested range {', '.join(TESTED_MOTO)}")
    modules = [awslambda, iam, sqs, sns, logs, lambdacode, delivery, lifecycle, mappingstates, mappings]
    for module in [*modules, cloudformation] if include_cloudformation else modules:
        problems.extend(module.problems())
    if problems:
        raise RuntimeError("labkit's local cloud does not support this moto: " + "; ".join(problems))
