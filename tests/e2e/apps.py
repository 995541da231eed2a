"""Apps the end-to-end tests push, as a user would write them."""

GRADIO_README = """---
title: E2E Gradio
emoji: 🧪
sdk: gradio
app_file: app.py
---
"""

GRADIO_APP = """
import os
import socket
import time
import urllib.request
from urllib.parse import urlsplit

import gradio as gr

VERSION = "{version}"


def echo(text):
    return f"{{VERSION}}:{{text}}"


def count(n):
    for i in range(int(n)):
        time.sleep(0.2)
        yield f"tick {{i}}"


def environment(_):
    keys = ["SPACE_ID", "SPACE_HOST", "SPACE_AUTHOR_NAME", "SPACE_REPO_NAME", "SPACE_TITLE", "CPU_CORES",
            "MEMORY", "ACCELERATOR", "HF_ENDPOINT"]
    facts = {{key: os.environ.get(key, "") for key in keys}}
    facts["uid"] = str(os.getuid())
    facts["docker_socket"] = str(os.path.exists("/var/run/docker.sock"))
    facts["all"] = sorted(os.environ)
    return facts


def probe(port):
    host = urlsplit(os.environ["HF_ENDPOINT"]).hostname
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return type(exc).__name__


def hub(_):
    url = os.environ["HF_ENDPOINT"] + "/api/spaces/" + os.environ["SPACE_ID"]
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


with gr.Blocks() as demo:
    text = gr.Textbox()
    out = gr.Textbox()
    gr.Button("echo").click(echo, text, out, api_name="echo")
    gr.Button("count").click(count, text, out, api_name="count")
    gr.Button("env").click(environment, text, gr.JSON(), api_name="env")
    gr.Button("probe").click(probe, text, out, api_name="probe")
    gr.Button("hub").click(hub, text, out, api_name="hub")

demo.launch()
"""


def gradio_files(version: str = "v1") -> dict[str, str]:
    return {"README.md": GRADIO_README, "app.py": GRADIO_APP.format(version=version)}


STREAMLIT_FILES = {
    "README.md": "---\ntitle: E2E Streamlit\nsdk: streamlit\napp_file: app.py\n---\n",
    "app.py": """
import streamlit as st

st.title("E2E Streamlit")
if "clicks" not in st.session_state:
    st.session_state.clicks = 0
if st.button("Add one"):
    st.session_state.clicks += 1
st.write(f"Clicks: {st.session_state.clicks}")
name = st.text_input("Name")
if name:
    st.write(f"Echo: {name}")
""",
}

DOCKER_FILES = {
    "README.md": "---\ntitle: E2E Docker\nsdk: docker\napp_port: 8080\n---\n",
    "Dockerfile": """FROM python:3.11-slim
ARG GREETING=hello
RUN useradd -m -u 1000 user
USER user
WORKDIR /home/user/app
COPY --chown=user server.py .
ENV GREETING=$GREETING
CMD ["python", "server.py"]
""",
    "server.py": """
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "uid": os.getuid(), "greeting": os.environ.get("GREETING"),
                           "space": os.environ.get("SPACE_ID")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
""",
}

STATIC_FILES = {
    "README.md": "---\ntitle: E2E Static\nsdk: static\n---\n",
    "index.html": "<!doctype html><title>Static</title><h1>Hello static</h1>"
    "<script src='js/app.js'></script>",
    "js/app.js": "document.title = 'ran';",
    "docs/index.html": "<p>docs</p>",
}
