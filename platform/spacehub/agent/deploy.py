"""The deploy job, as an agent runs it: build the commit, start the app, wait until it is healthy,
switch the route to it, retire the container it replaces. Every step is reported as an event;
the old container keeps serving until the new one answers."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from spacehub.agent.capacity import limits_on
from spacehub.agent.context import AgentContext
from spacehub.agent.drivers.base import LaunchSpec
from spacehub.agent.health import Outcome, exit_reason, wait_until_healthy
from spacehub.agent.volumes import VolumeUnavailable, host_mounts
from spacehub.build.context import extract_archive
from spacehub.build.errors import BuildFailed
from spacehub.queue.flavors import Resources
from spacehub.queue.spec import DeploySpec
from spacehub.state.events import EventType
from spacehub.state.logs import RUN_LOG_MAXLEN, LogWriter, now_iso

log = logging.getLogger(__name__)

FAILURE_LOG_LINES = 40


def run_deploy(agent: AgentContext, build_id: int, job_id: str) -> None:
    """The whole job; the capacity the worker reserved for it is released once its app exists."""
    admission = agent.admission
    try:
        spec = agent.hub.fetch_spec(build_id)
        if spec is None or not spec.current:
            log.info("build %s is gone or superseded; nothing to do", build_id)
            return
        reservation = admission.reservation(job_id)
        artifact = obtain_artifact(agent, spec)
        if artifact is not None:
            start(
                agent,
                spec,
                artifact,
                reservation.gpus if reservation else [],
                on_created=lambda: admission.release(job_id),
            )
    finally:
        admission.release(job_id)


def obtain_artifact(agent: AgentContext, spec: DeploySpec) -> str | None:
    """What to run: the build's image already on this host, from the registry, or built now.
    Reports the build's progress; None when the build failed (reported)."""
    driver = agent.driver
    existing = driver.find_artifact(spec)
    if existing is None and agent.settings.registry:
        existing = driver.pull_artifact(spec, agent.settings.registry)
        if existing is not None:
            log.info("pulled %s from %s", existing, agent.settings.registry)
    if existing is not None:
        agent.report(EventType.APP_STARTING, spec, image=existing)
        return existing
    build_log = LogWriter(agent.redis, agent.keys.build_log(spec.build_id))
    agent.report(EventType.BUILD_STARTED, spec)
    build_log.write(f"==> Building {spec.space_name} at {spec.sha[:12]} on {agent.host_id}")
    try:
        artifact = build(agent, spec, build_log)
        if agent.settings.registry:
            build_log.write(f"==> Pushing the image to {agent.settings.registry}")
            driver.push_artifact(artifact, agent.settings.registry)
    except BuildFailed as exc:
        build_log.write(f"==> Build failed\n{exc.message}")
        build_log.end()
        agent.report(EventType.BUILD_FAILED, spec, message=f"Build failed:\n{exc.message}")
        return None
    build_log.write("==> Build succeeded")
    build_log.end()
    agent.report(EventType.APP_STARTING, spec, image=artifact)
    return artifact


def build(agent: AgentContext, spec: DeploySpec, build_log: LogWriter) -> str:
    """Build the space's commit: fetch its source archive from the hub and hand it to the driver."""
    with tempfile.TemporaryDirectory(prefix=f"spacehub-{spec.build_id}-") as tmp:
        archive = Path(tmp) / "source.tar"
        agent.hub.download_archive(spec.build_id, str(archive))
        source = Path(tmp) / "source"
        extract_archive(archive, source)
        return agent.driver.build(spec, source, build_log)


