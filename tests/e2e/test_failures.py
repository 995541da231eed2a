"""What developers see when their space fails: the stage, the reason, and the log that explains it."""

from __future__ import annotations

from tests.utils.platform import Platform
from tests.utils.waiting import wait_until

GRADIO_README = "---\nsdk: gradio\n---\n"


def test_a_missing_requirement_is_a_build_error_with_pip_output(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": GRADIO_README,
            "app.py": "import gradio\n",
            "requirements.txt": "no-such-package-spacehub-e2e==1.0\n",
        },
    )
    runtime = platform.wait_stage(space, "BUILD_ERROR")
    assert "no-such-package-spacehub-e2e" in runtime["errorMessage"]
    build_log = platform.logs(space, "build")
    assert "No matching distribution found for no-such-package-spacehub-e2e" in build_log
    assert "==> Build failed" in build_log


def test_an_app_raising_at_import_is_a_runtime_error_with_the_traceback(
    platform: Platform, space_name: str
) -> None:
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": GRADIO_README,
            "app.py": "import gradio\nraise RuntimeError('the model file is missing')\n",
        },
    )
    runtime = platform.wait_stage(space, "RUNTIME_ERROR")
    assert "exited with code 1" in runtime["errorMessage"]
    assert "RuntimeError: the model file is missing" in runtime["errorMessage"]
    run_log = platform.logs(space, "run")
    assert "Traceback (most recent call last)" in run_log
    assert "RuntimeError: the model file is missing" in run_log


def test_an_app_that_never_listens_times_out(platform: Platform, space_name: str) -> None:
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": "---\nsdk: gradio\nstartup_duration_timeout: 8s\n---\n",
            "app.py": "import time\nprint('loading a huge model', flush=True)\ntime.sleep(600)\n",
        },
    )
    runtime = platform.wait_stage(space, "RUNTIME_ERROR")
    assert "startup_duration_timeout (8 s)" in runtime["errorMessage"]
    assert "loading a huge model" in runtime["errorMessage"]


def test_a_crash_after_start_is_restarted(platform: Platform, space_name: str) -> None:
    """An app that served and then exits is started again (after a short delay), and serves."""
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": GRADIO_README,
            "app.py": """
import os
import threading

import gradio as gr


def crash(_):
    print("about to crash", flush=True)
    threading.Timer(0.5, lambda: os._exit(3)).start()
    return "bye"


gr.Interface(crash, "text", "text", api_name="crash").launch()
""",
        },
    )
    platform.wait_stage(space, "RUNNING")
    from gradio_client import Client

    assert Client(platform.app_url(space), verbose=False).predict("x", api_name="/crash") == "bye"
    wait_until(
        lambda: "exited with code 3; starting it again in 1 s" in platform.logs(space, "run", read_timeout=1),
        timeout=60,
        what="the restart to be announced in the run log",
    )
    # The restarted app answers (the request is held while it starts).
    assert Client(platform.app_url(space), verbose=False).predict("y", api_name="/crash") == "bye"
    assert platform.runtime(space)["stage"] == "RUNNING"


def test_a_crash_loop_is_a_runtime_error(platform: Platform, space_name: str) -> None:
    """An app that exits again and again after starting is a runtime error after its third exit,
    with the exit code and its last lines."""
    space = platform.create_space(space_name)
    platform.push(
        space,
        {
            "README.md": GRADIO_README,
            "app.py": """
import os
import threading

import gradio as gr

demo = gr.Interface(lambda text: text, "text", "text")
demo.launch(prevent_thread_lock=True)
print("about to crash", flush=True)
threading.Timer(2, lambda: os._exit(3)).start()
demo.block_thread()
""",
        },
    )
    runtime = platform.wait_stage(space, "RUNTIME_ERROR", timeout=300)
    assert "exited with code 3 (3 times in 10 min)" in runtime["errorMessage"]
    assert "about to crash" in runtime["errorMessage"]
    assert runtime["replicas"]["current"] == 0
    assert platform.logs(space, "run").count("exited with code 3; starting it again") == 2
