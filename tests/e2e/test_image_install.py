"""The container image without a Docker engine: the Dockerfile's build stage replayed for real.

The build stage's COPY (filtered by .dockerignore), ENV and RUN instructions run in order into a
fresh virtualenv, /opt/syncd mapped to a temporary directory. The installed CLI then runs as the
pods run it: ``--version``, ``check-config`` on the ConfigMap's syncd.yaml with the token from the
environment, and a one-shot ``sync`` on a read-only root file system (a private mount namespace)
with only the state directory and a temporary directory writable, against the Cloudflare simulator.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from syncd import __version__
from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, ZONE
from tests.deploy.test_deploy import ROOT, Stage, dockerfile_stages, dockerignore

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CONFIGMAP_CONFIG = ROOT / "deploy/kubernetes/common/syncd.yaml"
IMAGE_PREFIX = "/opt/syncd"
SECRET = "cf-token-0d9e7a41b2c5f8e3a6d1c4b7e0f3a2d5c8b1e4f7"


@dataclass(frozen=True)
class Image:
    """The replayed build: the virtualenv that is /opt/syncd in the image, and step timings."""

    prefix: Path
    timings: list[tuple[str, float]]

    @property
    def syncd(self) -> Path:
        return self.prefix / "bin/syncd"


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment without this test run's virtualenv, config or Cloudflare settings."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "SYNCD_CONFIG"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CLOUDFLARE_")}
    return env | extra


def _copy(args: str, workdir: Path) -> None:
    """COPY src... dest from the build context, leaving out what .dockerignore leaves out."""
    ignored = dockerignore()
    *sources, dest = args.split()
    target = workdir / dest
    for source in sources:
        assert not ignored(source.rstrip("/")), f"{source} is not in the build context"
        path = ROOT / source
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for file in files:
            if ignored(file.relative_to(ROOT).as_posix()):
                continue
            out = target / file.relative_to(path) if path.is_dir() else target / file.name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, out)


def _replay(stage: Stage, work: Path, build_args: dict[str, str] | None = None) -> Image:
    prefix = work / "opt-syncd"
    bin_dir = (
        work / "bin"
    )  # `python` is the base interpreter, as /usr/local/bin/python in the image
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    env = _clean_env({"PATH": f"{bin_dir}:/usr/bin:/bin"})
    workdir, timings = work, []
    for keyword, args in stage.instructions:
        started = time.monotonic()
        if keyword == "WORKDIR":
            workdir = work / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            _copy(args, workdir)
        elif keyword == "ENV":
            env |= dict(pair.split("=", 1) for pair in shlex.split(args))
        elif keyword == "ARG":  # --build-arg NAME=value wins over the default
            name, _, default = args.partition("=")
            env[name] = (build_args or {}).get(name, default)
        elif keyword == "RUN":
            command = re.sub(r"--mount=\S+\s+", "", args).replace(IMAGE_PREFIX, str(prefix))
            out = subprocess.run(
                ["sh", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert 0 == out.returncode, f"RUN {command}\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
        else:
            pytest.fail(f"the replay does not know the build-stage instruction {keyword}")
        timings.append((f"{keyword} {args}"[:60], time.monotonic() - started))
    return Image(prefix=prefix, timings=timings)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image's /opt/syncd, built by the Dockerfile's own build-stage instructions."""
    build = dockerfile_stages()[0]
    built = _replay(build, tmp_path_factory.mktemp("image"))
    for step, seconds in built.timings:
        print(f"replay {seconds:6.1f}s  {step}")
    return built


