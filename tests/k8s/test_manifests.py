"""The kustomize overlays render, pass the Kubernetes schema, and agree with the code.

Most tests need only kubectl and kubernetes-validate. The cross-checks against the
Python code import it: their names contain `settings` or `app_routes`.
"""

import functools
import importlib
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p for p in (ROOT / "k8s" / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
K8S_VERSION = "1.32"  # the kubectl we render with; kubernetes-validate ships its schema

GRPC_PORT = 50051  # profile; must equal ProfileSettings.grpc_port
SEGMENT_GRPC_PORT = 50052  # segment; must equal SegmentSettings.grpc_port
DISPATCH_GRPC_PORT = 50053  # dispatch; must equal DispatchSettings.grpc_port
JOURNEY_GRPC_PORT = 50054  # journey; must equal JourneySettings.grpc_port
METRICS_GRPC_PORT = 50055  # metrics; must equal MetricsSettings.grpc_port
HTTP_PORT = 8080  # gateway; must equal GatewaySettings.http_port
SETTINGS = {
    "gateway": "gateway.settings:GatewaySettings",
    "profile": "services.profile.settings:ProfileSettings",
    "segment": "services.segment.settings:SegmentSettings",
    "dispatch": "services.dispatch.settings:DispatchSettings",
    "journey": "services.journey.settings:JourneySettings",
    "metrics": "services.metrics.settings:MetricsSettings",
}
GRPC_SERVICES = {
    "profile": GRPC_PORT,
    "segment": SEGMENT_GRPC_PORT,
    "dispatch": DISPATCH_GRPC_PORT,
    "journey": JOURNEY_GRPC_PORT,
    "metrics": METRICS_GRPC_PORT,
}
# Nudge components that may call each gRPC service.
CALLERS = {
    "profile": {"gateway", "segment", "journey", "dispatch", "metrics"},
    "segment": {"gateway", "journey"},
    "dispatch": {"gateway", "journey"},
    "journey": {"gateway", "segment", "dispatch"},
    "metrics": {"gateway"},
}
# The calls made today: (caller, service) -> the caller's variable with the service's address.
# Each caller must be admitted by the service's ingress policy.
ADDRS = {
    ("gateway", "profile"): "NUDGE_PROFILE_ADDR",
    ("gateway", "segment"): "NUDGE_SEGMENT_ADDR",
    ("gateway", "dispatch"): "NUDGE_DISPATCH_ADDR",
    ("gateway", "journey"): "NUDGE_JOURNEY_ADDR",
    ("gateway", "metrics"): "NUDGE_METRICS_ADDR",
    ("dispatch", "profile"): "NUDGE_PROFILE_ADDR",
    ("dispatch", "journey"): "NUDGE_JOURNEY_ADDR",
    ("segment", "journey"): "NUDGE_JOURNEY_ADDR",
    ("journey", "profile"): "NUDGE_PROFILE_ADDR",
    ("journey", "segment"): "NUDGE_SEGMENT_ADDR",
    ("journey", "dispatch"): "NUDGE_DISPATCH_ADDR",
}
# Hosts an address default may name: the embedded mode runs every service on this machine.
LOOPBACK = ("localhost", "127.0.0.1")
EXTERNAL_SECRET = "nudge-secrets"  # created outside kustomize where no overlay generates it
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")

each_overlay = pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
each_component = pytest.mark.parametrize("component", sorted(SETTINGS))
each_grpc_service = pytest.mark.parametrize("service", sorted(GRPC_SERVICES))
each_call = pytest.mark.parametrize(("caller", "service"), sorted(ADDRS))


@functools.cache
def render(overlay: Path) -> list[dict]:
    if not Path(KUBECTL).is_file():
        pytest.fail(f"kubectl is not installed (not on PATH, not at /usr/bin/kubectl); it renders {overlay}")
    done = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {overlay} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((d for d in of_kind(docs, kind) if d["metadata"]["name"] == name), None)


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def deployment(docs: list[dict], component: str) -> dict:
    found = [d for d in of_kind(docs, "Deployment") if pod_labels(d).get("app.kubernetes.io/name") == component]
    assert len(found) == 1, f"expected one Deployment for {component}, found {len(found)}"
    return found[0]


def container(docs: list[dict], component: str) -> dict:
    containers = deployment(docs, component)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == component)


