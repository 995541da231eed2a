{# Shared by the Python SDK templates (gradio/, streamlit/): dependencies first, so that a push
   changing only app code reuses every layer up to the final COPY. #}
FROM {{ base_image }}
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
{% if packages %}
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {{ packages | join(" ") }} \
 && rm -rf /var/lib/apt/lists/*
USER 1000
{% endif %}
{% if has_pre_requirements %}
COPY --chown=1000:1000 pre-requirements.txt /tmp/spacehub/pre-requirements.txt
RUN pip install -r /tmp/spacehub/pre-requirements.txt
{% endif %}
{% if has_requirements %}
COPY --chown=1000:1000 requirements.txt /tmp/spacehub/requirements.txt
RUN pip install -r /tmp/spacehub/requirements.txt
{% endif %}
{% if preload %}
# preload_from_hub: models downloaded from the hub at build time, into the image's HF cache.
ARG HF_ENDPOINT
RUN python -c 'import json, sys; from huggingface_hub import hf_hub_download, snapshot_download; \
[snapshot_download(e["repo_id"], revision=e["revision"]) if not e["files"] else \
 [hf_hub_download(e["repo_id"], f, revision=e["revision"]) for f in e["files"]] \
 for e in json.loads(sys.argv[1])]' {{ preload | shell_json }}
{% endif %}
COPY --chown=1000:1000 . /home/user/app
{% block run %}{% endblock %}
