"""docker-compose.yml, the Dockerfile and deploy/: valid, and every file they name exists.

No container engine runs here, so the compose file is checked with Debian's
docker-compose (`docker-compose config -q`, which resolves anchors, profiles and
variables without an engine; `make compose-deps` installs it). Without it these tests
skip, except under CI (``$CI``), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILES = {
    "default": [],
    "ingest": ["--profile", "ingest"],
    "watch": ["--profile", "watch"],
    "cluster": ["--profile", "cluster"],
    "monitoring": ["--profile", "monitoring"],
}


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        reason = "docker-compose is not installed (make compose-deps)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "clipsearch-test"},
    )


def resolved(profile: str) -> dict[str, Any]:
    done = compose(*PROFILES[profile], "config")
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_config_is_valid(profile: str) -> None:
    done = compose(*PROFILES[profile], "config", "-q")
    assert done.returncode == 0, done.stderr


def test_default_services_and_their_wiring() -> None:
    services = resolved("default")["services"]
    always = {name for name, service in services.items() if not service.get("profiles")}
    assert always == {"qdrant", "webapp"}  # ingest, watch and the cluster are profiles
    assert services["ingest"]["profiles"] == ["ingest"]
    assert services["watch"]["profiles"] == ["watch"]
    qdrant, webapp = services["qdrant"], services["webapp"]
    image = qdrant["image"]
    assert image.startswith("qdrant/qdrant:v") and not image.endswith(":latest")
    assert "/readyz" in " ".join(qdrant["healthcheck"]["test"])
    assert webapp["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert webapp["environment"]["CLIPSEARCH_QDRANT_URL"] == "http://qdrant:6333"
    assert "gunicorn" in webapp["command"]
    targets = {
        str(v).split(":")[1] if isinstance(v, str) else v["target"] for v in qdrant["volumes"]
    }
    assert {"/qdrant/storage", "/qdrant/config/production.yaml"} <= targets


def test_cluster_profile_has_three_nodes_joined_over_p2p() -> None:
    services = resolved("cluster")["services"]
    nodes = sorted(name for name in services if name.startswith("qdrant-node"))
    assert nodes == ["qdrant-node1", "qdrant-node2", "qdrant-node3"]
    assert "--uri" in services["qdrant-node1"]["command"]
    for name in nodes[1:]:
        command = services[name]["command"]
        assert command[command.index("--bootstrap") + 1] == "http://qdrant-node1:6335"
    for name in nodes:
        assert services[name]["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"


def test_ingest_is_a_one_shot_job_under_its_profile() -> None:
    ingest = resolved("ingest")["services"]["ingest"]
    assert ingest["command"][:2] == ["clipsearch", "ingest"]
    # into a version behind the alias the app reads (its collection), swapped when done
    app_collection = resolved("default")["services"]["webapp"]["environment"][
        "CLIPSEARCH_COLLECTION"
    ]
    assert ingest["command"][-2:] == ["--alias", app_collection]
    assert ingest["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert "restart" not in ingest


def test_watch_keeps_the_apps_collection_in_step_with_the_data() -> None:
    services = resolved("watch")["services"]
    watch, webapp = services["watch"], services["webapp"]
    assert watch["command"][:3] == ["clipsearch", "watch", "/data"]
    assert watch["command"][watch["command"].index("--interval") + 1] == "30"
    env, app_env = watch["environment"], webapp["environment"]
    for name in ("CLIPSEARCH_QDRANT_URL", "CLIPSEARCH_COLLECTION", "CLIPSEARCH_MODEL"):
        assert env[name] == app_env[name]  # the store and model the app serves
    volumes = {v.split(":")[1]: v for v in watch["volumes"]}  # Debian's compose: strings
    assert volumes["/data"].endswith(":ro")
    assert volumes["/app/var/media"].startswith("media:")  # the posters the app serves
    assert volumes["/app/var/media"] in webapp["volumes"]
    assert watch["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert watch["restart"] == "unless-stopped"
    assert watch["stop_grace_period"] == "60s"  # SIGTERM: the batch in flight ends


def mounted(service: dict[str, Any]) -> dict[str, str]:
    """A resolved service's volumes, target -> source (Debian's docker-compose writes them
    as ``source:target[:mode]``)."""
    out = {}
    for volume in service["volumes"]:
        source, target = (
            volume.split(":")[:2]
            if isinstance(volume, str)
            else (
                volume["source"],
                volume["target"],
            )
        )
        out[target] = source
    return out


def test_monitoring_scrapes_the_app_and_qdrant_with_pinned_images() -> None:
    services = resolved("monitoring")["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    for service in (prometheus, grafana):
        image, _, tag = service["image"].partition(":")
        assert tag and tag != "latest" and image in {"prom/prometheus", "grafana/grafana"}
    mounts = mounted(prometheus)
    assert Path(mounts["/etc/prometheus"]) == ROOT / "deploy" / "prometheus"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets == {"clipsearch": ["webapp:8000"], "qdrant": ["qdrant:6333"]}
    assert config["rule_files"] == ["alerts.yml"]
    grafana_mounts = mounted(grafana)
    assert Path(grafana_mounts["/var/lib/grafana/dashboards"]) == ROOT / "deploy/grafana/dashboards"
    # only the monitoring profile starts them
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]


def test_every_file_they_name_exists() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("Dockerfile", "deploy/qdrant/config.yaml"):
        assert (ROOT / name).is_file(), name
    assert "./deploy/qdrant/config.yaml" in text
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies a missing {source}"
    stages = {
        line.split()[-1]: line.split()[1]
        for line in dockerfile.splitlines()
        if line.startswith("FROM ")
    }
    assert stages["runtime"] == "${BASE}" and "ARG BASE=python:3.11-slim-bookworm" in dockerfile
    assert {"serve", "ingest"} <= set(stages) and dockerfile.count("USER clipsearch") == 2
    # the web app's image: the serve extra only; torch's CPU wheel goes to the ingest image
    serve_build = dockerfile.split("AS serve-build", 1)[1].split("FROM ", 1)[0]
    assert "'/src[serve]'" in serve_build and "torch" not in serve_build
    assert "torch==2.13.0" in dockerfile.split("AS ingest-build", 1)[1].split("FROM ", 1)[0]
    k8s = yaml.safe_load((ROOT / "deploy/k8s/ingest-indexed-job.yaml").read_text())
    assert k8s["kind"] == "Job" and k8s["spec"]["completionMode"] == "Indexed"
    args = " ".join(k8s["spec"]["template"]["spec"]["containers"][0]["args"])
    assert f'/{k8s["spec"]["completions"]}"' in args and "--shard" in args


def test_qdrant_config_is_production_ready() -> None:
    config = yaml.safe_load((ROOT / "deploy/qdrant/config.yaml").read_text())
    assert config["telemetry_disabled"] is True
    assert config["storage"]["snapshots_path"] == "/qdrant/snapshots"
    assert "api_key" not in config["service"]  # from the environment, never in a file
    assert config["cluster"]["p2p"]["port"] == 6335
    # new collections are int8-quantized, and the client rescores with oversampling
    scalar = config["storage"]["collection"]["quantization"]["scalar"]
    assert scalar["type"] == "int8" and scalar["always_ram"] is True
    from clipsearch.store.client import WINDOW_SEARCH_PARAMS

    assert WINDOW_SEARCH_PARAMS.quantization is not None
    assert WINDOW_SEARCH_PARAMS.quantization.rescore is True
    assert WINDOW_SEARCH_PARAMS.quantization.oversampling == 2.0


def test_the_container_test_script_parses_and_builds_both_images() -> None:
    script = ROOT / "deploy/podman/container-test.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert '--target "$1"' in text and "build serve" in text and "build ingest" in text
    assert "--read-only" in text and "--build-arg BASE=" in text
    makefile = (ROOT / "Makefile").read_text()
    assert "container-test: install podman-deps" in makefile
    assert "make container-test" in (ROOT / ".ci/run").read_text()


PODMAN_TOOLS = ("podman", "runc", "debootstrap", "unshare")


@pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in PODMAN_TOOLS),
    reason="needs root with podman, runc, debootstrap and unshare (make podman-deps)",
)
def test_the_container_test_refuses_to_start_without_room_for_the_builds(tmp_path: Path) -> None:
    # a 64 MB tmpfs, in a mount namespace of its own, as the script's work folder
    work = tmp_path / "work"
    work.mkdir()
    script = ROOT / "deploy/podman/container-test.sh"
    mount_and_run = 'mount -t tmpfs -o size=64m tmpfs "$WORK" && exec "$0"'
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", mount_and_run, str(script)],
        env={**os.environ, "WORK": str(work)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    failed = [line for line in run.stderr.splitlines() if line.startswith("container-test: FAILED")]
    assert len(failed) == 1
    assert "GB free under" in failed[0] and "takes about 1" in failed[0]
    assert "[time]" not in run.stdout  # stopped before building anything
    assert not (work / "logs").exists()  # the tmpfs went with its namespace: nothing written here
