"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) on 127.0.0.1, for integration tests.

There is no node: no kubelet and no scheduler. Tests that need workloads to "run" play the kubelet themselves by
writing the status of the objects they care about (mostly Deployments). That is why the default controller set of
kube-controller-manager leaves out the controllers that would fight with such a test or that only make sense with
nodes (see :data:`DEFAULT_CONTROLLERS`), while keeping the ones the operator relies on: the garbage collector (owner
references), horizontal pod autoscaling, namespace deletion and service accounts.

Everything binds to 127.0.0.1 on ports picked at start, so several control planes (several test sessions) can run on
one machine side by side. Every process runs in its own process group; :meth:`ControlPlane.stop` ends them all, it is
also registered with :mod:`atexit`, and on Linux each process additionally gets ``SIGTERM`` when the process that
started it dies, so a killed test run does not leave servers behind.

The module only needs the standard library and the ``openssl`` command line tool, so it can be used outside pytest
(for example from a script that wants a throwaway API server)::

    with ControlPlane(bin_dir, scratch_dir) as cp:
        print(cp.kubeconfig_path, cp.url, cp.token)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = ["DEFAULT_ADMISSION_PLUGINS", "DEFAULT_CONTROLLERS", "ControlPlane", "ControlPlaneError", "find_etcd"]

#: Controllers of kube-controller-manager (v1.20 names) for tests without nodes.
#:
#: ``*`` turns on every controller that is on by default; then we switch off:
#:
#: * ``deployment`` and ``replicaset``: tests play the kubelet by writing Deployment status through the status
#:   subresource. The deployment controller would overwrite that status (replicas, observedGeneration, conditions)
#:   within milliseconds, and the ReplicaSet controller would create Pods that never run.
#: * ``nodeipam``, ``nodelifecycle``, ``cloud-node-lifecycle``, ``route``, ``service``, ``ttl``, ``attachdetach``,
#:   ``podgc``, ``daemonset``, ``statefulset``: they manage nodes, cloud resources, volumes or Pods bound to nodes;
#:   without nodes they only produce log noise and load.
#:
#: Kept on, because the operator relies on them: ``garbagecollector`` (owner references), ``horizontalpodautoscaling``,
#: ``namespace`` (namespace deletion), ``serviceaccount`` and ``serviceaccount-token`` (default service accounts and
#: their token secrets), plus endpoints, jobs, quotas and the rest of the defaults.
DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "*",
    "-deployment",
    "-replicaset",
    "-nodeipam",
    "-nodelifecycle",
    "-cloud-node-lifecycle",
    "-route",
    "-service",
    "-ttl",
    "-attachdetach",
    "-podgc",
    "-daemonset",
    "-statefulset",
)

#: Admission plugins named explicitly. kube-apiserver keeps its own default-on set in addition (as on a real
#: cluster); these are the ones the operator's behaviour depends on, listed so that a change of defaults shows here.
DEFAULT_ADMISSION_PLUGINS: tuple[str, ...] = (
    "NamespaceLifecycle",
    "ServiceAccount",
    "ResourceQuota",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionWebhook",
)

_LOG_TAIL_LINES = 40


class ControlPlaneError(RuntimeError):
    """The control plane could not be started; the message carries the tail of the failing component's log."""


