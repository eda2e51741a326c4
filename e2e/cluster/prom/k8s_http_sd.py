"""Kubernetes -> Prometheus HTTP service discovery adapter (stdlib only).

Debian's prometheus package is built WITHOUT kubernetes_sd_configs ("Kubernetes support has been completely removed",
NEWS.Debian 1.5.0+ds-1). This serves the HTTP SD format (http_sd_configs) with the same __meta_kubernetes_* labels that
kubernetes_sd_configs role=pod / role=endpoints produce, so the usual relabel_configs work unchanged:
  GET /pod        one target per declared container port (ip:port), like role: pod
  GET /endpoints  one target per endpoint address+port of every Service, like role: endpoints
Usage: python3 k8s_http_sd.py LISTEN_PORT APISERVER_URL TOKEN_FILE [NAMESPACE]
"""

import json
import re
import ssl
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, API, TOKEN_FILE = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
NS = sys.argv[4] if len(sys.argv) > 4 else None
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE  # the local API server presents a self-signed certificate


def get(path):
    req = urllib.request.Request(API + path, headers={"Authorization": "Bearer " + open(TOKEN_FILE).read().strip()})
    return json.load(urllib.request.urlopen(req, context=CTX, timeout=5))


def ln(s):  # Prometheus label-name sanitising, as in kubernetes_sd
    return re.sub(r"[^a-zA-Z0-9_]", "_", s)


def base(kind):
    return f"/api/v1/namespaces/{NS}/{kind}" if NS else f"/api/v1/{kind}"


def pod_meta(p):
    md, st = p["metadata"], p.get("status", {})
    m = {
        "__meta_kubernetes_namespace": md["namespace"],
        "__meta_kubernetes_pod_name": md["name"],
        "__meta_kubernetes_pod_ip": st.get("podIP", ""),
        "__meta_kubernetes_pod_phase": st.get("phase", ""),
        "__meta_kubernetes_pod_node_name": p["spec"].get("nodeName", ""),
        "__meta_kubernetes_pod_uid": md["uid"],
        "__meta_kubernetes_pod_host_ip": st.get("hostIP", ""),
        "__meta_kubernetes_pod_ready": next(
            (c["status"].lower() for c in st.get("conditions", []) if c["type"] == "Ready"), "unknown"
        ),
    }
    for k, v in (md.get("labels") or {}).items():
        m["__meta_kubernetes_pod_label_" + ln(k)] = v
        m["__meta_kubernetes_pod_labelpresent_" + ln(k)] = "true"
    for k, v in (md.get("annotations") or {}).items():
        m["__meta_kubernetes_pod_annotation_" + ln(k)] = v
        m["__meta_kubernetes_pod_annotationpresent_" + ln(k)] = "true"
    return m


def pods():
    out = []
    for p in get(base("pods"))["items"]:
        ip = p.get("status", {}).get("podIP")
        if not ip:
            continue
        for c in p["spec"]["containers"]:
            for prt in c.get("ports") or [{}]:  # a container without ports -> one target with the bare pod IP
                lab = dict(pod_meta(p), __meta_kubernetes_pod_container_name=c["name"])
                if prt:
                    lab.update(
                        __meta_kubernetes_pod_container_port_number=str(prt["containerPort"]),
                        __meta_kubernetes_pod_container_port_name=prt.get("name", ""),
                        __meta_kubernetes_pod_container_port_protocol=prt.get("protocol", "TCP"),
                    )
                out.append({"targets": [f"{ip}:{prt['containerPort']}" if prt else ip], "labels": lab})
    return out


def endpoints():
    out, podmap = [], {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in get(base("pods"))["items"]}
    for ep in get(base("endpoints"))["items"]:
        md = ep["metadata"]
        for ss in ep.get("subsets") or []:
            for ready, key in (("true", "addresses"), ("false", "notReadyAddresses")):
                for a in ss.get(key) or []:
                    for prt in ss.get("ports") or []:
                        lab = {
                            "__meta_kubernetes_namespace": md["namespace"],
                            "__meta_kubernetes_service_name": md["name"],
                            "__meta_kubernetes_endpoints_name": md["name"],
                            "__meta_kubernetes_endpoint_ready": ready,
                            "__meta_kubernetes_endpoint_port_name": prt.get("name", ""),
                            "__meta_kubernetes_endpoint_port_protocol": prt.get("protocol", "TCP"),
                            "__meta_kubernetes_endpoint_address_target_kind": (a.get("targetRef") or {}).get(
                                "kind", ""
                            ),
                            "__meta_kubernetes_endpoint_address_target_name": (a.get("targetRef") or {}).get(
                                "name", ""
                            ),
                        }
                        ref = a.get("targetRef") or {}
                        if ref.get("kind") == "Pod" and (md["namespace"], ref["name"]) in podmap:
                            lab.update(pod_meta(podmap[(md["namespace"], ref["name"])]))
                        out.append({"targets": [f"{a['ip']}:{prt['port']}"], "labels": lab})
    return out


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            body = json.dumps({"/pod": pods, "/endpoints": endpoints}[self.path.split("?")[0]]()).encode()
            code = 200
        except KeyError:
            body, code = b"not found\n", 404
        except Exception as e:  # apiserver unreachable: Prometheus keeps the last good target list on a non-200
            body, code = repr(e).encode(), 503
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
