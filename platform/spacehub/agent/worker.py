"""An agent's job worker: an RQ worker on the queues of the flavors this host serves."""

from __future__ import annotations

import argparse
import logging

import redis
from rq import Queue, Worker

from spacehub.config import get_settings


def run_worker(name: str, queue_names: list[str]) -> None:
    settings = get_settings()
    connection = redis.Redis.from_url(settings.resolved_redis_url)
    queues = [Queue(queue_name, connection=connection) for queue_name in queue_names]
    worker = Worker(queues, connection=connection, name=name)
    worker.work(with_scheduler=False, logging_level="INFO")


def main() -> None:
    parser = argparse.ArgumentParser(description="spacehub agent job worker")
    parser.add_argument("--name", required=True)
    parser.add_argument("queues", nargs="+")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(args.name, args.queues)


if __name__ == "__main__":
    main()