def env(docs: list[dict], c: dict) -> dict[str, str | None]:
    """Every variable the container gets, with its value (None when it comes from a Secret)."""
    values: dict[str, str | None] = {}
    for source in c.get("envFrom", []):
        assert "configMapRef" in source, "map secrets key by key (env valueFrom) so every name is visible"
        config = named(docs, "ConfigMap", source["configMapRef"]["name"])
        assert config, f"envFrom names a ConfigMap that is not rendered: {source}"
        values |= {source.get("prefix", "") + k: v for k, v in config.get("data", {}).items()}
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        values[e["name"]] = named(docs, "ConfigMap", ref["name"])["data"][ref["key"]] if ref else e.get("value")
    return values


def selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        present, value = e["key"] in labels, labels.get(e["key"])
        ok = {
            "In": present and value in e["values"],
            "NotIn": not present or value not in e["values"],
            "Exists": present,
            "DoesNotExist": not present,
        }[e["operator"]]
        if not ok:
            return False
    return True


def ingress_rules(docs: list[dict], labels: dict) -> list[dict]:
    policies = [p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]
    return [rule for p in policies for rule in p["spec"].get("ingress", [])]


def named_ports(c: dict) -> list[tuple]:
    return [(p.get("name"), p["containerPort"]) for p in c.get("ports", [])]


def probe_ports(c: dict, handler: str) -> set:
    assert "livenessProbe" in c and "readinessProbe" in c, c["name"]
    return {c[probe][handler]["port"] for probe in PROBES if probe in c}


def settings_class(component: str):
    module, name = SETTINGS[component].split(":")
    return getattr(importlib.import_module(module), name)


# --- rendering and schema ---------------------------------------------------------


def test_dev_and_prod_overlays_exist():
    assert {"dev", "prod"} <= {p.name for p in OVERLAYS}


@each_overlay
def test_manifests_validate_against_kubernetes_schema(overlay):
    errors = []
    for doc in render(overlay):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{where}: {e.message}")
    assert not errors, "\n".join(errors)


# --- availability and pod hardening -----------------------------------------------


# The metric types of autoscaling/v2 and the target types each takes: CPU for request
# services, and e.g. stream lag (External, from KEDA or a metrics adapter) for consumers.
HPA_TARGETS = {"Resource": {"Utilization", "AverageValue"}, "ContainerResource": {"Utilization", "AverageValue"},
               "Pods": {"AverageValue"}, "Object": {"Value", "AverageValue"}, "External": {"Value", "AverageValue"}}
TARGET_FIELDS = {"Utilization": "averageUtilization", "Value": "value", "AverageValue": "averageValue"}


def quantity_is_positive(value) -> bool:
    """A Kubernetes quantity (100, "100", "500m", "1k", "2Gi") that is above zero."""
    text = str(value).strip()
    number = text.rstrip("numkMGTPEi")
    try:
        return float(number) > 0 and len(text) - len(number) <= 2
    except ValueError:
        return False


def hpa_problems(hpa: dict, docs: list[dict]) -> list[str]:
    """What is not sane in an HPA: its target, its replica bounds, each metric and its target."""
    spec, problems = hpa["spec"], []
    ref = spec.get("scaleTargetRef", {})
    target = named(docs, "Deployment", ref.get("name", "")) if ref.get("kind") == "Deployment" else None
    if target is None or ref.get("apiVersion") != "apps/v1":
        problems.append(f"scaleTargetRef {ref} is not a rendered Deployment")
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)  # the API's default minimum is 1
    if not 1 <= low <= high:
        problems.append(f"replicas: minReplicas {low}, maxReplicas {high}")
    if not spec.get("metrics"):
        problems.append("no metrics")
    for i, metric in enumerate(spec.get("metrics", [])):
        kind = metric.get("type")
        if kind not in HPA_TARGETS:
            problems.append(f"metrics[{i}]: unknown type {kind!r}")
            continue
        source = metric.get(kind[0].lower() + kind[1:], {})
        name = source.get("name") if kind in ("Resource", "ContainerResource") else source.get("metric", {}).get("name")
        if not name or (kind in ("Resource", "ContainerResource") and name not in ("cpu", "memory")):
            problems.append(f"metrics[{i}]: {kind} metric without a known name ({name!r})")
        if kind == "ContainerResource" and target is not None and source.get("container") not in {
                c["name"] for c in target["spec"]["template"]["spec"]["containers"]}:
            problems.append(f"metrics[{i}]: container {source.get('container')!r} is not in {ref['name']}")
        if kind == "Object" and not {"kind", "name"} <= set(source.get("describedObject", {})):
            problems.append(f"metrics[{i}]: Object metric without describedObject kind and name")
        goal = source.get("target", {})
        field = TARGET_FIELDS.get(goal.get("type"))
        if goal.get("type") not in HPA_TARGETS[kind] or field not in goal:
            problems.append(f"metrics[{i}]: {kind} target {goal} is not one of {sorted(HPA_TARGETS[kind])} with its value")
        elif not quantity_is_positive(goal[field]) or (field == "averageUtilization" and not 0 < goal[field] <= 100):
            problems.append(f"metrics[{i}]: target {field} {goal[field]!r} is not a sane value")
    return problems


