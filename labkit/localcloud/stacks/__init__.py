"""CloudFormation in the local cloud: stacks deployed through the same AWS APIs a student calls.

moto's CloudFormation creates what it knows from its own models, skips the rest without a word and
answers `CREATE_COMPLETE` at once. Here instead a stack is what AWS makes of it: the template is
checked (`template`: parameters, conditions, intrinsic functions, the order of creation), the SAM
transform is AWS's own translator (`transform`), each resource is created in its own thread by a
provisioner (`data`, `compute`) that calls the local cloud's public API, so the rules it enforces for
a student's calls (queue policies, event source mappings, lifecycle states) hold for a stack too, and
every step leaves the stack events AWS writes (`runner`). `engine` answers the CloudFormation API from
that state; `labkit.localcloud.seam.cloudformation` puts it in front of moto's.

May import: the core, boto3, aws-sam-translator and cfn-lint's resource schemas; never moto.
"""

from labkit.localcloud.stacks.engine import StackEngine, StackFault
from labkit.localcloud.stacks.model import StackStore

__all__ = ["StackEngine", "StackFault", "StackStore"]
