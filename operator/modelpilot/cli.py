"""``kubectl modelpilot``: see and steer the releases of ModelDeployments.

    kubectl modelpilot status NAME [-n NS]        phase, revisions, step, weight, conditions, last analysis, history
    kubectl modelpilot promote|abort|retry NAME   ask the operator to act (consumed once)
    kubectl modelpilot pause|resume NAME          set spec.paused
    kubectl modelpilot watch NAME [--until-done]  a line on every change of phase, step, weight or verdicts

Connection as kubectl makes it: ``--kubeconfig``, else ``KUBECONFIG``, else ``~/.kube/config``, else the in-cluster
service account; ``--context`` picks a context, ``-n`` a namespace (default: the context's, else ``default``).

Decisions:

* Actions are requests, not commands: ``promote``, ``abort`` and ``retry`` set the annotation ``modelpilot.io/action``
  to ``"<verb>:<unique id>"`` and return. The operator consumes each id once and records it in ``status.lastAction``,
  so a request is never lost to a busy operator nor repeated by a restart, and running the command twice asks twice.
  ``pause`` and ``resume`` are plain spec changes (a merge patch of ``spec.paused``), visible in ``kubectl get -o
  yaml`` and in GitOps diffs like any other field.
* Only ``CustomObjectsApi``: the plugin reads and patches one custom resource and needs no typed models.
* Formatting (``render_status``, ``watch_line``, ``release_done``) is pure and unit-tested on hand-written objects;
  the functions that talk to the API server are thin.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from modelpilot.api.constants import ANNOTATION_ACTION as ACTION_ANNOTATION
from modelpilot.api.constants import GROUP, PLURAL, VERSION

ACTIONS = ("promote", "abort", "retry")
RESOURCE = f"{PLURAL}.{GROUP}"
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MERGE = "application/merge-patch+json"

# --- pure formatting ---------------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    """A left-aligned table in kubectl's style: upper-case headers, columns padded to the widest cell."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(indent + "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def number(value: Any) -> str:
    """Measurements with four significant digits (0.1213, 4210, 1.5e-05); absent values as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def step_label(step: dict[str, Any]) -> str:
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration else "pause (until promoted)"
    if "analysis" in step:
        return "analysis"
    return "?"


def step_text(spec: dict[str, Any], status: dict[str, Any]) -> str:
    """``"2/4 (setWeight 50)"``: the current step counted from 1 out of ``spec.strategy``'s steps.

    ``status.currentStep`` is an index; an index past the last step means all steps are done. Blue-green has three
    stages: preview starting (0), preview ready (1, checks and the wait before the switch), switched (2).
    """
    strategy = spec.get("strategy") or {}
    index = status.get("currentStep")
    if "blueGreen" in strategy:
        stages = ("preview starting", "preview ready", "switched")
        return f"{index + 1}/3 ({stages[index]})" if index is not None and 0 <= index < 3 else "-"
    steps = (strategy.get("canary") or {}).get("steps") or []
    if not steps or index is None:
        return "-"
    if index >= len(steps):
        return f"{len(steps)}/{len(steps)} (all steps done)"
    return f"{index + 1}/{len(steps)} ({step_label(steps[index])})"


def strategy_name(spec: dict[str, Any]) -> str:
    strategy = spec.get("strategy") or {}
    return "canary" if "canary" in strategy else "blueGreen" if "blueGreen" in strategy else "replace"


def action_state(obj: dict[str, Any]) -> str | None:
    """The last action request and whether the operator has consumed it (``status.lastAction`` holds it)."""
    requested = (obj.get("metadata", {}).get("annotations") or {}).get(ACTION_ANNOTATION)
    last = (obj.get("status") or {}).get("lastAction")
    if requested and last not in (requested, requested.partition(":")[2]):
        return f"{requested} (pending)" + (f", last consumed {last}" if last else "")
    if last:
        return f"{last} (consumed)"
    return None


def render_status(obj: dict[str, Any]) -> str:
    """The ``status`` command's output for a ModelDeployment as read from the API."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec") or {}, obj.get("status") or {}
    canary = status.get("canaryRevision")
    weight = status.get("canaryWeight") or 0
    fields: list[tuple[str, Any]] = [
        ("Name", meta.get("name")),
        ("Namespace", meta.get("namespace")),
        ("Phase", status.get("phase") or "Unknown"),
        ("Paused", "yes" if spec.get("paused") else "no"),
        ("Strategy", strategy_name(spec)),
        ("Step", step_text(spec, status) if canary else "-"),
        ("Stable", status.get("stableRevision") or "-"),
        ("Canary", canary or "-"),
        ("Weight", f"stable {100 - weight}%, canary {weight}%" if canary else "stable 100%"),
        ("Replicas", f"{status.get('readyReplicas') or 0} ready of {status.get('replicas') or 0}"),
    ]
    if status.get("rolledBackRevision"):
        fields.append(("Rolled back", status["rolledBackRevision"]))
    action = action_state(obj)
    if action:
        fields.append(("Action", action))
    if status.get("observedGeneration") is not None and status["observedGeneration"] < meta.get("generation", 0):
        fields.append(("Note", "the operator has not seen the latest spec yet"))
    width = max(len(k) for k, _ in fields) + 2
    out = [f"{k + ':':<{width}}{v}" for k, v in fields]

    conditions = status.get("conditions") or []
    if conditions:
        out += ["", "Conditions:", table(
            ["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"],
            [[c.get("type"), c.get("status"), c.get("reason"), c.get("lastTransitionTime"), c.get("message")]
             for c in conditions])]

    analysis = status.get("analysis")
    if analysis:
        head = f"Analysis: {analysis.get('runs', 0)} runs, {analysis.get('failures', 0)} failed"
        if analysis.get("consecutiveFailures"):
            head += f" ({analysis['consecutiveFailures']} in a row)"
        if analysis.get("stepVerdict"):
            head += f", step verdict {analysis['stepVerdict']}"
        if analysis.get("lastRunAt"):
            head += f", last at {analysis['lastRunAt']}"
        out += ["", head]
        metrics = analysis.get("metrics") or []
        if metrics:
            with_message = any(m.get("message") for m in metrics)
            headers = ["METRIC", "VERDICT", "VALUE", "STABLE", "SAMPLES"] + (["MESSAGE"] if with_message else [])
            rows = [[m.get("name"), m.get("verdict"), number(m.get("value")), number(m.get("stableValue")),
                     number(m.get("samples"))] + ([m.get("message") or ""] if with_message else []) for m in metrics]
            out.append(table(headers, rows))

    history = status.get("history") or []
    if history:
        out += ["", "History:", table(
            ["REVISION", "OUTCOME", "REASON", "TIME"],
            [[h.get("revision"), h.get("outcome"), h.get("reason"), h.get("time")] for h in history])]
    return "\n".join(out) + "\n"


