"""Configuration: environment variables the operator sets, flags winning over them, defaults, format inference and
refusal of invalid values."""

from __future__ import annotations

import pytest
from modelpilot_server.config import OPTIONS, ServerConfig, parse_config

ENV = {
    "MODEL_NAME": "iris", "MODEL_URI": "file:///m/iris.onnx", "MODEL_VERSION": "3", "MODELPILOT_REVISION": "abc",
    "MODELPILOT_PORT": "9000", "MODELPILOT_MAX_BATCH_SIZE": "8", "MODELPILOT_METRICS": "false",
}


def test_environment_configures_the_server():
    config = parse_config([], ENV)
    assert (config.model_name, config.model_version, config.revision) == ("iris", "3", "abc")
    assert (config.port, config.max_batch_size, config.metrics) == (9000, 8, False)
    assert config.model_format == "onnx"  # inferred from the suffix


def test_flags_win_over_environment():
    config = parse_config(["--port", "7000", "--max-batch-size=1", "--model-format", "sklearn", "--metrics", "on"], ENV)
    assert (config.port, config.max_batch_size, config.model_format, config.metrics) == (7000, 1, "sklearn", True)


def test_defaults():
    config = parse_config([], {"MODEL_NAME": "m", "MODEL_URI": "/models/m.joblib"})
    assert config == ServerConfig(model_name="m", model_uri="/models/m.joblib")
    assert (config.port, config.host, config.model_format, config.cache_max_bytes) == (8080, "0.0.0.0", "sklearn", 0)


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        ([], {}),
        (["--model-format", "pmml"], ENV),
        (["--max-batch-size", "0"], ENV),
        (["--metrics", "maybe"], ENV),
        (["--port", "http"], ENV),
    ],
)
def test_invalid_configuration_exits_with_usage(argv, env, capsys):
    with pytest.raises(SystemExit) as caught:
        parse_config(argv, env)
    assert caught.value.code == 2
    assert "usage: modelpilot-server" in capsys.readouterr().err


def test_every_option_is_a_config_field():
    fields = set(ServerConfig.__dataclass_fields__)
    assert {option.field for option in OPTIONS} == fields
