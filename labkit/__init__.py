"""Orders Lab: build and run an event-driven order pipeline (SNS → SQS → Lambda → DynamoDB).

Start with ``lab = labkit.connect()``: a local cloud by default, the endpoint in ``AWS_ENDPOINT_URL``
if set, or a real account with ``LABKIT_BACKEND=aws``.
"""

from labkit.config import Config
from labkit.errors import AccessError, ConfigError, InputError, LabkitError, NotReadyError, ResourceError
from labkit.grading import grade
from labkit.lab import Lab, Pipeline, connect
from labkit.orders import MALFORMED_BODY, SAMPLE_ORDER, generate_orders, make_order, sample_order

__version__ = "0.1.0"

__all__ = [
    "MALFORMED_BODY",
    "SAMPLE_ORDER",
    "AccessError",
    "Config",
    "ConfigError",
    "InputError",
    "Lab",
    "LabkitError",
    "NotReadyError",
    "Pipeline",
    "ResourceError",
    "connect",
    "generate_orders",
    "grade",
    "make_order",
    "sample_order",
]
