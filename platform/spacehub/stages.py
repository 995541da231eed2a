"""Space stages, named as on Hugging Face so that `huggingface_hub` and `gradio_client` understand them."""

from enum import StrEnum


class Stage(StrEnum):
    NO_APP_FILE = "NO_APP_FILE"
    CONFIG_ERROR = "CONFIG_ERROR"
    BUILDING = "BUILDING"
    BUILD_ERROR = "BUILD_ERROR"
    APP_STARTING = "APP_STARTING"
    RUNNING = "RUNNING"
    RUNNING_BUILDING = "RUNNING_BUILDING"
    RUNNING_APP_STARTING = "RUNNING_APP_STARTING"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    PAUSED = "PAUSED"
    SLEEPING = "SLEEPING"
    STOPPED = "STOPPED"
    DELETING = "DELETING"

    @property
    def is_in_progress(self) -> bool:
        """A build or an app start is under way in this stage."""
        return self in IN_PROGRESS_STAGES


SERVING_STAGES = frozenset({Stage.RUNNING, Stage.RUNNING_BUILDING, Stage.RUNNING_APP_STARTING})
IN_PROGRESS_STAGES = frozenset(
    {Stage.BUILDING, Stage.APP_STARTING, Stage.RUNNING_BUILDING, Stage.RUNNING_APP_STARTING}
)
ERROR_STAGES = frozenset({Stage.NO_APP_FILE, Stage.CONFIG_ERROR, Stage.BUILD_ERROR, Stage.RUNTIME_ERROR})


class Tier(StrEnum):
    """How awake a RUNNING (or SLEEPING) space's app is; the Hub stage does not show the first three.

    - serving: the app runs;
    - frozen: its processes are frozen (cgroup freezer, SIGSTOP): no CPU, memory kept, woken in ms;
    - checkpointed: its memory is on disk (CRIU), restored on the first request;
    - sleeping: its container is stopped, its image kept."""

    SERVING = "serving"
    FROZEN = "frozen"
    CHECKPOINTED = "checkpointed"
    SLEEPING = "sleeping"