def watch_key(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What ``watch`` reports a change of: phase, step, weight, revisions and the verdicts of the last analysis."""
    status = obj.get("status") or {}
    verdicts = tuple((m.get("name"), m.get("verdict")) for m in (status.get("analysis") or {}).get("metrics") or [])
    return (status.get("phase"), status.get("currentStep"), status.get("canaryWeight"), status.get("stableRevision"),
            status.get("canaryRevision"), verdicts)


def watch_line(obj: dict[str, Any]) -> str:
    """One line of ``watch``: ``Progressing  step 2/4 (pause 30s)  weight 10%  canary 7b1e22  p99=Pass errors=Pass``."""
    status = obj.get("status") or {}
    canary = status.get("canaryRevision")
    parts = [status.get("phase") or "Unknown"]
    if canary:
        parts += [f"step {step_text(obj.get('spec') or {}, status)}", f"weight {status.get('canaryWeight') or 0}%",
                  f"canary {canary}"]
    parts.append(f"stable {status.get('stableRevision') or '-'}")
    metrics = (status.get("analysis") or {}).get("metrics") or []
    if canary and metrics:
        parts.append(" ".join(f"{m.get('name')}={m.get('verdict')}" for m in metrics))
    return "  ".join(parts)


def release_done(obj: dict[str, Any]) -> bool:
    """True once the operator has acted on the latest spec and no release is in progress (Healthy or Degraded).

    Requiring the latest generation keeps ``watch --until-done`` right after ``kubectl apply`` from ending on the state
    from before the change.
    """
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    seen = status.get("observedGeneration") is not None and status["observedGeneration"] >= meta.get("generation", 0)
    return seen and not status.get("canaryRevision") and status.get("phase") in ("Healthy", "Degraded")


def outcome(obj: dict[str, Any]) -> str:
    """The closing line of a finished release: the newest history entry, else the phase."""
    status = obj.get("status") or {}
    history = status.get("history") or []
    if history:
        h = history[0]
        return f"release of {h.get('revision')} finished: {h.get('outcome')} ({h.get('reason')})"
    return f"no release in progress: {status.get('phase')}"


def action_value(verb: str, token: str | None = None) -> str:
    """``"promote:3f9c0a1b2c4d"``: the verb and an id the operator consumes once."""
    if verb not in ACTIONS:
        raise ValueError(f"unknown action {verb!r}; one of {', '.join(ACTIONS)}")
    return f"{verb}:{token or uuid.uuid4().hex[:12]}"


# --- I/O -----------------------------------------------------------------------------------------------------------


def connect(kubeconfig: str | None, context: str | None) -> tuple[k8s.ApiClient, str]:
    """An ApiClient and the default namespace, found the way kubectl finds them."""
    explicit = kubeconfig or os.environ.get("KUBECONFIG")
    if explicit or Path("~/.kube/config").expanduser().exists():
        api = k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
        contexts, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        return api, ((chosen or {}).get("context") or {}).get("namespace") or "default"
    configuration = k8s.Configuration()
    k8s_config.load_incluster_config(client_configuration=configuration)
    namespace = IN_CLUSTER_NAMESPACE.read_text().strip() if IN_CLUSTER_NAMESPACE.exists() else "default"
    return k8s.ApiClient(configuration), namespace


class Plugin:
    """The commands, over one ``CustomObjectsApi``; ``out`` and ``err`` are injectable for tests."""

    def __init__(self, api: k8s.ApiClient, namespace: str, out: Any = None, err: Any = None) -> None:
        self.custom = k8s.CustomObjectsApi(api)
        self.namespace = namespace
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, body,
                                                          _content_type=MERGE)

    def status(self, name: str) -> int:
        self.out.write(render_status(self.get(name)))
        return 0

    def act(self, verb: str, name: str) -> int:
        value = action_value(verb)
        self.patch(name, {"metadata": {"annotations": {ACTION_ANNOTATION: value}}})
        print(f"{RESOURCE}/{name} {verb} requested ({value})", file=self.out)
        return 0

    def set_paused(self, name: str, paused: bool) -> int:
        self.patch(name, {"spec": {"paused": paused}})
        print(f"{RESOURCE}/{name} {'paused' if paused else 'resumed'}", file=self.out)
        return 0

    def watch(self, name: str, timeout: float, until_done: bool) -> int:
        """Print a line on every change until ``timeout`` seconds pass or, with ``until_done``, the release ends.

        Exit code with ``until_done``: 0 when it ended Healthy, 1 when Degraded, deleted, or out of time.
        """
        deadline = time.monotonic() + timeout
        last = None
        for obj in self._changes(name, self.get(name), deadline):
            if obj is None:
                print(f"{RESOURCE}/{name} deleted", file=self.out, flush=True)
                return 1
            if watch_key(obj) != last:
                last = watch_key(obj)
                print(f"{time.strftime('%H:%M:%S')}  {watch_line(obj)}", file=self.out, flush=True)
            if until_done and release_done(obj):
                print(outcome(obj), file=self.out, flush=True)
                return 0 if (obj.get("status") or {}).get("phase") == "Healthy" else 1
        if until_done:
            print(f"timed out after {timeout:g} s; the release is still in progress", file=self.err)
            return 1
        return 0

    def _changes(self, name: str, first: dict[str, Any], deadline: float) -> Iterator[dict[str, Any] | None]:
        """The object now, then every version the API server streams until the deadline (None: deleted).

        A watch ends at its server-side timeout or when the stored version is too old (410 Gone); it is then resumed,
        from a fresh read in the second case, so a long watch survives both.
        """
        yield first
        version = first["metadata"]["resourceVersion"]
        while (remaining := deadline - time.monotonic()) > 1:
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                    field_selector=f"metadata.name={name}", resource_version=version,
                    timeout_seconds=max(1, int(remaining)), _request_timeout=(10, remaining + 10),
                ):
                    obj = event["object"]
                    if event["type"] == "DELETED":
                        yield None
                        return
                    version = obj["metadata"]["resourceVersion"]
                    yield obj
                    if time.monotonic() >= deadline:
                        return
            except ApiException as exc:
                if exc.status != 410:
                    raise
                fresh = self.get(name)
                version = fresh["metadata"]["resourceVersion"]
                yield fresh
            finally:
                stream.stop()


def build_parser() -> argparse.ArgumentParser:
    # Connection options are accepted before and after the command, as kubectl accepts them; SUPPRESS keeps a
    # subcommand's parser from overwriting a value given before the command with its default.
    conn = argparse.ArgumentParser(add_help=False)
    conn.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace (default: the context's)")
    conn.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="kubeconfig file (default: KUBECONFIG, "
                      "~/.kube/config, in-cluster)")
    conn.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context (default: the current one)")

    parser = argparse.ArgumentParser(prog="kubectl modelpilot", parents=[conn],
                                     description="See and steer the releases of ModelDeployments.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "status": "phase, revisions, step, weight, conditions, last analysis and history",
        "promote": "move the release past its current step (a pause, a wait, a pending check); blue-green: switch",
        "abort": "roll the release in progress back to the stable revision",
        "retry": "release again the revision that was rolled back",
        "pause": "hold the release at its current step (spec.paused: true)",
        "resume": "continue a paused release (spec.paused: false)",
        "watch": "print a line on every change of phase, step, weight or verdicts",
    }
    for command, text in helps.items():
        sub = commands.add_parser(command, parents=[conn], help=text, description=text)
        sub.add_argument("name", metavar="NAME", help="name of the ModelDeployment")
        if command == "watch":
            sub.add_argument("--timeout", type=float, default=600.0, help="stop after this many seconds (600)")
            sub.add_argument("--until-done", action="store_true",
                             help="stop when the release ends; exit 1 unless it ended Healthy")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        api, default_namespace = connect(getattr(args, "kubeconfig", None), getattr(args, "context", None))
    except (ConfigException, OSError) as exc:
        print(f"error: cannot load a kubeconfig or in-cluster configuration: {exc}", file=sys.stderr)
        return 1
    plugin = Plugin(api, getattr(args, "namespace", None) or default_namespace)
    try:
        if args.command == "status":
            return plugin.status(args.name)
        if args.command in ACTIONS:
            return plugin.act(args.command, args.name)
        if args.command in ("pause", "resume"):
            return plugin.set_paused(args.name, args.command == "pause")
        return plugin.watch(args.name, args.timeout, args.until_done)
    except ApiException as exc:
        if exc.status == 404:
            print(f'Error from server (NotFound): {RESOURCE} "{args.name}" not found in namespace '
                  f'"{plugin.namespace}"', file=sys.stderr)
        else:
            print(f"Error from server ({exc.reason}): {exc.body or exc.status}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        api.close()


if __name__ == "__main__":
    sys.exit(main())
