"""ModelPilot model server: Open Inference Protocol v2 over aiohttp for scikit-learn and ONNX models.

The public surface is :func:`create_app` (an aiohttp application for one model), :class:`ServerConfig` and
:func:`parse_config`, and :func:`serve` (run an app as a process, with graceful drain on SIGTERM).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modelpilot")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from .app import create_app  # noqa: E402
from .config import ServerConfig, parse_config  # noqa: E402
from .serve import serve  # noqa: E402

__all__ = ["ServerConfig", "__version__", "create_app", "parse_config", "serve"]
