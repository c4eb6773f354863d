"""The Kubernetes manifests in deploy/k8s, checked offline: no cluster is needed.

- The core manifests validate against the Kubernetes API schemas of a pinned version, in
  strict mode (unknown fields fail); a broken manifest shows that the check can fail.
- The KServe InferenceService is a custom resource with no schema here: its predictor is a
  plain PodSpec, so it is validated inside a Pod, and the KServe fields are checked by hand.
- Every probe asks for a path the service really answers, on the port BentoML serves on.
- The pieces fit together: Service port, HPA target, PDB selector, user, writable paths.
"""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31.0"  # the oldest version the manifests are meant for
CORE = ("deployment", "service", "hpa", "pdb")  # what kustomization.yaml applies
BENTOML_PORT = 3000
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
KSERVE_PREDICTOR_FIELDS = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"}


def load(name: str) -> dict:
    return yaml.safe_load((K8S_DIR / f"{name}.yaml").read_text())


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def pod_spec(name: str) -> dict:
    """The PodSpec of deployment.yaml or kserve.yaml (a KServe predictor embeds one)."""
    manifest = load(name)
    if manifest["kind"] == "InferenceService":
        return manifest["spec"]["predictor"]
    return manifest["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", CORE)
def test_core_manifest_validates_against_the_kubernetes_api(name):
    validate(load(name))


@pytest.mark.parametrize("field, value", [("replicas", "two"), ("replica", 2)])
def test_validation_rejects_a_broken_manifest(tmp_path, field, value):
    broken = load("deployment")
    broken["spec"][field] = value  # a wrong type, then an unknown field
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(yaml.safe_load(path.read_text()))


def test_kserve_predictor_is_a_valid_pod_spec():
    # No schema for the InferenceService CRD offline: check what a plain Pod can carry, and
    # the KServe fields by hand. Whether KServe accepts the rest needs a cluster with KServe.
    isvc = load("kserve")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = isvc["spec"]["predictor"]
    spec = {key: value for key, value in predictor.items() if key not in KSERVE_PREDICTOR_FIELDS}
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": spec})
    assert [container["name"] for container in spec["containers"]] == ["kserve-container"]
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    assert predictor["scaleMetric"] in {"cpu", "memory", "concurrency", "rps"}
    assert 0 < predictor["scaleTarget"] <= 100


@pytest.mark.parametrize("name", ["deployment", "kserve"])
def test_probes_ask_the_service_on_its_port(name, client):
    (container,) = pod_spec(name)["containers"]
    ports = {port.get("name"): port["containerPort"] for port in container["ports"]}
    assert list(ports.values()) == [BENTOML_PORT]
    probes = [container[probe]["httpGet"] for probe in PROBES]
    assert [probe["path"] for probe in probes] == ["/readyz", "/readyz", "/livez"]
    for probe in probes:
        assert ports.get(probe["port"], probe["port"]) == BENTOML_PORT  # by name or number
        assert client.get(probe["path"]).status_code == 200, probe["path"]


def test_prometheus_scrapes_pods_like_the_local_setup():
    # /metrics is served by `bentoml serve` (test_monitoring.py scrapes it), not by the
    # in-process app, so compare with the local scrape config instead.
    local = yaml.safe_load((K8S_DIR.parent.parent / "monitoring" / "prometheus.yml").read_text())
    (job,) = [job for job in local["scrape_configs"] if job["job_name"] == "credit-risk"]
    local_port = job["static_configs"][0]["targets"][0].rpartition(":")[2]
    annotations = load("deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == job.get("metrics_path", "/metrics")
    assert annotations["prometheus.io/port"] == local_port == str(BENTOML_PORT)


@pytest.mark.parametrize("name", ["deployment", "kserve"])
def test_image_is_pinned_to_a_version(name):
    (container,) = pod_spec(name)["containers"]
    repository, _, tag = container["image"].rpartition(":")
    assert repository.endswith("/credit_risk_service")
    assert tag and tag != "latest"


@pytest.mark.parametrize("name", ["deployment", "kserve"])
def test_runs_as_the_images_user_with_a_read_only_root(name):
    spec = pod_spec(name)
    (container,) = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    # 1034 is BENTO_USER_UID in the Dockerfile BentoML generates (USER bentoml).
    assert spec["securityContext"]["runAsUser"] == 1034
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # Read-only root: everything the server writes must be on a volume.
    assert security["readOnlyRootFilesystem"] is True
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {env["BENTOML_HOME"], env["CREDIT_RISK_LOG_DIR"], "/tmp"} <= mounted
    assert env["OMP_NUM_THREADS"] == "1"
    assert "CREDIT_RISK_MODEL" not in env  # the image holds exactly one model


@pytest.mark.parametrize("name", ["deployment", "kserve"])
def test_api_keys_come_from_a_read_only_secret_and_anonymous_access_is_off(name):
    spec = pod_spec(name)
    (container,) = spec["containers"]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert "CREDIT_RISK_ALLOW_ANONYMOUS" not in env
    keys_folder = str(Path(env["CREDIT_RISK_API_KEYS_FILE"]).parent)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == keys_folder]
    assert mount["readOnly"] is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["defaultMode"] & 0o007 == 0  # not world-readable


def test_service_hpa_and_pdb_point_at_the_deployment():
    deployment, service, hpa, pdb = (load(name) for name in CORE)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]
    assert "http" in {port["name"] for port in container["ports"]}
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # A budget as high as the minimum replica count would block every node drain.
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_kustomization_lists_the_core_manifests_with_a_pinned_tag():
    kustomization = load("kustomization")
    assert sorted(kustomization["resources"]) == sorted(f"{name}.yaml" for name in CORE)
    (image,) = kustomization["images"]
    assert image["newTag"] != "latest"
