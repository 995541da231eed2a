"""spacehub's model server: one model, mounted read-only at MODEL_DIR, answered in the request and
response shapes of Hugging Face's HF-Inference provider (and OpenAI's chat completions for models
with a chat template). It runs as a space of its own, built with the Gradio template on the torch
runtime, so it is scheduled, limited, put to sleep and woken like any app; the hub forwards
`/hf-inference/models/{id}` to it. FastAPI and uvicorn come with Gradio's image."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
import uuid
from typing import Any

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    TextIteratorStreamer,
    pipeline,
)

MODEL_DIR = os.environ.get("MODEL_DIR", "/model")
MODEL_ID = os.environ.get("MODEL_ID", "model")
# The class a model's config names decides its task when its card names none.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("ForImageClassification", "image-classification"),
)
# Tasks answered by another pipeline of the same model.
PIPELINES = {"sentence-similarity": "feature-extraction", "conversational": "text-generation"}
GENERATION_PARAMETERS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "repetition_penalty")

torch.manual_seed(0)
app = FastAPI(title=f"spacehub inference: {MODEL_ID}")
_loaded: dict[str, Any] = {}
_lock = threading.Lock()


class Refused(Exception):
    """A request this model cannot answer, and why (answered with `status`)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def default_task() -> str:
    """The card's task (INFERENCE_TASK), else the one the model's architecture implies."""
    task = os.environ.get("INFERENCE_TASK", "")
    if task:
        return task
    config = AutoConfig.from_pretrained(MODEL_DIR)
    for architecture in config.architectures or []:
        for suffix, found in ARCHITECTURE_TASKS:
            if architecture.endswith(suffix):
                return found
    return "feature-extraction"


TASK = default_task()


def pipe(task: str) -> Any:
    """The model's pipeline for `task`, loaded once."""
    return loaded(PIPELINES.get(task, task), lambda name: pipeline(name, model=MODEL_DIR, device="cpu"))


def loaded(name: str, load: Any) -> Any:
    """What `load(name)` returns, made once; Refused when the model cannot do it."""
    with _lock:
        if name not in _loaded:
            try:
                _loaded[name] = load(name)
            except (KeyError, ValueError, OSError) as exc:
                raise Refused(f"{MODEL_ID} cannot serve {name}: {exc}") from exc
        return _loaded[name]


def with_tokenizer(model_class: Any) -> Any:
    """A loader of the tokenizer and a model of `model_class` (tasks transformers has no pipeline for)."""
    return lambda _name: (AutoTokenizer.from_pretrained(MODEL_DIR), model_class.from_pretrained(MODEL_DIR).eval())


def plain(value: Any) -> Any:
    """Pipeline output as JSON: numpy and torch values turned into numbers and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def generation(parameters: dict[str, Any]) -> dict[str, Any]:
    """The generation parameters the client sent that `generate` understands; greedy unless it
    asks to sample, and 20 new tokens unless it says how many (as TGI does)."""
    given = {**parameters, **(parameters.get("generate_parameters") or {})}  # summaries nest them
    chosen = {k: given[k] for k in GENERATION_PARAMETERS if given.get(k) is not None}
    return {"do_sample": False, "max_new_tokens": 20, **chosen}


def answer(task: str, inputs: Any, parameters: dict[str, Any]) -> Any:
    """One request of `task`, in HF-Inference's response shape."""
    if task == "text-classification":
        return [pipe(task)(inputs, top_k=parameters.get("top_k"))]
    if task == "token-classification":
        strategy = parameters.get("aggregation_strategy") or "simple"
        return pipe(task)(inputs, aggregation_strategy=strategy)
    if task == "fill-mask":
        return pipe(task)(inputs, top_k=parameters.get("top_k") or 5, targets=parameters.get("targets"))
    if task == "feature-extraction":
        return pipe(task)(inputs)
    if task == "sentence-similarity":
        return similarity(inputs)
    if task == "zero-shot-classification":
        result = pipe(task)(
            inputs,
            candidate_labels=parameters.get("candidate_labels") or [],
            multi_label=bool(parameters.get("multi_label")),
            hypothesis_template=parameters.get("hypothesis_template") or "This example is {}.",
        )
        return [{"label": lab, "score": s} for lab, s in zip(result["labels"], result["scores"], strict=True)]
    if task == "question-answering":
        return question_answering(inputs)
    if task in ("summarization", "translation", "text2text-generation"):
        key = {"summarization": "summary_text", "translation": "translation_text"}.get(task, "generated_text")
        return [{key: text_to_text(inputs, parameters)}]
    if task == "text-generation":
        full = bool(parameters.get("return_full_text", False))
        outputs = pipe(task)(inputs, return_full_text=full, **generation(parameters))
        return [{"generated_text": o["generated_text"]} for o in outputs]
    if task == "image-classification":
        return pipe(task)(image_of(inputs), top_k=parameters.get("top_k") or 5)
    raise Refused(f"this provider does not serve {task!r}")


def question_answering(inputs: Any) -> dict[str, Any]:
    """The likeliest span of the context (at most 30 tokens) that answers the question."""
    if not isinstance(inputs, dict) or not all(isinstance(inputs.get(k), str) for k in ("question", "context")):
        raise Refused("question-answering takes inputs {question, context}")
    tokenizer, model = loaded("question-answering", with_tokenizer(AutoModelForQuestionAnswering))
    context = inputs["context"]
    encoded = tokenizer(
        inputs["question"], context, return_tensors="pt", return_offsets_mapping=True, truncation="only_second"
    )
    offsets = encoded.pop("offset_mapping")[0].tolist()
    in_context = [i for i, s in enumerate(encoded.sequence_ids(0)) if s == 1]
    with torch.no_grad():
        out = model(**encoded)
    starts, ends = out.start_logits[0].softmax(-1), out.end_logits[0].softmax(-1)
    score, first, last = max(
        (float(starts[i] * ends[j]), i, j) for i in in_context for j in in_context if i <= j < i + 30
    )
    start, end = offsets[first][0], offsets[last][1]
    return {"answer": context[start:end], "score": score, "start": start, "end": end}


