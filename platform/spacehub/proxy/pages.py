"""What a visitor gets instead of a raw 502 when no app answers: an HTML page for browsers, JSON
for API clients, with a status code and words that say what is going on."""

from __future__ import annotations

import html
import json

from aiohttp import web

from spacehub.stages import IN_PROGRESS_STAGES, Stage
from spacehub.state.routes import SpaceRecord

_TITLES = {
    Stage.BUILDING: "This space is building",
    Stage.APP_STARTING: "This space is starting",
    Stage.RUNNING_BUILDING: "This space is building",
    Stage.RUNNING_APP_STARTING: "This space is starting",
    Stage.BUILD_ERROR: "This space failed to build",
    Stage.RUNTIME_ERROR: "This space has a runtime error",
    Stage.CONFIG_ERROR: "This space's configuration is invalid",
    Stage.NO_APP_FILE: "This space has no app yet",
    Stage.PAUSED: "This space is paused",
    Stage.SLEEPING: "This space is waking up",
    Stage.STOPPED: "This space is stopped",
    Stage.DELETING: "This space is being deleted",
    Stage.RUNNING: "This space is starting",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>{title}</title>
<style>
 body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2937;
        background: #f9fafb; display: grid; place-items: center; min-height: 100vh; }}
 main {{ max-width: 42rem; padding: 2rem; }}
 h1 {{ font-size: 1.4rem; margin: 0 0 .5rem; }}
 .name {{ color: #4b5563; font-family: ui-monospace, monospace; }}
 pre {{ background: #111827; color: #e5e7eb; padding: 1rem; border-radius: .5rem; overflow: auto;
       white-space: pre-wrap; font-size: .85rem; max-height: 50vh; }}
 .spinner {{ display: inline-block; width: 1rem; height: 1rem; border: 2px solid #c7d2fe;
            border-top-color: #4f46e5; border-radius: 50%; animation: spin 1s linear infinite;
            vertical-align: middle; margin-right: .5rem; }}
 @keyframes spin {{ to {{ transform: rotate(360deg); }} }}
 a {{ color: #4338ca; }}
</style></head>
<body><main role="main">
<h1>{spinner}<span id="title">{title}</span></h1>
<p class="name">{name}</p>
<div id="details">{details}</div>
{link}
{script}
</main></body></html>
"""

# Follows the space's stage from the app's own origin and loads the app once it answers.
_FOLLOW = """<script>
(function () {{
  var url = {status_url};
  function check() {{
    fetch(url, {{cache: "no-store"}}).then(function (r) {{ return r.json(); }}).then(function (s) {{
      if (s.ready) {{ window.location.reload(); return; }}
      var details = document.getElementById("details");
      details.textContent = "";
      if (s.message) {{
        var pre = document.createElement("pre");
        pre.textContent = s.message;
        details.appendChild(pre);
      }}
      var stage = document.createElement("p");
      stage.textContent = "Stage: " + s.stage;
      details.appendChild(stage);
      setTimeout(check, 1500);
    }}).catch(function () {{ setTimeout(check, 3000); }});
  }}
  setTimeout(check, 1000);
}})();
</script>"""


def wants_html(request: web.BaseRequest) -> bool:
    """Whether the request is a browser's page load (a GET or HEAD accepting HTML), not an API call."""
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and request.method in ("GET", "HEAD")


def render(
    request: web.BaseRequest,
    status: int,
    title: str,
    name: str,
    message: str,
    *,
    stage: str | None = None,
    refresh: bool = False,
    hub_link: str | None = None,
    status_path: str | None = None,
) -> web.Response:
    """An error page for browsers, or JSON for API clients; `refresh` retries until the app answers."""
    # Marks the edge's own answers (the hub's inference provider tells them from its servers').
    headers = {"Cache-Control": "no-store", "X-Spacehub-Edge": "1"}
    if refresh:
        headers["Retry-After"] = "5"
    if not wants_html(request):
        body = {"error": f"{title}: {message}" if message else title, "stage": stage, "space": name or None}
        return web.Response(
            status=status, text=json.dumps(body), content_type="application/json", headers=headers
        )
    details = f"<pre>{html.escape(message)}</pre>" if message else ""
    link = f'<p><a href="{html.escape(hub_link)}">Open the space page</a></p>' if hub_link else ""
    follow = refresh and status_path is not None
    page = _PAGE.format(
        refresh=(
            '<noscript><meta http-equiv="refresh" content="5"></noscript>\n'
            if follow
            else '<meta http-equiv="refresh" content="3">\n'
            if refresh
            else ""
        ),
        script=_FOLLOW.format(status_url=json.dumps(status_path).replace("</", "<\\/")) if follow else "",
        title=html.escape(title),
        spinner='<span class="spinner" aria-hidden="true"></span>' if refresh else "",
        name=html.escape(name),
        details=details,
        link=link,
    )
    return web.Response(status=status, text=page, content_type="text/html", headers=headers)


def space_unavailable(
    request: web.BaseRequest, record: SpaceRecord, hub_url: str, status_path: str | None = None
) -> web.Response:
    """The page of a space that exists but has no app answering right now; while it is on its way
    (building, starting, waking up) the page follows it and turns into the app."""
    stage = record.stage
    in_progress = stage in IN_PROGRESS_STAGES or stage in (Stage.RUNNING, Stage.SLEEPING)
    return render(
        request,
        503,
        _TITLES.get(stage, f"This space is {stage.value.lower()}"),
        record.name,
        record.message,
        stage=stage.value,
        refresh=in_progress,
        hub_link=f"{hub_url}/spaces/{record.name}",
        status_path=status_path,
    )


def no_such_space(request: web.BaseRequest) -> web.Response:
    """The answer for an address with no space (also for a private one the visitor may not see)."""
    return render(request, 404, "No space here", "", "There is no space at this address.")


def bad_request(request: web.BaseRequest, message: str) -> web.Response:
    """The answer for a request the edge cannot route (a malformed Host or request target)."""
    return render(request, 400, "Bad request", "", message)


def method_not_allowed(request: web.BaseRequest, allowed: str) -> web.Response:
    """The answer for a method the edge does not serve (CONNECT: it is no forward proxy; TRACE)."""
    response = render(request, 405, "Method not allowed", "", f"{request.method} is not served here.")
    response.headers["Allow"] = allowed
    return response


def too_large(request: web.BaseRequest, limit: int) -> web.Response:
    """The answer for a request body over `limit` bytes."""
    return render(request, 413, "Request body too large", "", f"The limit is {limit} bytes.")


def upstream_failed(request: web.BaseRequest, name: str, hub_url: str) -> web.Response:
    """The answer when a running app refuses the connection: retry soon, with a link to the space's page."""
    return render(
        request,
        503,
        "The app did not answer",
        name,
        "The app is running but did not accept the connection; it may be restarting. Retry in a moment.",
        refresh=True,
        hub_link=f"{hub_url}/spaces/{name}" if name else None,
    )
