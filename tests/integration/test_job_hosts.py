"""Which host runs a job is recorded in the job itself, so host ids of any shape (dots included,
which RQ's worker names cannot carry) are found again when the host is lost."""

from __future__ import annotations

import redis
from rq.job import Job

from spacehub.queue.scheduling import claim_for_host, job_host


def test_a_dotted_host_id_is_found_again(redis_client: redis.Redis) -> None:
    job = Job.create("builtins.print", connection=redis_client, id="build-dotted-1")
    job.save()
    assert job_host(redis_client, job.id) is None  # not taken yet
    claim_for_host(job, "gpu-1.eu-west.example.org")
    assert job_host(redis_client, job.id) == "gpu-1.eu-west.example.org"
    assert job_host(redis_client, "build-no-such-job") is None
    job.delete()