def text_to_text(inputs: Any, parameters: dict[str, Any]) -> str:
    """What an encoder-decoder model generates from `inputs` (summaries, translations)."""
    if not isinstance(inputs, str):
        raise Refused("this task takes a text as inputs")
    tokenizer, model = loaded("text2text-generation", with_tokenizer(AutoModelForSeq2SeqLM))
    encoded = tokenizer(inputs, return_tensors="pt", truncation=True)
    settings = generation(parameters)
    with torch.no_grad():
        output = model.generate(**encoded, **settings)
    return tokenizer.decode(output[0], skip_special_tokens=True)


def similarity(inputs: Any) -> list[float]:
    """Cosine similarity of the source sentence's mean-pooled embedding to each other sentence's."""
    if not isinstance(inputs, dict) or not isinstance(inputs.get("sentences"), list):
        raise Refused("sentence-similarity takes inputs {source_sentence, sentences}")
    extract = pipe("feature-extraction")
    vectors = [np.mean(np.array(extract(s)[0]), axis=0) for s in [inputs["source_sentence"], *inputs["sentences"]]]
    source, others = vectors[0], vectors[1:]
    return [float(np.dot(source, o) / (np.linalg.norm(source) * np.linalg.norm(o))) for o in others]


def image_of(inputs: Any) -> Any:
    """A PIL image from raw bytes or base64 text."""
    from PIL import Image

    data = base64.b64decode(inputs) if isinstance(inputs, str) else inputs
    try:
        return Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as exc:
        raise Refused(f"the input is not an image: {exc}") from exc


async def task_request(request: Request, task: str) -> JSONResponse:
    """The body as HF-Inference sends it ({inputs, parameters}, or raw bytes for images), answered."""
    body = await request.body()
    if body.lstrip()[:1] == b"{" and not request.headers.get("content-type", "").startswith("image/"):
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        inputs, parameters = payload.get("inputs"), payload.get("parameters") or {}
    else:
        inputs, parameters = body, {}
    try:
        return JSONResponse(plain(answer(task, inputs, parameters)))
    except Refused as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # what pipelines raise for bad inputs
        return JSONResponse({"error": f"{task} could not take these inputs: {exc}"}, status_code=400)


@app.exception_handler(Exception)
async def failed(_request: Request, exc: Exception) -> JSONResponse:
    """Anything else that went wrong, said in the error's own words."""
    return JSONResponse({"error": f"{MODEL_ID} failed: {type(exc).__name__}: {exc}"}, status_code=500)


@app.get("/")
@app.get("/config")
def status() -> dict[str, str]:
    """What the server serves (the agent's health probe asks /config)."""
    return {"model": MODEL_ID, "task": TASK}


@app.post("/")
async def default(request: Request) -> JSONResponse:
    """The model's own task."""
    return await task_request(request, TASK)


@app.post("/pipeline/{task}")
async def by_task(task: str, request: Request) -> JSONResponse:
    """Another task of the same model (feature-extraction, sentence-similarity...)."""
    return await task_request(request, task)


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Any:
    """OpenAI-compatible chat completions through the tokenizer's chat template; `stream` sends
    Server-Sent Events, one chunk per piece of text, then `[DONE]`."""
    try:
        payload = json.loads(await request.body())
        generator = pipe("text-generation")
        tokenizer, model = generator.tokenizer, generator.model
        if not getattr(tokenizer, "chat_template", None):
            raise Refused(f"{MODEL_ID} has no chat template: it does not chat")
        prompt = tokenizer.apply_chat_template(
            payload.get("messages") or [], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    except Refused as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": f"bad chat request: {exc}"}, status_code=400)
    settings = {
        "max_new_tokens": payload.get("max_tokens") or payload.get("max_completion_tokens") or 20,
        "do_sample": bool(payload.get("temperature")),
    }
    if payload.get("temperature"):
        settings["temperature"] = payload["temperature"]
    if payload.get("top_p") is not None:
        settings["top_p"] = payload["top_p"]
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    prompt_tokens = int(prompt["input_ids"].shape[-1])

    def finish(count: int) -> str:
        return "length" if count >= settings["max_new_tokens"] else "stop"

    if not payload.get("stream"):
        output = model.generate(**prompt, **settings, pad_token_id=tokenizer.eos_token_id)[0][prompt_tokens:]
        text = tokenizer.decode(output, skip_special_tokens=True)
        count = int(output.shape[-1])
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish(count)}
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": count, "total_tokens": prompt_tokens + count},
        }

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    produced: list[int] = []

    def run() -> None:
        out = model.generate(**prompt, **settings, streamer=streamer, pad_token_id=tokenizer.eos_token_id)
        produced.append(int(out.shape[-1]) - prompt_tokens)

    def chunk(delta: dict[str, str], reason: str | None) -> bytes:
        body = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }
        return f"data: {json.dumps(body)}\n\n".encode()

    def events() -> Any:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield chunk({"role": "assistant", "content": ""}, None)
        for text in streamer:
            if text:
                yield chunk({"content": text}, None)
        worker.join()
        yield chunk({}, finish(produced[0] if produced else 0))
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "7860")), log_level="warning")