def start(
    agent: AgentContext, spec: DeploySpec, artifact: str, gpus: list[str], on_created: Callable[[], None]
) -> None:
    """Start the app; once healthy route to it and retire what it replaces, else stop it and report why."""
    run_log = LogWriter(agent.redis, agent.keys.run_log(spec.space_id), maxlen=RUN_LOG_MAXLEN)
    run_log.write(f"===== Application Startup at {now_iso()} =====")
    run_log.flush()
    limits = limits_on(agent.admission.capacity, spec.flavor)
    try:
        mounts = host_mounts(agent, spec.volumes)
    except VolumeUnavailable as exc:
        on_created()
        agent.report(EventType.APP_FAILED, spec, message=str(exc))
        return
    for volume in spec.volumes:
        if volume.note:
            run_log.write(f"==> {volume.note}")
    run_log.flush()
    launch = LaunchSpec(
        name=container_name(agent, spec),
        artifact=artifact,
        space_id=spec.space_id,
        build_id=spec.build_id,
        subdomain=spec.subdomain,
        port=app_port(spec),
        env=app_environment(agent, spec, gpus, limits),
        flavor=spec.flavor,
        sdk=spec.sdk,
        memory_limit=limits.memory_bytes,
        cpu_limit=limits.cpu,
        startup_timeout=spec.startup_timeout,
        root_path=spec.root_path,
        gpu_ids=tuple(gpus),
        mounts=mounts,
    )
    hand_over_gpus(agent, spec, gpus, run_log)
    instance = agent.driver.start(launch)
    on_created()
    outcome = wait_until_healthy(agent.driver, instance, spec.startup_timeout)
    if not outcome.healthy or outcome.last is None:
        ship_logs_if_missed(agent, spec, instance.id, run_log)
        reason = failure_reason(agent, spec, outcome)
        agent.driver.stop(instance.id, timeout=5)
        agent.report(EventType.APP_FAILED, spec, message=reason)
        return
    instance = outcome.last
    if not agent.routes.add_route(
        spec.subdomain, instance.upstream, spec.build_id, agent.host_id, if_current=True
    ):
        log.info("build %s was superseded while starting; stopping its container", spec.build_id)
        agent.driver.stop(instance.id, timeout=5)
        return
    agent.mark_awake(spec.space_id)
    agent.report(
        EventType.APP_RUNNING, spec, container=instance.id, upstream=instance.upstream, image=artifact
    )
    retire_replaced(agent, spec, keep=instance.id)


def hand_over_gpus(agent: AgentContext, spec: DeploySpec, gpus: list[str], run_log: LogWriter) -> None:
    """Stop this space's apps on this host that hold any of `gpus` (the worker gave the new
    version their GPUs: GPUs are not shared, so the old version stops before the new one starts).
    Its route goes first: visitors are held until the new version answers, and the monitor does
    not take the stop for a lost app (which it would start again)."""
    for instance in agent.driver.list():
        if instance.space_id == spec.space_id and set(instance.gpus) & set(gpus):
            held = ",".join(instance.gpus)
            run_log.write(f"==> GPU {held} goes to the new version: the running one stops first")
            run_log.flush()
            agent.routes.delete_route(instance.subdomain, (instance.build_id, agent.host_id))
            agent.driver.stop(instance.id, timeout=10)


def failure_reason(agent: AgentContext, spec: DeploySpec, outcome: Outcome) -> str:
    """Why an app never became healthy, with its last lines."""
    if outcome.last is None:
        return "the app's container disappeared while starting"
    tail = last_lines(agent, outcome.last.id)
    if outcome.timed_out:
        return (
            f"the app was not healthy within startup_duration_timeout ({spec.startup_timeout} s); "
            f"is it listening on 0.0.0.0:{app_port(spec)}?\n{tail}"
        ).strip()
    return f"the app {exit_reason(outcome.last)}\n{tail}".strip()


def last_lines(agent: AgentContext, instance_id: str) -> str:
    """The app's last lines of output, for a failure message."""
    return "\n".join(
        text for _ts, text in agent.driver.logs(instance_id, follow=False, tail=FAILURE_LOG_LINES)
    )


def ship_logs_if_missed(agent: AgentContext, spec: DeploySpec, instance_id: str, run_log: LogWriter) -> None:
    """A container that dies at once may end before the monitor attached to it: copy its output
    into the run log here unless the monitor has shipped it."""
    marker = agent.keys.shipped(instance_id)
    for _ in range(20):
        if agent.redis.exists(marker):
            return
        time.sleep(0.25)
    for timestamp, text in agent.driver.logs(instance_id, follow=False):
        run_log.write(text, timestamp or None)
    run_log.flush()


