"""What a space's repository controls at build time: SDK and Python versions, dependency files;
and that a push changing only app code reuses every layer below it."""

from __future__ import annotations

import docker
from gradio_client import Client

from tests.utils.platform import Platform

REPORT_APP = """
import shutil
import sys

import gradio as gr
import six

def report(_):
    return {{"gradio": gr.__version__, "python": sys.version.split()[0], "six": six.__version__,
            "jq": bool(shutil.which("jq")), "marker": "{marker}"}}

gr.Interface(report, "text", "json", api_name="report").launch()
"""


def test_dependency_files_and_layer_reuse(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": "---\nsdk: gradio\n---\n",
            "app.py": REPORT_APP.format(marker="one"),
            "requirements.txt": "six==1.16.0\n",
            "pre-requirements.txt": "wheel\n",
            "packages.txt": "# command-line JSON tool\njq\n",
        },
    )
    platform.wait_stage(space, "RUNNING")
    report = Client(platform.app_url(space), verbose=False).predict("", api_name="/report")
    assert report["six"] == "1.16.0" and report["jq"] is True and report["marker"] == "one"

    platform.push(space, {"app.py": REPORT_APP.format(marker="two")})
    runtime = platform.wait_stage(space, "RUNNING")
    build_log = platform.logs(space, "build")
    assert "Installing gradio" not in build_log
    pip_step = next(
        line for line in build_log.splitlines() if "RUN pip install -r /tmp/spacehub/requirements.txt" in line
    )
    step = pip_step.split()[0]
    assert f"{step} CACHED" in build_log, build_log
    assert Client(platform.app_url(space), verbose=False).predict("", api_name="/report")["marker"] == "two"
    assert runtime["sha"]


def test_sdk_version_and_python_version_pick_the_runtime(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": '---\nsdk: gradio\nsdk_version: 5.49.1\npython_version: "3.13"\n---\n',
            "app.py": REPORT_APP.format(marker="versions"),
            # The space asks for another Gradio: the pinned SDK wins, and pip says so.
            "requirements.txt": "six==1.16.0\n",
        },
    )
    platform.wait_stage(space, "RUNNING", timeout=1200)
    report = Client(platform.app_url(space), verbose=False).predict("", api_name="/report")
    assert report["gradio"] == "5.49.1"
    assert report["python"].startswith("3.13.")


def test_a_requirement_conflicting_with_the_sdk_fails_clearly(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": "---\nsdk: gradio\n---\n",
            "app.py": "import gradio\n",
            "requirements.txt": "gradio==4.44.1\n",
        },
    )
    runtime = platform.wait_stage(space, "BUILD_ERROR")
    assert "gradio" in runtime["errorMessage"]
    assert "conflict" in runtime["errorMessage"].lower() or "ResolutionImpossible" in runtime["errorMessage"]


def test_containers_get_the_flavor_limits(platform: Platform, gradio_space: str) -> None:
    subdomain = platform.info(gradio_space)["subdomain"]
    container = next(c for c in platform.containers(all=False) if c.labels["spacehub.subdomain"] == subdomain)
    host_config = docker.from_env().api.inspect_container(container.id)["HostConfig"]
    assert host_config["Memory"] == 16 * 1024**3
    assert host_config["NanoCpus"] == 2 * 10**9
    assert host_config["PidsLimit"] == 4096
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host_config["SecurityOpt"]
    assert not any("docker.sock" in bind for bind in host_config.get("Binds") or [])
    assert container.attrs["Config"]["User"] == "1000:1000"


def test_a_dockerfile_that_installs_packages_builds_behind_an_intercepting_proxy(
    platform: Platform, space_name: str
) -> None:
    """`FROM python:3.11-slim` then `pip install` from PyPI: the image trusts this host's CA bundle
    (this machine's outbound TLS goes through an intercepting CA), as the SDK runtimes do."""
    space = platform.create_space(space_name, sdk="docker")
    platform.push(
        space,
        {
            "README.md": "---\nsdk: docker\napp_port: 8080\n---\n",
            # The space's name in the RUN line: never a layer cached by an earlier run.
            "Dockerfile": f"""FROM python:3.11-slim
RUN echo {space_name} && pip install --no-cache-dir six==1.16.0
RUN useradd -m -u 1000 user
USER user
CMD ["python", "-c", "import http.server, six; http.server.test(port=8080, bind='0.0.0.0')"]
""",
        },
    )
    platform.wait_stage(space, "RUNNING", timeout=600)
    assert "Successfully installed six-1.16.0" in platform.logs(space, "build")