@pytest.fixture(scope="module")
def aws_image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image built with ``--build-arg EXTRAS=aws``: the core and the AWS SDK only."""
    build = dockerfile_stages()[0]
    return _replay(build, tmp_path_factory.mktemp("image-aws"), {"EXTRAS": "aws"})


def _distributions(image: Image) -> set[str]:
    out = subprocess.run(
        [
            str(image.prefix / "bin/python"),
            "-c",
            "import importlib.metadata as m; "
            "print('\\n'.join(d.metadata['Name'].lower() for d in m.distributions()))",
        ],
        env=_clean_env({}),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def _syncd(
    image: Image, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(image.syncd), *args],
        cwd=cwd,
        env=_clean_env({"PATH": f"{image.prefix}/bin:/usr/bin:/bin"} | env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_installed_cli_reports_the_package_version(image: Image, tmp_path: Path):
    out = _syncd(image, "--version", cwd=tmp_path, env={})
    assert (0, f"syncd {__version__}") == (out.returncode, out.stdout.strip())


def test_image_holds_a_real_install_not_the_work_tree(image: Image, tmp_path: Path):
    out = subprocess.run(
        [str(image.prefix / "bin/python"), "-c", "import syncd; print(syncd.__file__)"],
        cwd=tmp_path,
        env=_clean_env({}),
        capture_output=True,
        text=True,
        check=True,
    )
    site = Path(out.stdout.strip()).parent.parent
    assert image.prefix in Path(out.stdout.strip()).parents
    assert "site-packages" == site.name
    assert not (site / "tests").exists()
    assert list(site.glob("syncd/__pycache__/*.pyc")), "the bytecode is compiled into the image"


def test_check_config_of_the_configmap_masks_the_token(image: Image, tmp_path: Path):
    env = {"SYNCD_CONFIG": str(CONFIGMAP_CONFIG), "CLOUDFLARE_API_TOKEN": SECRET}
    out = _syncd(image, "check-config", cwd=tmp_path, env=env)
    assert 0 == out.returncode, out.stderr
    assert SECRET not in out.stdout + out.stderr
    effective = yaml.safe_load(out.stdout)
    assert "***" == effective["cloudflare"]["api_token"]
    assert {"upsert-only"} == {z["policy"] for z in effective["cloudflare"]["zones"]}
    assert "/var/lib/syncd/state.db" == effective["state"]["path"]


def test_check_config_without_the_token_is_a_config_error(image: Image, tmp_path: Path):
    out = _syncd(image, "check-config", cwd=tmp_path, env={"SYNCD_CONFIG": str(CONFIGMAP_CONFIG)})
    assert 2 == out.returncode
    assert "CLOUDFLARE_API_TOKEN" in out.stderr


def _read_only_root(
    argv: list[str], writable: list[Path], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the pod does: / mounted read-only in a private mount namespace, only
    ``writable`` (the state volume and /tmp) writable, every capability dropped."""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if unshare is None or setpriv is None:
        pytest.skip("unshare and setpriv (util-linux) are needed")
    binds = "".join(
        f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))} && " for p in writable
    )
    script = (
        f"{binds}mount -o remount,bind,ro / && "
        f'exec {setpriv} --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"'
    )
    return subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_one_shot_sync_runs_on_a_read_only_root(
    image: Image, cf: CloudflareSimulator, tmp_path: Path
):
    state, tmp = tmp_path / "state", tmp_path / "tmp"
    state.mkdir()
    tmp.mkdir()
    probe = _read_only_root(
        ["sh", "-c", f"touch {tmp_path}/probe"], [state, tmp], os.environ.copy()
    )
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"no private read-only mount here: {probe.stderr.strip()[:200]}")
    raw = yaml.safe_load(CONFIGMAP_CONFIG.read_text())
    raw["collectors"] = {"static": [{"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"}]}
    raw["state"]["path"] = str(state / "state.db")
    config = tmp_path / "syncd.yaml"
    config.write_text(yaml.safe_dump(raw))
    cf.add_dns_record(ZONE, "A", "origin.example.com", "192.0.2.10")
    env = _clean_env(
        {
            "PATH": f"{image.prefix}/bin:/usr/bin:/bin",
            "SYNCD_CONFIG": str(config),
            "CLOUDFLARE_API_TOKEN": TOKEN,
            "CLOUDFLARE_BASE_URL": cf.base_url,
            "HOME": str(state),
            "TMPDIR": str(tmp),
        }
    )
    out = _read_only_root([str(image.syncd), "sync"], [state, tmp], env)
    assert 0 == out.returncode, out.stdout + out.stderr
    assert {"192.0.2.10": ("aws", "us-east-1")} == cf.mappings(ZONE)
    assert (state / "state.db").is_file()
    assert TOKEN not in out.stdout + out.stderr


