"""Server configuration from command-line flags and the environment.

The operator configures a model server pod through environment variables only (``MODEL_NAME``, ``MODEL_URI``,
``MODELPILOT_REVISION``, ...), while a person running the server by hand reaches for flags. Every setting therefore has
both: the environment provides the default of the flag, so a flag given on the command line always wins.

One table (:data:`OPTIONS`) lists each setting once with its flag, its variable, its type and its help; the argument
parser and ``--help`` are derived from it, and a test checks that it covers every field of :class:`ServerConfig`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MODEL_FORMATS = ("sklearn", "onnx")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the server needs to start; immutable once parsed."""

    model_name: str
    model_uri: str
    model_format: str = "sklearn"
    model_version: str = "1"
    model_sha256: str | None = None
    revision: str = "unknown"
    host: str = "0.0.0.0"
    port: int = 8080
    max_batch_size: int = 32
    cache_max_bytes: int = 0
    cache_ttl_seconds: float = 300.0
    redis_url: str | None = None
    redis_timeout_seconds: float = 0.05
    redis_retry_seconds: float = 5.0
    metrics: bool = True
    feedback_max_rows: int = 100_000
    feedback_ttl_seconds: float = 3600.0
    max_body_bytes: int = 16 * 1024 * 1024
    drain_delay_seconds: float = 5.0
    drain_timeout_seconds: float = 30.0
    onnx_threads: int = 1
    access_log: bool = False
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.model_name:
            raise ValueError("a model name is required (--model-name or MODEL_NAME)")
        if not self.model_uri:
            raise ValueError("a model URI is required (--model-uri or MODEL_URI)")
        if self.model_format not in MODEL_FORMATS:
            raise ValueError(f"model format must be one of {', '.join(MODEL_FORMATS)}, not {self.model_format!r}")
        if self.max_batch_size < 1:
            raise ValueError("max batch size must be at least 1")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _optional(text: str) -> str | None:
    return text or None


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: the config field it fills, its flag, its environment variable and how to parse it."""

    field: str
    env: str
    parse: Callable[[str], Any]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("model_name", "MODEL_NAME", str, "name the model is served under (/v2/models/NAME)"),
    Option("model_uri", "MODEL_URI", str, "file://, http:// or https:// URI (or a plain path) of the model file"),
    Option("model_format", "MODEL_FORMAT", str, "sklearn (joblib file) or onnx; inferred from a .onnx suffix if unset"),
    Option("model_version", "MODEL_VERSION", str, "version reported in metadata and responses"),
    Option("model_sha256", "MODEL_SHA256", _optional, "expected sha256 of the model file; loading fails on mismatch"),
    Option("revision", "MODELPILOT_REVISION", str, "revision label of every metric (set by the operator)"),
    Option("host", "MODELPILOT_HOST", str, "address to bind"),
    Option("port", "MODELPILOT_PORT", int, "port to bind"),
    Option("max_batch_size", "MODELPILOT_MAX_BATCH_SIZE", int, "most rows merged into one model call; 1 disables"),
    Option("cache_max_bytes", "MODELPILOT_CACHE_MAX_BYTES", int, "in-process response cache size; 0 disables"),
    Option("cache_ttl_seconds", "MODELPILOT_CACHE_TTL_SECONDS", float, "lifetime of a cached response"),
    Option("redis_url", "MODELPILOT_REDIS_URL", _optional, "use Redis as the response cache (redis://host:port/db)"),
    Option("redis_timeout_seconds", "MODELPILOT_REDIS_TIMEOUT_SECONDS", float, "per-command Redis timeout"),
    Option("redis_retry_seconds", "MODELPILOT_REDIS_RETRY_SECONDS", float, "how long Redis is skipped after an error"),
    Option("metrics", "MODELPILOT_METRICS", _bool, "export Prometheus metrics on /metrics"),
    Option("feedback_max_rows", "MODELPILOT_FEEDBACK_MAX_ROWS", int, "predictions kept for ground-truth feedback"),
    Option("feedback_ttl_seconds", "MODELPILOT_FEEDBACK_TTL_SECONDS", float, "how long a prediction can be scored"),
    Option("max_body_bytes", "MODELPILOT_MAX_BODY_BYTES", int, "larger request bodies are refused with 413"),
    Option("drain_delay_seconds", "MODELPILOT_DRAIN_DELAY_SECONDS", float,
           "on SIGTERM, keep serving this long while reporting not ready"),
    Option("drain_timeout_seconds", "MODELPILOT_DRAIN_TIMEOUT_SECONDS", float,
           "then wait at most this long for in-flight requests"),
    Option("onnx_threads", "MODELPILOT_ONNX_THREADS", int, "onnxruntime intra-op threads"),
    Option("access_log", "MODELPILOT_ACCESS_LOG", _bool, "log every request"),
    Option("log_level", "MODELPILOT_LOG_LEVEL", str, "DEBUG, INFO, WARNING or ERROR"),
)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """An argument parser whose defaults come from ``environ`` and, failing that, from :class:`ServerConfig`."""
    defaults = {f.name: f.default for f in dataclasses.fields(ServerConfig)}
    defaults["model_format"] = None  # unset means: infer it from the URI
    parser = argparse.ArgumentParser(
        prog="modelpilot-server",
        description="Open Inference Protocol v2 server for scikit-learn and ONNX models.",
    )
    for option in OPTIONS:
        if option.env in environ:
            default = option.parse(environ[option.env])
        else:
            default = defaults.get(option.field, dataclasses.MISSING)
            if default is dataclasses.MISSING:
                default = None
        parser.add_argument(
            option.flag, dest=option.field, type=option.parse, default=default,
            help=f"{option.help} [env {option.env}; default {default!r}]",
        )
    return parser


def parse_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ServerConfig:
    """Parse flags over environment over built-in defaults; exits with a usage message on bad input."""
    parser = build_parser(environ)
    args = vars(parser.parse_args(argv))
    if args["model_name"] is None or args["model_uri"] is None:
        parser.error("--model-name/MODEL_NAME and --model-uri/MODEL_URI are required")
    if args["model_format"] is None:
        args["model_format"] = infer_format(args["model_uri"])
    try:
        return ServerConfig(**args)
    except ValueError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def infer_format(uri: str) -> str:
    """``onnx`` for a ``.onnx`` file, else ``sklearn``: the two formats have unambiguous suffixes in practice."""
    return "onnx" if uri.split("?", 1)[0].lower().endswith(".onnx") else "sklearn"