@each_overlay
def test_every_deployment_has_a_pdb_and_one_sane_autoscaler(overlay):
    docs = render(overlay)
    assert {pod_labels(d)["app.kubernetes.io/name"] for d in of_kind(docs, "Deployment")} >= set(SETTINGS)
    for d in of_kind(docs, "Deployment"):
        name = d["metadata"]["name"]
        assert any(selects(p["spec"]["selector"], pod_labels(d)) for p in of_kind(docs, "PodDisruptionBudget")), name
        hpas = [h for h in of_kind(docs, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == name]
        assert len(hpas) == 1, name
    problems = {h["metadata"]["name"]: hpa_problems(h, docs) for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert all(not p for p in problems.values()), problems


def _hpa(*metrics: dict, target: str = "journey", low: int = 2, high: int = 10) -> dict:
    return {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": low, "maxReplicas": high, "metrics": list(metrics)}}


CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
STREAM_LAG = {"type": "External", "external": {
    "metric": {"name": "s0-redis-streams-nudge-events-v1", "selector": {"matchLabels": {"scaledobject": "journey"}}},
    "target": {"type": "AverageValue", "averageValue": "1k"}}}


def test_an_autoscaler_on_stream_lag_or_several_metrics_is_sane():
    docs = render(ROOT / "k8s" / "overlays" / "prod")
    assert hpa_problems(_hpa(STREAM_LAG), docs) == []
    assert hpa_problems(_hpa(CPU, STREAM_LAG), docs) == []
    pending = {"type": "Pods", "pods": {"metric": {"name": "stream_pending_entries"},
                                        "target": {"type": "AverageValue", "averageValue": "500"}}}
    per_container = {"type": "ContainerResource", "containerResource": {
        "name": "memory", "container": "journey", "target": {"type": "AverageValue", "averageValue": "400Mi"}}}
    assert hpa_problems(_hpa(pending, per_container), docs) == []


@pytest.mark.parametrize("hpa, problem", [
    (_hpa(CPU, target="no-such-service"), "scaleTargetRef"),
    (_hpa(CPU, low=5, high=3), "replicas"),
    (_hpa(CPU, low=0), "replicas"),
    (_hpa(), "no metrics"),
    (_hpa({"type": "Queue", "queue": {}}), "unknown type"),
    (_hpa({"type": "External", "external": {"metric": {"name": "lag"}}}), "target"),
    (_hpa({"type": "External", "external": {"metric": {"name": "lag"},
                                           "target": {"type": "Utilization", "averageUtilization": 50}}}), "target"),
    (_hpa({"type": "External", "external": {"metric": {"name": "lag"},
                                           "target": {"type": "Value", "value": "0"}}}), "sane value"),
    (_hpa({"type": "Resource", "resource": {"name": "gpu", "target": CPU["resource"]["target"]}}), "known name"),
    (_hpa({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                       "averageUtilization": 700}}}), "sane value"),
    (_hpa({"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "sidecar", "target": CPU["resource"]["target"]}}), "container"),
], ids=["missing-deployment", "min-above-max", "min-zero", "no-metrics", "unknown-type", "no-target",
        "utilization-of-external", "zero-target", "unknown-resource", "utilization-700", "unknown-container"])
def test_an_insane_autoscaler_is_reported(hpa, problem):
    problems = hpa_problems(hpa, render(ROOT / "k8s" / "overlays" / "prod"))
    assert any(problem in p for p in problems), problems


@each_overlay
def test_pods_run_as_non_root_with_read_only_root_filesystem(overlay):
    for d in of_kind(render(overlay), "Deployment"):
        pod = d["spec"]["template"]["spec"]
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for c in pod.get("initContainers", []) + pod["containers"]:
            where = f"{d['metadata']['name']}/{c['name']}"
            sc = pod.get("securityContext", {}) | c.get("securityContext", {})  # container wins
            assert sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in c.get("volumeMounts", [])), where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(bound, {})), f"{where} {bound}"


def test_prod_runs_at_least_two_journey_replicas():
    # A replica that goes leaves its timers and stream entries to another until a new one starts.
    docs = render(ROOT / "k8s" / "overlays" / "prod")
    d = deployment(docs, "journey")
    assert d["spec"].get("replicas", 2) >= 2, "a fixed replica count below 2"
    name = d["metadata"]["name"]
    hpas = [h for h in of_kind(docs, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == name]
    assert len(hpas) == 1
    assert hpas[0]["spec"].get("minReplicas", 1) >= 2  # the API's default is 1
    assert hpas[0]["spec"]["maxReplicas"] >= hpas[0]["spec"]["minReplicas"]
    spread = d["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    assert any(
        t["topologyKey"] == "kubernetes.io/hostname" and selects(t["labelSelector"], pod_labels(d)) for t in spread
    ), "journey replicas are not spread over nodes"


# --- network policies -------------------------------------------------------------


@each_overlay
def test_every_deployment_has_a_network_policy_and_ingress_is_denied_by_default(overlay):
    docs = render(overlay)
    deny_all = [
        p for p in of_kind(docs, "NetworkPolicy")
        if "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress")
    ]
    for d in of_kind(docs, "Deployment"):
        labels = pod_labels(d)
        assert labels.get("app.kubernetes.io/part-of") == "nudge", d["metadata"]["name"]
        assert any(selects(p["spec"]["podSelector"], labels) for p in deny_all), d["metadata"]["name"]
        assert ingress_rules(docs, labels), f"no NetworkPolicy admits traffic to {d['metadata']['name']}"


@each_overlay
@each_grpc_service
def test_grpc_service_admits_only_its_nudge_callers_on_grpc(overlay, service):
    docs = render(overlay)
    rules = ingress_rules(docs, pod_labels(deployment(docs, service)))
    assert rules
    for rule in rules:
        assert rule.get("from"), "an ingress rule without `from` admits every source"
        assert rule.get("ports") and all(p["port"] in (GRPC_SERVICES[service], "grpc") for p in rule["ports"]), rule
        # pod selectors only: no ipBlock, no namespaceSelector (which would widen to other namespaces)
        assert all(set(peer) == {"podSelector"} for peer in rule["from"]), rule
    peers = [peer["podSelector"] for rule in rules for peer in rule["from"]]

    def admitted(labels: dict) -> bool:
        return any(selects(peer, labels) for peer in peers)

    for caller, callee in ADDRS:
        if callee == service:
            assert admitted(pod_labels(deployment(docs, caller))), f"{service} does not admit its caller {caller}"
    for d in of_kind(docs, "Deployment"):
        if admitted(pod_labels(d)):
            assert pod_labels(d)["app.kubernetes.io/name"] in CALLERS[service], d["metadata"]["name"]
    assert not admitted({})
    assert not admitted({"app.kubernetes.io/part-of": "nudge", "app.kubernetes.io/name": "intruder"})
    assert not admitted({"app.kubernetes.io/name": "gateway"}), "a pod merely named gateway is not Nudge's"


@each_overlay
def test_gateway_http_port_is_open_to_anyone(overlay):
    docs = render(overlay)
    rules = ingress_rules(docs, pod_labels(deployment(docs, "gateway")))
    assert any(not r.get("from") and any(p["port"] in (HTTP_PORT, "http") for p in r.get("ports", [])) for r in rules)


# --- ports, probes, wiring --------------------------------------------------------


@each_overlay
@each_grpc_service
def test_grpc_service_serves_on_its_port_with_grpc_probes(overlay, service):
    docs = render(overlay)
    c, port = container(docs, service), GRPC_SERVICES[service]
    assert ("grpc", port) in named_ports(c)
    assert probe_ports(c, "grpc") == {port}
    assert env(docs, c)["NUDGE_GRPC_PORT"] == str(port)
    assert c["command"] == ["python", "-m", f"services.{service}"]


@each_overlay
def test_gateway_serves_http_on_8080_with_health_probes(overlay):
    docs = render(overlay)
    c = container(docs, "gateway")
    assert ("http", HTTP_PORT) in named_ports(c)
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": HTTP_PORT}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": HTTP_PORT}
    assert probe_ports(c, "httpGet") == {HTTP_PORT}
    assert env(docs, c)["NUDGE_HTTP_PORT"] == str(HTTP_PORT)
    assert c["command"] == ["python", "-m", "gateway"]


@each_overlay
@each_call
def test_caller_addr_is_the_grpc_service(overlay, caller, service):
    docs = render(overlay)
    addr = env(docs, container(docs, caller))[ADDRS[caller, service]]
    host, port = addr.removeprefix("dns:///").rsplit(":", 1)
    found = named(docs, "Service", host.split(".")[0])
    assert found, f"no Service named {host.split('.')[0]}"
    assert selects({"matchLabels": found["spec"]["selector"]}, pod_labels(deployment(docs, service)))
    service_port = next((p for p in found["spec"]["ports"] if p["port"] == int(port)), None)
    where = f"{caller} {ADDRS[caller, service]}={addr}"
    assert service_port, f"{where}: Service {found['metadata']['name']} has no port {port}"
    assert service_port["targetPort"] in ("grpc", GRPC_SERVICES[service])


@each_overlay
def test_secret_references_resolve_and_each_service_has_its_own_database(overlay):
    docs = render(overlay)
    database_keys = []
    for component in SETTINGS:
        for e in container(docs, component).get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if not ref:
                continue
            secret = named(docs, "Secret", ref["name"])
            if secret:
                assert ref["key"] in secret.get("data", {}) | secret.get("stringData", {}), ref
            else:
                assert ref["name"] == EXTERNAL_SECRET, f"{ref['name']} is neither rendered nor the documented one"
            if e["name"] == "NUDGE_DATABASE_URL":
                database_keys.append(ref["key"])
    assert len(database_keys) == len(set(database_keys)) == len(SETTINGS)


# --- cross-checks against the Python code -----------------------------------------


@each_overlay
@each_component
def test_env_names_match_settings(overlay, component):
    docs = render(overlay)
    cls = settings_class(component)
    assert cls.model_config.get("env_prefix") == "NUDGE_"
    fields = {"NUDGE_" + name.upper() for name in cls.model_fields}
    unknown = set(env(docs, container(docs, component))) - fields
    assert not unknown, f"{component} gets variables {cls.__name__} does not read: {sorted(unknown)}"


@each_overlay
@each_component
def test_config_values_parse_with_settings(overlay, component, monkeypatch):
    docs = render(overlay)
    for name, value in env(docs, container(docs, component)).items():
        if value is not None:  # values from Secrets are not in the manifests
            monkeypatch.setenv(name, value)
    settings_class(component)(_env_file=None)


@each_overlay
def test_ports_match_settings_defaults(overlay):
    docs = render(overlay)
    for service, port in GRPC_SERVICES.items():
        grpc_port = settings_class(service).model_fields["grpc_port"].default
        assert grpc_port == port, service
        c = container(docs, service)
        assert grpc_port in [p["containerPort"] for p in c["ports"]], service
        assert probe_ports(c, "grpc") == {grpc_port}, service
    http_port = settings_class("gateway").model_fields["http_port"].default
    assert http_port == HTTP_PORT
    gateway = container(docs, "gateway")
    assert http_port in [p["containerPort"] for p in gateway["ports"]]
    assert probe_ports(gateway, "httpGet") == {http_port}


@each_call
def test_addr_defaults_match_grpc_ports_settings(caller, service):
    field = ADDRS[caller, service].removeprefix("NUDGE_").lower()
    fields = settings_class(caller).model_fields
    assert field in fields, f"{settings_class(caller).__name__} has no {field}"
    host, port = fields[field].default.rsplit(":", 1)
    assert host in LOOPBACK, f"{caller}.{field} = {fields[field].default!r}"
    assert int(port) == settings_class(service).model_fields["grpc_port"].default, f"{caller}.{field}"


@each_overlay
def test_probe_paths_match_gateway_app_routes(overlay):
    from gateway.app import create_app

    paths = {getattr(route, "path", None) for route in create_app().routes}
    c = container(render(overlay), "gateway")
    for probe in PROBES:
        if probe in c:
            assert c[probe]["httpGet"]["path"] in paths, f"{probe} path is not a gateway route"
