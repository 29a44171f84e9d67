"""The resources: one module per AWS resource the assignment builds, through real AWS APIs only.

`dynamodb` (the Orders table), `sns` (the topic), `sqs` (the queue, its dead-letter queue and the
subscription), `iam` (the function's execution role), `functions` (the Lambda function), `triggers`
(its SQS trigger, an event source mapping) and `teardown` (deleting what the lab built, and nothing
else). Each offers idempotent `ensure_*` builders, `get_*` readers and `delete_*` removers that take
a `Config` and `Clients`, so the same call builds in the local cloud, behind an endpoint or in a
real account.

May import: the core (`labkit.config`, `errors`, `session`, `aws`, `orders`, `events`, `lambdaerrors`,
`lambdalog`) and boto3. Never moto, the local cloud, the facade or anything that observes.
"""