def container_name(agent: AgentContext, spec: DeploySpec) -> str:
    """Unique per installation, host and build, even where several agents share one engine (a
    build moving between two of them must not replace the container it moves from). The space's
    name comes last, for people reading `docker ps`, and may be cut."""
    host = hashlib.sha256(agent.host_id.encode()).hexdigest()[:8]
    return f"{agent.settings.namespace}-{agent.instance_id}-{host}-b{spec.build_id}-{spec.subdomain}"[:120]


def retire_replaced(agent: AgentContext, spec: DeploySpec, keep: str) -> None:
    """Stop this space's other containers on this host once traffic has moved (after a drain)."""
    replaced = [i for i in agent.driver.list() if i.space_id == spec.space_id and i.id != keep]
    if not replaced:
        return
    time.sleep(agent.settings.drain_seconds)
    for instance in replaced:
        agent.driver.stop(instance.id, timeout=10)


def app_port(spec: DeploySpec) -> int:
    """The port the app listens on: the controller resolves it (the SDK's default, or `app_port`
    from the README: spec/check.py) for every SDK an agent runs."""
    if spec.app_port is None:
        raise ValueError(f"build {spec.build_id} has no app port: a static space needs no agent")
    return spec.app_port


def app_environment(
    agent: AgentContext, spec: DeploySpec, gpus: list[str], limits: Resources
) -> dict[str, str]:
    """Variables and secrets, then what the platform sets (which they cannot override)."""
    flavor = spec.flavor
    env = {**spec.variables, **spec.secrets}
    env.update(
        SPACE_ID=spec.space_name,
        SPACE_AUTHOR_NAME=spec.owner,
        SPACE_REPO_NAME=spec.repo_name,
        SPACE_TITLE=spec.title or spec.repo_name,
        SPACE_HOST=urlsplit(spec.app_url).netloc,
        CPU_CORES=f"{limits.cpu:g}",
        MEMORY=limits.memory,
        ACCELERATOR=flavor.accelerator_env,
        HF_ENDPOINT=agent.hub_url_for_apps,
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="localhost,127.0.0.1,::1",
        no_proxy="localhost,127.0.0.1,::1",
    )
    if spec.oauth is not None:
        env.update(
            OAUTH_CLIENT_ID=spec.oauth.client_id,
            OAUTH_CLIENT_SECRET=spec.oauth.client_secret,
            OAUTH_SCOPES=spec.oauth.scopes,
            OPENID_PROVIDER_URL=agent.hub_url_for_apps,
            # Gradio signs in with the provider only "on Spaces" (else it mocks a user). Its Spaces
            # mode also looks for HF's `spaces` package for hot reloading, which is not installed
            # (it would serve code reloads on 0.0.0.0:7887): it logs that once and runs on.
            SYSTEM="spaces",
        )
        if urlsplit(spec.app_url).scheme != "https":
            # Gradio builds its sign-in callback as https://SPACE_HOST/login/callback (always https,
            # as on the Hub); without SPACE_HOST it uses the address the visitor came by.
            del env["SPACE_HOST"]
    if gpus:
        env.update(NVIDIA_VISIBLE_DEVICES=",".join(gpus), CUDA_VISIBLE_DEVICES=",".join(gpus))
    if spec.sdk == "gradio":
        env.update(
            GRADIO_SERVER_NAME="0.0.0.0",
            GRADIO_SERVER_PORT=str(app_port(spec)),
            GRADIO_NUM_PORTS="1",
            GRADIO_ANALYTICS_ENABLED="False",
            GRADIO_ROOT_PATH=spec.root_path,
        )
    elif spec.sdk == "streamlit":
        env.update(
            STREAMLIT_SERVER_PORT=str(app_port(spec)),
            STREAMLIT_SERVER_ADDRESS="0.0.0.0",
            STREAMLIT_SERVER_HEADLESS="true",
            STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION="false",
            STREAMLIT_SERVER_ENABLE_CORS="false",
            STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
            STREAMLIT_SERVER_BASE_URL_PATH=spec.root_path.strip("/"),
        )
    return env
