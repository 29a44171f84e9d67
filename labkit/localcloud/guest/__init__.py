"""Code that runs inside an execution environment, not in the lab: the standard library only (and simplejson).

The local cloud puts this package in every environment's runtime folder (`/var/runtime`, as
`labkit_guest`), beside the AWS SDK, where a fork server or a fresh interpreter imports it:
`forkserver` starts environments on Linux, `spawned` starts one where there is no fork server,
`lambdaloop` is the Lambda runtime loop where AWS's runtime client does not install, and `mounts`
(Linux namespaces) or `fsguard` (Python's audit hooks) give the function Lambda's file system.
Nothing here imports labkit: inside an environment there is none.
"""
