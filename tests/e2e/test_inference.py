"""The inference provider through `InferenceClient`: tiny models made here and pushed to the hub,
answered by their model servers (containers on the torch runtime, one per model) and compared with
a local `transformers.pipeline` on the same files; chat completions, streamed too; private models;
clear errors; scale to zero and wake."""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

import docker
import httpx
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

from tests.utils.pages import PageClient
from tests.utils.platform import Platform
from tests.utils.tiny_models import make, png

TASKS = (
    "text-classification",
    "fill-mask",
    "token-classification",
    "question-answering",
    "text-generation",
    "image-classification",
    "summarization",
)
SERVER_ORG = "hf-inference"
TOLERANCE = 1e-4
SAMPLE_INPUTS = {
    "fill-mask": "the [MASK] is good",
    "question-answering": {"question": "who ?", "context": "alice"},
    "image-classification": base64.b64encode(png()).decode(),
}


@pytest.fixture(scope="module")
def models(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """One tiny model per task, pushed, each answering through its server (first builds included)."""
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    made = {}
    for task in TASKS:
        folder = make(task, tmp_path_factory.mktemp(task))
        repo = api.create_repo(f"admin/tiny-{task}-{secrets.token_hex(3)}").repo_id
        api.upload_folder(folder_path=folder, repo_id=repo)
        made[task] = (repo, folder)
    for repo, _folder in made.values():
        ask(platform, repo)  # every first request makes its server; they build side by side
    for repo, _folder in made.values():
        wait_until_served(platform, repo)
    return made


def ask(platform: Platform, repo: str, token: str | None = None) -> httpx.Response:
    """A bare request to the model's task (its answer, or a loading 503)."""
    task = next((t for t in TASKS if f"-{t}-" in repo), "text-classification")
    headers = {"Authorization": f"Bearer {token or platform.admin_token}"}
    return httpx.post(
        f"{platform.url}/hf-inference/models/{repo}",
        json={"inputs": SAMPLE_INPUTS.get(task, "good movie")},
        headers=headers,
        timeout=120,
        trust_env=False,
    )


def wait_until_served(platform: Platform, repo: str, token: str | None = None, timeout: float = 900) -> None:
    """Wait until the model answers (its server built and started), checking the loading answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = ask(platform, repo, token)
        if answer.status_code != 503:
            assert answer.status_code == 200, answer.text
            return
        assert "currently loading" in answer.json()["error"] and answer.json()["estimated_time"] > 0
        time.sleep(2)
    raise AssertionError(f"{repo} never answered: {ask(platform, repo, token).text}")


def client(platform: Platform, repo: str, path: str = "", token: str | None = None) -> InferenceClient:
    return InferenceClient(
        model=f"{platform.url}/hf-inference/models/{repo}{path}", token=token or platform.admin_token
    )


def same_scores(remote: list, local: list, key: str = "label") -> None:
    assert [getattr(r, key) for r in remote] == [item[key] for item in local]
    assert np.allclose([r.score for r in remote], [item["score"] for item in local], atol=TOLERANCE)


def test_each_task_answers_as_a_local_pipeline_does(platform: Platform, models) -> None:
    repo, folder = models["text-classification"]
    local = pipeline("text-classification", model=str(folder))
    same_scores(client(platform, repo).text_classification("good movie"), local("good movie", top_k=None))
    zero_shot = client(platform, repo, "/pipeline/zero-shot-classification")
    labels = ["film", "weather"]
    expected = pipeline("zero-shot-classification", model=str(folder))("good movie", candidate_labels=labels)
    remote = zero_shot.zero_shot_classification("good movie", candidate_labels=labels)
    assert [r.label for r in remote] == expected["labels"]
    assert np.allclose([r.score for r in remote], expected["scores"], atol=TOLERANCE)

    repo, folder = models["fill-mask"]
    expected = pipeline("fill-mask", model=str(folder))("the [MASK] is good", top_k=5)
    same_scores(client(platform, repo).fill_mask("the [MASK] is good"), expected, key="token_str")
    features = client(platform, repo, "/pipeline/feature-extraction").feature_extraction("good movie")
    local_features = np.array(pipeline("feature-extraction", model=str(folder))("good movie"))
    assert features.shape == local_features.shape and np.allclose(features, local_features, atol=TOLERANCE)
    similar = client(platform, repo, "/pipeline/sentence-similarity").sentence_similarity(
        "good movie", other_sentences=["bad film", "good movie"]
    )
    assert len(similar) == 2 and similar[1] == pytest.approx(1.0, abs=TOLERANCE) and similar[0] < 1

    repo, folder = models["token-classification"]
    expected = pipeline("token-classification", model=str(folder), aggregation_strategy="simple")(
        "alice lives in paris"
    )
    same_scores(client(platform, repo).token_classification("alice lives in paris"), expected, "entity_group")

    repo, folder = models["image-classification"]
    expected = pipeline("image-classification", model=str(folder))(_image(), top_k=5)
    same_scores(client(platform, repo).image_classification(png()), expected)

    repo, folder = models["summarization"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    seq2seq = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    text = "alice lives in paris and bob lives in london"

    def locally(max_new_tokens: int) -> str:
        with torch.no_grad():
            output = seq2seq.generate(**tokenizer(text, return_tensors="pt"), max_new_tokens=max_new_tokens)
        return tokenizer.decode(output[0], skip_special_tokens=True)

    assert client(platform, repo).summarization(text).summary_text == locally(20)
    translated = client(platform, repo, "/pipeline/translation").translation(
        text, generate_parameters={"max_new_tokens": 4}
    )
    assert translated.translation_text == locally(4)

    repo, _folder = models["question-answering"]
    context = "alice lives in paris"
    found = client(platform, repo).question_answering(question="who lives in paris ?", context=context)
    assert context[found.start : found.end] == found.answer and 0 < found.score <= 1


def _image():
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png())).convert("RGB")


def test_a_chat_model_answers_chat_completions_streamed_or_not(platform: Platform, models) -> None:
    repo, folder = models["text-generation"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    messages = [{"role": "user", "content": "hello , who are you ?"}]
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = model.generate(
            **prompt, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    expected = tokenizer.decode(output[0][prompt["input_ids"].shape[-1] :], skip_special_tokens=True)

    chat = client(platform, repo)
    answer = chat.chat_completion(messages, max_tokens=6)
    assert answer.choices[0].message.content == expected and answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 6
    pieces = [
        c.choices[0].delta.content or "" for c in chat.chat_completion(messages, max_tokens=6, stream=True)
    ]
    assert "".join(pieces) == expected and len(pieces) > 2

    generated = chat.text_generation("hello", max_new_tokens=5)
    generate = pipeline("text-generation", model=str(folder))
    local = generate("hello", max_new_tokens=5, return_full_text=False, do_sample=False)
    assert generated == local[0]["generated_text"]


def test_private_models_answer_only_to_their_readers(platform: Platform, models, make_user) -> None:
    alice, bob = make_user(), make_user()
    api = HfApi(endpoint=platform.url, token=alice.token)
    repo = api.create_repo(f"{alice.name}/secret-model", private=True).repo_id
    api.upload_folder(folder_path=models["text-classification"][1], repo_id=repo)
    # Not found, to a stranger and to the anonymous alike: never "forbidden", which would tell.
    for token in (bob.token, None):
        refused = httpx.post(
            f"{platform.url}/hf-inference/models/{repo}",
            json={"inputs": "good movie"},
            headers={"Authorization": f"Bearer {token}"} if token else {},
            trust_env=False,
        )
        assert refused.status_code == 404 and "not found" in refused.json()["error"].lower()
    wait_until_served(platform, repo, token=alice.token, timeout=300)
    answer = ask(platform, repo, alice.token)
    assert answer.json()[0][0]["label"] in {"entailment", "neutral", "contradiction"}
    # The page's try-it form calls with the signed-in browser's session, marked as the pages' own.
    with PageClient(platform.url) as pages:
        assert pages.log_in(alice.name, alice.token).status_code == 303
        url = f"/hf-inference/models/{repo}"
        assert pages.http.post(url, json={"inputs": "good movie"}).status_code == 404
        marked = pages.http.post(url, json={"inputs": "good movie"}, headers={"X-Requested-With": "spacehub"})
        assert marked.status_code == 200, marked.text
    # The servers are the platform's: no user sees them, or reaches their apps directly.
    assert list(api.list_spaces(author=SERVER_ORG)) == []
    server = HfApi(endpoint=platform.url, token=platform.admin_token).list_spaces(author=SERVER_ORG)
    app = platform.app_url(next(iter(server)).id)
    assert (
        httpx.post(
            app, json={"inputs": "x"}, headers={"Authorization": f"Bearer {alice.token}"}, trust_env=False
        ).status_code
        == 404
    )

    # Deleting the model deletes its server.
    admin = HfApi(endpoint=platform.url, token=platform.admin_token)
    assert any(_serves(platform, s.id, repo) for s in admin.list_spaces(author=SERVER_ORG))
    api.delete_repo(repo)
    assert not any(_serves(platform, s.id, repo) for s in admin.list_spaces(author=SERVER_ORG))


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        ({"README.md": b"---\npipeline_tag: text-to-speech\n---\n"}, 400, "serves"),
        ({"README.md": b"a model card only"}, 400, "no config.json"),
        ({"config.json": b"{}"}, 400, "no weights"),
    ],
)
def test_models_that_cannot_be_served_say_why(platform: Platform, files, status, words) -> None:
    api = HfApi(endpoint=platform.url, token=platform.admin_token)
    repo = api.create_repo(f"admin/unservable-{secrets.token_hex(3)}").repo_id
    for path, content in files.items():
        api.upload_file(path_or_fileobj=content, path_in_repo=path, repo_id=repo)
    with pytest.raises(HfHubHTTPError) as error:
        client(platform, repo).text_classification("good movie")
    assert error.value.response.status_code == status and words in str(error.value)


def test_a_model_server_sleeps_when_idle_and_a_request_wakes_it(platform: Platform, models) -> None:
    repo, folder = models["text-classification"]
    admin = HfApi(endpoint=platform.url, token=platform.admin_token)
    server = next(
        s.id for s in admin.list_spaces(author=SERVER_ORG, search=None) if _serves(platform, s.id, repo)
    )
    admin.set_space_sleep_time(server, 5)
    platform.wait_stage(server, "SLEEPING", timeout=120)
    started = time.monotonic()
    remote = client(platform, repo).text_classification("good movie")
    woken_in = time.monotonic() - started
    same_scores(remote, pipeline("text-classification", model=str(folder))("good movie", top_k=None))
    print(f"cold call (server asleep) answered in {woken_in:.1f} s")
    # A running server gets its requests straight from the hub, which counts them as visits as the
    # edge does: while they keep coming, it stays awake, well past its sleep time.
    started = started_at(admin.space_info(server).subdomain)
    until = time.monotonic() + 20
    while time.monotonic() < until:
        assert ask(platform, repo).status_code == 200
        time.sleep(0.5)  # the pace of a visitor's calls, not a wait
    assert admin.get_space_runtime(server).stage == "RUNNING"
    assert started_at(admin.space_info(server).subdomain) == started  # never stopped meanwhile
    admin.set_space_sleep_time(server, 600)


def started_at(subdomain: str) -> str:
    """When the container of the app at `subdomain` last started (a wake starts it again)."""
    (container,) = docker.from_env().containers.list(filters={"label": f"spacehub.subdomain={subdomain}"})
    return container.attrs["State"]["StartedAt"]


def _serves(platform: Platform, server: str, model: str) -> bool:
    with platform.client() as admin:
        variables = admin.get(f"/api/spaces/{server}/variables").json()
    return variables.get("MODEL_ID", {}).get("value") == model


def test_a_model_page_tries_the_model_in_the_browser(platform: Platform, models, browser) -> None:
    repo, _folder = models["token-classification"]
    page = browser.new_page()
    page.goto(f"{platform.url}/{repo}")
    form = page.locator("#try-it")
    form.get_by_label("Text").fill("alice lives in paris")
    form.get_by_role("button", name="Compute").click()
    output = form.locator(".try-output")
    output.get_by_text('"entity_group"').wait_for(timeout=60_000)
    assert "alice" in output.inner_text()
    page.close()