def test_the_image_installs_nothing_at_run_time(image: Image):
    # pip and setuptools leave the virtualenv (the runtime stage removes the base image's too).
    assert not (image.prefix / "bin/pip").exists()
    assert {"pip", "setuptools"}.isdisjoint(_distributions(image))
    assert {"boto3", "oci", "google-cloud-compute", "azure-mgmt-network"} <= _distributions(image)


SDKS = {"boto3", "botocore", "oci", "google-cloud-compute", "google-auth", "azure-mgmt-network"}
SDKS |= {"azure-identity", "azure-core", "google-cloud-resource-manager", "google-api-core"}


def test_an_aws_only_image_carries_no_other_cloud_sdk(aws_image: Image):
    installed = _distributions(aws_image)
    assert {"syncd", "boto3", "botocore"} <= installed
    assert {"boto3", "botocore"} == SDKS & installed


def test_a_cloud_without_its_extra_is_a_config_error_naming_the_extra(
    aws_image: Image, tmp_path: Path
):
    raw = yaml.safe_load(CONFIGMAP_CONFIG.read_text())
    raw["collectors"] = {"gcp": [{"name": "prod", "projects": ["p-1"]}]}
    config = tmp_path / "syncd.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {"SYNCD_CONFIG": str(config), "CLOUDFLARE_API_TOKEN": SECRET}
    out = _syncd(aws_image, "check-config", cwd=tmp_path, env=env)
    assert 2 == out.returncode, out.stdout + out.stderr
    [line] = out.stderr.strip().splitlines()
    assert "collectors.gcp" in line
    assert "pip install 'syncd[gcp]'" in line
    assert "Traceback" not in out.stderr


def test_an_aws_only_image_syncs_an_aws_account(
    aws_image: Image, cf: CloudflareSimulator, tmp_path: Path
):
    """The AWS-only install does a real sync: the AWS collector on boto3 against moto."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        moto = f"http://{host}:{port}"
        aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        ec2 = boto3.client(
            "ec2",
            region_name="eu-west-1",
            endpoint_url=moto,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ip = ec2.allocate_address(Domain="vpc", Address="198.51.100.20")["PublicIp"]
        cf.add_dns_record(ZONE, "A", "origin.example.com", ip)
        raw = yaml.safe_load(CONFIGMAP_CONFIG.read_text())
        raw["collectors"] = {
            "aws": [{"name": "prod", "regions": ["eu-west-1"], "endpoint_url": moto}]
        }
        raw["state"]["path"] = str(tmp_path / "state.db")
        config = tmp_path / "syncd.yaml"
        config.write_text(yaml.safe_dump(raw))
        env = aws | {
            "SYNCD_CONFIG": str(config),
            "CLOUDFLARE_API_TOKEN": TOKEN,
            "CLOUDFLARE_BASE_URL": cf.base_url,
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "HOME": str(tmp_path),
        }
        out = _syncd(aws_image, "sync", cwd=tmp_path, env=env)
    finally:
        server.stop()
    assert 0 == out.returncode, out.stdout + out.stderr
    assert {ip: ("aws", "eu-west-1")} == cf.mappings(ZONE)


def test_the_demo_without_its_extra_is_one_line_and_exit_2(aws_image: Image, tmp_path: Path):
    out = _syncd(aws_image, "demo", cwd=tmp_path, env={})
    assert 2 == out.returncode, out.stdout + out.stderr
    [line] = out.stderr.strip().splitlines()
    assert "pip install 'syncd[demo]'" in line
    assert "moto" in line
    assert "" == out.stdout
