"""An agent's job worker: an RQ worker that takes a job only when its host has the capacity for it.

Before each dequeue it looks, under the host's admission lock, at what the host's apps and
in-flight jobs take, listens only on the queues of flavors that still fit, and reserves the job's
share (GPU device ids included) as it takes it. A GPU space therefore waits in its queue while
every GPU is taken, and starts as soon as one frees, unless the GPUs it lacks are its own
running app's: then it takes them over."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Any

import redis
from rq import Queue, Worker
from rq.exceptions import StopRequested
from rq.job import Job

from spacehub.agent.capacity import free_gpus
from spacehub.agent.context import AgentContext
from spacehub.agent.tiers import Tiers
from spacehub.config import get_settings
from spacehub.processes import die_with_parent
from spacehub.queue.scheduling import avoided_by, claim_for_host
from spacehub.state.connection import connect
from spacehub.state.hosts import Allocation

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


class CapacityWorker(Worker):
    def __init__(self, *args: Any, agent: AgentContext, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.agent = agent
        self.all_queues = list(self.queues)
        self.admission = agent.admission
        self.tiers = Tiers(agent)

    def flavor_of(self, queue: Queue) -> str:
        """The flavor a queue is for: its name without the namespace."""
        return queue.name.removeprefix(f"{self.agent.settings.namespace}.")

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's wait for a job, replaced: take a job only when it fits this host, reserving its share."""
        self.procline("Waiting for a job this host has room for")
        while True:
            if self._stop_requested:
                raise StopRequested()
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            try:
                result = self._admit_one()
            except (redis.ConnectionError, TimeoutError) as exc:
                log.warning("cannot take jobs now: %s", exc)
                result = None
            if result is not None:
                self.heartbeat()
                return result
            time.sleep(POLL_SECONDS)

    def _admit_one(self) -> tuple[Job, Queue] | None:
        with self.admission.locked():
            allocations = self.admission.allocations()
            servable = [q for q in self.all_queues if self._fits(q, allocations)]
            if not servable:
                return self._hand_over(allocations)
            result = Queue.dequeue_any(
                servable,
                None,
                connection=self.connection,
                job_class=self.job_class,
                serializer=self.serializer,
                death_penalty_class=self.death_penalty_class,
            )
            if result is None:
                return None
            job, queue = result
            if avoided_by(job, self.agent.host_id):
                queue.push_job_id(job.id)  # an administrator moves the space off this host
                return None
            flavor = self.agent.flavors[self.flavor_of(queue)]
            gpus = free_gpus(self.admission.capacity, allocations)[: flavor.gpus]
            request = flavor.request_for(str(job.meta.get("sdk", "")))
            self.admission.reserve(job.id, flavor, request, gpus)
            claim_for_host(job, self.agent.host_id)
            log.info("took %s for %s%s", job.id, flavor.name, f" on GPUs {','.join(gpus)}" if gpus else "")
            return job, queue

    def _hand_over(self, allocations: list[Allocation]) -> tuple[Job, Queue] | None:
        """The next job of a GPU queue whose space's running app holds the GPUs it lacks here: it
        takes them over (its start stops that app first, as GPUs are not shared), so that a GPU
        space on a full host still restarts and updates instead of waiting for itself."""
        for queue in self.all_queues:
            flavor = self.agent.flavors.get(self.flavor_of(queue))
            head = queue.get_job_ids(0, 1) if flavor is not None and flavor.gpus else []
            job = Job.fetch(head[0], connection=self.connection) if head else None
            if flavor is None or job is None or avoided_by(job, self.agent.host_id):
                continue
            space_id, build_id = job.meta.get("space_id"), int(job.args[0])
            # Only from an older version: a newer one never gives its GPUs back to what it replaced.
            held = [
                a
                for a in allocations
                if a.gpus and space_id and a.space_id == space_id and a.build_id < build_id
            ]
            others = [a for a in allocations if all(a is not h for h in held)]
            request = flavor.request_for(str(job.meta.get("sdk", "")))
            if not held or self.admission.short_of(flavor, request, others) is not None:
                continue
            queue.remove(job.id)
            gpus = free_gpus(self.admission.capacity, others)[: flavor.gpus]
            self.admission.reserve(job.id, flavor, request, gpus)
            claim_for_host(job, self.agent.host_id)
            log.info(
                "took %s for %s on GPUs %s, from the app it replaces", job.id, flavor.name, ",".join(gpus)
            )
            return job, queue
        return None

    def _fits(self, queue: Queue, allocations: list[Allocation]) -> bool:
        """Whether a job of this queue's flavor fits, after putting idle apps to sleep if memory is
        what is short and a job waits."""
        flavor = self.agent.flavors.get(self.flavor_of(queue))
        if flavor is None:
            return False
        request = flavor.request_for("")  # the largest SDK footprint: the job's SDK is not known yet
        short = self.admission.short_of(flavor, request, allocations)
        if short == "memory" and queue.count:
            self.tiers.make_room(flavor, request)
            allocations[:] = self.admission.allocations()
            short = self.admission.short_of(flavor, request, allocations)
        return short is None


def run_worker(name: str, queue_names: list[str]) -> None:
    """Run a capacity-aware job worker on the given queues until it is stopped."""
    settings = get_settings()
    connection = connect(settings.resolved_redis_url)
    agent = AgentContext(settings=settings, redis=connection)
    queues = [Queue(queue_name, connection=connection) for queue_name in queue_names]
    worker = CapacityWorker(queues, connection=connection, name=name, agent=agent)
    worker.work(with_scheduler=False, logging_level="INFO")


def die_with(parent: int) -> None:
    """Stop (SIGTERM: finish the job at hand, take no other) when the agent that started this worker
    dies, even killed outright: no worker outlives its agent."""
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the agent died before the line above took effect
        sys.exit("the agent that started this worker is gone")


def main() -> None:
    """The job worker's command line: a worker name, its agent's pid and the queues to serve."""
    parser = argparse.ArgumentParser(description="spacehub agent job worker")
    parser.add_argument("--name", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("queues", nargs="+")
    args = parser.parse_args()
    die_with(args.parent)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(args.name, args.queues)


if __name__ == "__main__":
    main()
