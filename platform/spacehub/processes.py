"""Process settings: children that do not outlive their parent (Linux `prctl(PR_SET_PDEATHSIG)`:
an agent's job workers, the edge's HAProxy; killed outright, a parent leaves no orphan holding a
port or a queue), and room for as many sockets as the system allows."""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Have this process sent `signum` when its parent dies (call it in the child: a preexec_fn)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signum)


def allow_all_open_files() -> int:
    """Raise this process's open-file limit to the most it may have (and its children inherit), for
    a proxy that holds two sockets per visitor; the limit now."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
