"""infra/: the container installs gid exactly like the Makefile, the KubeRay manifests have what
KubeRay requires, their entrypoints are real `gid` commands, and the MLflow stack is pinned."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
MANIFESTS = sorted((INFRA / "k8s").glob("ray*.yaml"))


def ray_version():
    import ray

    return ray.__version__


def makefile_install_commands(extras="dev"):
    """The pip commands of the Makefile's install recipe, with $(PY) as plain `python` and $(EXTRAS) given."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(STAMP):"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return [c.replace("$(PY)", "python").replace("$(EXTRAS)", extras) for c in recipe if "pip install" in c]


def dockerfile_instructions():
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_installs_exactly_like_the_makefile():
    runs = [i[len("RUN "):] for i in dockerfile_instructions() if i.startswith("RUN ")]
    docker = [c.strip() for run in runs for c in run.split("&&") if "pip install" in c]
    make = makefile_install_commands("gpu,dev")
    assert len(make) >= 2 and docker == make


def test_the_gpu_image_has_the_gpu_extras_and_runs_make_bench_gpu_as_is():
    """CuPy (the `gpu` extra) is installed; the Makefile uses the image's Python (VENV) and sees the
    install as done (its stamp), so `make bench-gpu` goes straight to benchmarks/gpu.py."""
    instructions = dockerfile_instructions()
    env = " ".join(i for i in instructions if i.startswith("ENV "))
    venv = re.search(r"VENV=(\S+)", env).group(1)
    assert "EXTRAS=gpu,dev" in env and '".[gpu,dev]"' in " ".join(instructions)
    assert any(f"touch {venv}/.install-stamp" in i for i in instructions if i.startswith("RUN "))
    makefile = (ROOT / "Makefile").read_text()
    assert "VENV ?= .venv" in makefile and "STAMP := $(VENV)/.install-stamp" in makefile
    recipe = re.search(r"^bench-gpu: install\n\t(.+)$", makefile, re.M).group(1)
    assert recipe.startswith("$(PY) benchmarks/gpu.py")


def test_bench_gpu_without_cuda_says_so_in_one_line_and_exits_0():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")], capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "bench-gpu: no CUDA device (torch.cuda.is_available() is False); nothing to run"]


def test_dockerfile_base_image_is_ray_gpu_at_the_pinned_version():
    base = next(i for i in dockerfile_instructions() if i.startswith("FROM ")).split()[1]
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py3(\d+)-(gpu|cu\d+)", base)
    assert match, base
    assert match.group(1) == ray_version() == "2.60.0"
    assert int(match.group(2)) >= 11  # pyproject: requires-python >= 3.11
    assert f"ray=={ray_version()}" in (INFRA / "Dockerfile").read_text()  # constraint keeps the base's Ray


def load(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def cluster_specs():
    """(file, RayCluster spec) for the RayCluster and every RayJob's embedded cluster."""
    out = []
    for path in MANIFESTS:
        for doc in load(path):
            spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
            out.append((path.name, spec))
    return out


def test_manifests_are_kuberay_objects():
    kinds = {}
    for path in MANIFESTS:
        for doc in load(path):
            assert doc["apiVersion"] == "ray.io/v1", path
            assert doc["metadata"]["name"] and doc["metadata"]["namespace"] == "gid"
            kinds.setdefault(doc["kind"], []).append(doc["metadata"]["name"])
    assert len(kinds["RayCluster"]) == 1
    assert {"gid-preprocess", "gid-train", "gid-render"} <= set(kinds["RayJob"])


@pytest.mark.parametrize("name,spec", cluster_specs(), ids=lambda v: v if isinstance(v, str) else "")
def test_cluster_specs_have_the_fields_kuberay_requires(name, spec):
    assert spec["rayVersion"] == ray_version()
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec["workerGroupSpecs"]]
    for group_name, group in groups:
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), f"{name}/{group_name}: strings only"
        pod = group["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            assert container["name"] and container["image"].startswith("gid:")
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert limits == requests, f"{name}/{group_name}: Ray sizes itself from limits; keep them equal"
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes
            assert [e["secretRef"]["name"] for e in container.get("envFrom", [])] in ([], ["gid-env"])
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
        assert claims <= {"gid-data"}
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert spec["headGroupSpec"]["template"]["spec"]["containers"][0]["name"] == "ray-head"


def test_gpu_worker_groups_where_the_work_is_on_gpus():
    for name, spec in cluster_specs():
        gpus = [g for g in spec["workerGroupSpecs"]
                if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]]
        if name in ("raycluster.yaml", "rayjob-train.yaml", "rayjob-render.yaml"):
            assert gpus, name


def entrypoints():
    out = []
    for path in MANIFESTS:
        for doc in load(path):
            if doc["kind"] == "RayJob":
                out.extend((path.name, cmd.strip()) for cmd in doc["spec"]["entrypoint"].split("&&"))
    return out


@pytest.mark.parametrize("name,command", entrypoints())
def test_entrypoints_are_real_gid_commands(name, command):
    """Each command parses with the real CLI, and its options are in that command's --help."""
    import typer

    from gid.stages.cli import app

    words = shlex.split(command)
    assert words[0] == "gid", command
    group = typer.main.get_command(app)
    path, cmd, args = [], group, words[1:]
    while hasattr(cmd, "commands"):  # a group (typer vendors its own click)
        path.append(args[0])
        cmd, args = cmd.commands[args[0]], args[1:]
    cmd.make_context(" ".join(path), list(args))  # raises a UsageError on an unknown option or bad value
    help_text = subprocess.run([sys.executable, "-m", "gid.stages.cli", *path, "--help"], capture_output=True,
                               text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert help_text.returncode == 0, help_text.stderr
    for word in args:
        if word.startswith("--"):
            assert word.split("=")[0] in help_text.stdout, f"{name}: {word} is not an option of gid {' '.join(path)}"


def test_mlflow_stack_is_pinned_and_wired():
    import mlflow

    compose = yaml.safe_load((INFRA / "mlflow" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "mlflow"} <= set(services)
    for service in services.values():
        image = service.get("image")
        if image:
            assert ":" in image and not image.endswith(":latest"), image
    assert re.fullmatch(r"minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", services["minio"]["image"])
    command = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri=postgresql://" in command and "@postgres:5432/" in command
    assert "--artifacts-destination=s3://mlflow/" in command
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    base = (INFRA / "mlflow" / "Dockerfile").read_text()
    assert f"ghcr.io/mlflow/mlflow:v{mlflow.__version__}" in base


def test_storage_claim_is_shared_read_write():
    (claim,) = load(INFRA / "k8s" / "storage.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == "gid-data"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