def find_etcd() -> str:
    """Return the etcd binary: ``$MODELPILOT_ETCD`` if set, else ``etcd`` on ``PATH`` (Debian's ``etcd-server``)."""
    explicit = os.environ.get("MODELPILOT_ETCD")
    if explicit:
        return explicit
    found = shutil.which("etcd")
    if not found:
        raise ControlPlaneError("etcd not found on PATH (Debian: apt-get install etcd-server), or set MODELPILOT_ETCD")
    return found


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it, so parallel sessions rarely collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    """``preexec_fn``: own process group, and SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``).

    The process group lets :meth:`ControlPlane.stop` signal a component and anything it might fork. The death signal
    covers what ``atexit`` cannot: a test run killed with SIGKILL (for example by a CI timeout).
    """
    os.setsid()
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class _Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)

    def failure(self, what: str) -> ControlPlaneError:
        code = self.process.poll()
        state = f"exited with code {code}" if code is not None else "still running"
        return ControlPlaneError(
            f"{self.name} {what} ({state}); last lines of {self.log_path}:\n{_tail(self.log_path)}"
        )


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, started from a folder of binaries.

    Args:
        bin_dir: folder with ``kube-apiserver`` and ``kube-controller-manager`` (build-k8s.sh prints it).
        scratch_dir: folder for etcd data, certificates, keys, the kubeconfig and one log file per component
            (``etcd.log``, ``kube-apiserver.log``, ``kube-controller-manager.log``). Created if missing; it must not
            already hold etcd data, so every start is a fresh cluster.
        authorization_mode: ``--authorization-mode``; ``AlwaysAllow`` for most tests, ``Node,RBAC`` to test the
            chart's RBAC rules. The static admin token is in group ``system:masters`` either way.
        controllers: kube-controller-manager ``--controllers`` entries (see :data:`DEFAULT_CONTROLLERS`).
        admission_plugins: ``--enable-admission-plugins`` entries (added to kube-apiserver's default-on set).
        etcd_bin: etcd binary; default from :func:`find_etcd`.
        start_timeout: seconds to wait for each component to become ready.
        extra_apiserver_args / extra_controller_manager_args: appended verbatim (later flags win).
    """

    def __init__(
        self,
        bin_dir: str | os.PathLike[str],
        scratch_dir: str | os.PathLike[str],
        *,
        authorization_mode: str = "AlwaysAllow",
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        admission_plugins: Sequence[str] = DEFAULT_ADMISSION_PLUGINS,
        etcd_bin: str | None = None,
        start_timeout: float = 60.0,
        extra_apiserver_args: Sequence[str] = (),
        extra_controller_manager_args: Sequence[str] = (),
    ) -> None:
        self.bin_dir = Path(bin_dir)
        self.scratch_dir = Path(scratch_dir)
        self.authorization_mode = authorization_mode
        self.controllers = tuple(controllers)
        self.admission_plugins = tuple(admission_plugins)
        self.etcd_bin = etcd_bin
        self.start_timeout = start_timeout
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.extra_controller_manager_args = tuple(extra_controller_manager_args)

        self.token = secrets.token_urlsafe(32)
        self.apiserver_port = 0
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self.start_seconds: float | None = None
        self._components: list[_Component] = []
        self._atexit_registered = False

    # ------------------------------------------------------------------ public surface

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT`` of the API server."""
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig_path(self) -> Path:
        """Kubeconfig with the admin bearer token, verifying the API server against its self-signed CA."""
        return self.scratch_dir / "kubeconfig"

    @property
    def ca_path(self) -> Path:
        """The API server's self-signed serving certificate (its own CA)."""
        return self.scratch_dir / "certs" / "apiserver.crt"

    @property
    def running(self) -> bool:
        return bool(self._components) and all(c.process.poll() is None for c in self._components)

    def log_path(self, component: str) -> Path:
        """Log file of ``etcd``, ``kube-apiserver`` or ``kube-controller-manager``."""
        return self.scratch_dir / f"{component}.log"

    def start(self) -> Self:
        """Start etcd, kube-apiserver and kube-controller-manager; return once the API server is ready.

        Ports are picked free just before use; if another process grabs one in between, the start is retried with
        new ports (a few times). Raises :class:`ControlPlaneError` with the failing component's log tail otherwise.
        """
        if self._components:
            raise ControlPlaneError("control plane already started")
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        t0 = time.monotonic()
        for attempt in range(3):
            try:
                self._start_once()
            except ControlPlaneError as exc:
                self.stop()
                if attempt < 2 and "address already in use" in str(exc):
                    shutil.rmtree(self.scratch_dir / "etcd", ignore_errors=True)  # this attempt's, not the caller's
                    continue
                raise
            break
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate every component (whole process groups): SIGTERM, then SIGKILL after ``timeout`` seconds.

        Safe to call more than once and on a control plane that never started.
        """
        components, self._components = self._components, []
        for component in reversed(components):
            _signal_group(component.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for component in reversed(components):
            if not _wait_exited(component.process, deadline):
                _signal_group(component.process, signal.SIGKILL)
                _wait_exited(component.process, None)
            # The leader is a zombie now (exited, not reaped), so its group id cannot have been reused: clear anything
            # it forked into the group, then reap it.
            _signal_group(component.process, signal.SIGKILL)
            component.process.wait()
            component.log_file.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ start steps

    def _start_once(self) -> None:
        for name in ("kube-apiserver", "kube-controller-manager"):
            if not os.access(self.bin_dir / name, os.X_OK):
                raise ControlPlaneError(f"{self.bin_dir / name} is missing or not executable")
        etcd_bin = self.etcd_bin or find_etcd()

        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        etcd_data = self.scratch_dir / "etcd"
        if etcd_data.exists():
            raise ControlPlaneError(f"{etcd_data} exists: use a fresh scratch dir for every control plane")
        certs = self.scratch_dir / "certs"
        certs.mkdir(exist_ok=True)

        self.etcd_client_port, self.etcd_peer_port, self.apiserver_port = _free_port(), _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{self.etcd_client_port}"
        peer_url = f"http://127.0.0.1:{self.etcd_peer_port}"
        # Keys, certificate and token file first: the API server needs them, and they take milliseconds.
        sa_key, sa_pub = self._write_service_account_keys()
        self._write_serving_certificate()
        tokens = self.scratch_dir / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)

        etcd = self._spawn(
            "etcd",
            [
                etcd_bin,
                "--name=default",
                f"--data-dir={etcd_data}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--initial-cluster-state=new",
                # A single member elects itself after about one election timeout; the default (1 s) would be a large
                # share of the start time, and nothing on loopback has latency to tolerate.
                "--heartbeat-interval=20",
                "--election-timeout=200",
            ],
        )
        issuer = "https://kubernetes.default.svc"
        # Started right away, alongside etcd: its first second is process start and certificate generation, and it
        # retries etcd until that answers. etcd is still checked first, so an etcd failure is reported as such.
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                "--insecure-port=0",
                f"--cert-dir={certs}",
                f"--token-auth-file={tokens}",
                "--anonymous-auth=false",
                f"--authorization-mode={self.authorization_mode}",
                f"--enable-admission-plugins={','.join(self.admission_plugins)}",
                "--service-cluster-ip-range=127.100.0.0/16",
                f"--service-account-issuer={issuer}",
                f"--api-audiences={issuer}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                # The `kubernetes` Service's Endpoints would point at 127.0.0.1, which Endpoints validation rejects
                # (loopback); with no pods to use it, the reconciler is only noise.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                *self.extra_apiserver_args,
            ],
        )
        self._wait(etcd, "did not become healthy", lambda: _http_ok(f"{etcd_url}/health"))
        self._wait(apiserver, "did not become ready (/readyz)", self._apiserver_ready)
        self._write_kubeconfig()

        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig_path}",
                f"--controllers={','.join(self.controllers)}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                # No health/metrics listeners: nothing needs them, and fixed default ports would collide between
                # parallel sessions (--port is the insecure 10252 listener, still present in 1.20).
                "--port=0",
                "--secure-port=0",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={self.ca_path}",
                *self.extra_controller_manager_args,
            ],
        )
        # kube-controller-manager has no listener to probe; a crash on bad flags happens within a fraction of a
        # second, so give it that long to fail loudly here rather than in the first test.
        kcm = self._components[-1]
        with contextlib.suppress(subprocess.TimeoutExpired):
            kcm.process.wait(0.3)
        if kcm.process.poll() is not None:
            raise kcm.failure("exited during start")

    def _spawn(self, name: str, argv: list[str]) -> _Component:
        log_path = self.log_path(name)
        log_file = log_path.open("ab")
        log_file.write(f"$ {' '.join(argv)}\n".encode())
        log_file.flush()
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.scratch_dir,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only signal/session setup, no locks taken
            )
        except OSError as exc:
            log_file.close()
            raise ControlPlaneError(f"cannot start {name}: {exc}") from exc
        component = _Component(name, process, log_path, log_file)
        self._components.append(component)
        return component

    def _wait(self, component: _Component, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.start_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if component.process.poll() is not None:
                raise component.failure("exited during start")
            if ready():
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        raise component.failure(f"{what} within {self.start_timeout:.0f} s")

    def _apiserver_ready(self) -> bool:
        if not self.ca_path.exists():
            return False
        return _http_ok(f"{self.url}/readyz", token=self.token, cafile=self.ca_path)

    def _write_service_account_keys(self) -> tuple[Path, Path]:
        """Key pair for service-account tokens (the API server verifies, the controller manager signs).

        P-256 rather than RSA: generating it takes milliseconds instead of up to a second, and both components accept
        it (tokens are signed ES256).
        """
        key, pub = self.scratch_dir / "sa.key", self.scratch_dir / "sa.pub"
        for argv in (
            ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
            ["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)],
        ):
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise ControlPlaneError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
        return key, pub

    def _write_serving_certificate(self) -> None:
        """Self-signed P-256 serving certificate, written where kube-apiserver looks in ``--cert-dir``.

        kube-apiserver would generate one itself (an RSA CA and leaf) when ``--cert-dir`` is empty, but that costs
        most of a second of its start; it reuses files it finds there. The certificate is its own CA, so clients
        verify the server with it (``certificate-authority`` in the kubeconfig) instead of skipping verification.
        """
        sans = [
            "IP:127.0.0.1",
            "IP:127.100.0.1",  # the `kubernetes` Service's ClusterIP (first address of --service-cluster-ip-range)
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
        argv = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(self.ca_path.with_suffix(".key")), "-out", str(self.ca_path),
            "-days", "3650", "-subj", "/CN=modelpilot-test-apiserver", "-addext", f"subjectAltName={','.join(sans)}",
        ]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ControlPlaneError(f"openssl req failed: {result.stderr.strip()}")

    def _write_kubeconfig(self) -> None:
        # JSON is valid YAML; kubectl and the Python client both read it.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "modelpilot-test", "cluster": {"server": self.url, "certificate-authority": str(self.ca_path)}}
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "modelpilot-test",
                    "context": {"cluster": "modelpilot-test", "user": "admin", "namespace": "default"},
                }
            ],
            "current-context": "modelpilot-test",
        }
        self.kubeconfig_path.write_text(json.dumps(config, indent=2) + "\n")
        self.kubeconfig_path.chmod(0o600)


def _wait_exited(process: subprocess.Popen[bytes], deadline: float | None) -> bool:
    """Wait until ``process`` has exited without reaping it (``WNOWAIT``); False if ``deadline`` passed first."""
    while True:
        if process.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped elsewhere
            return True
        if info is not None:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _http_ok(url: str, *, token: str | None = None, cafile: Path | None = None) -> bool:
    """True if ``GET url`` answers 200. No proxy: one set in the environment must never see these requests."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if cafile is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(cafile))))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False
