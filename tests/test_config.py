"""Config: one object built from the environment, every name derived from it."""

import pytest

from labkit.config import Config
from labkit.errors import ConfigError


def test_defaults_are_the_seeds_names():
    # GIVEN an empty environment WHEN the config is built
    config = Config.from_env({})
    # THEN it targets the in-process local cloud with the assignment's names
    assert config.backend == "moto"
    assert (config.table_name, config.topic_name, config.queue_name, config.dlq_name) == (
        "Orders",
        "OrderTopic",
        "OrderQueue",
        "OrderDLQ",
    )
    assert config.function_name == "OrderProcessor"
    assert config.function_names == ("OrderProcessor", "OrderProcesor")
    assert config.max_receive_count == 3 and config.batch_size == 1
    assert config.role_policy == "least-privilege"
    assert Config.from_env({"LABKIT_ROLE_POLICY": "managed"}).role_policy == "managed"
    assert config.visibility_timeout >= 6 * config.function_timeout


def test_prefix_names_every_resource():
    config = Config.from_env({"LABKIT_PREFIX": "s07"})
    names = [config.table_name, config.topic_name, config.queue_name, config.dlq_name, config.function_name]
    assert all(name.startswith("s07-") for name in names)
    assert config.role_name == "s07-OrderProcessorRole"
    assert config.tags["labkit:prefix"] == "s07"


def test_endpoint_variable_selects_the_endpoint_backend():
    config = Config.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:5055", "AWS_REGION": "eu-west-1"})
    assert config.backend == "endpoint"
    assert config.endpoint_url == "http://127.0.0.1:5055"
    assert config.region == "eu-west-1"


def test_aws_backend_takes_profile_and_region():
    config = Config.from_env({"LABKIT_BACKEND": "aws", "AWS_PROFILE": "course", "AWS_DEFAULT_REGION": "us-west-2"})
    assert (config.backend, config.profile, config.region) == ("aws", "course", "us-west-2")


def test_visibility_timeout_follows_function_timeout_unless_set():
    assert Config.from_env({"LABKIT_FUNCTION_TIMEOUT": "5"}).visibility_timeout == 30
    assert Config.from_env({"LABKIT_FUNCTION_TIMEOUT": "5", "LABKIT_VISIBILITY_TIMEOUT": "7"}).visibility_timeout == 7


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"LABKIT_BACKEND": "azure"}, "LABKIT_BACKEND"),
        ({"LABKIT_BACKEND": "endpoint"}, "AWS_ENDPOINT_URL"),
        ({"LABKIT_PREFIX": "bad prefix!"}, "LABKIT_PREFIX"),
        ({"LABKIT_ROLE_POLICY": "admin"}, "LABKIT_ROLE_POLICY"),
        ({"LABKIT_BATCH_SIZE": "11"}, "LABKIT_BATCH_SIZE"),
        ({"LABKIT_FUNCTION_TIMEOUT": "ten"}, "LABKIT_FUNCTION_TIMEOUT"),
        ({"LABKIT_FUNCTION_TIMEOUT": "10", "LABKIT_VISIBILITY_TIMEOUT": "5"}, "LABKIT_VISIBILITY_TIMEOUT"),
    ],
)
def test_wrong_settings_name_the_variable_to_fix(environ, words):
    with pytest.raises(ConfigError, match=words):
        Config.from_env(environ)


def test_config_is_frozen_and_copies_with_changes():
    config = Config.from_env({})
    with pytest.raises(AttributeError):
        config.prefix = "x"  # type: ignore[misc]
    assert config.with_(batch_size=10).batch_size == 10
    assert config.batch_size == 1
