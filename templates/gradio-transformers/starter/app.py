import os

import gradio as gr
from transformers import pipeline

MODEL_ID = os.environ.get("MODEL_ID", "")
classifier = pipeline("text-classification", model=MODEL_ID) if MODEL_ID else None


def classify(text: str) -> dict[str, float] | str:
    if classifier is None:
        return "Set the space variable MODEL_ID to a text-classification model on this hub."
    return {result["label"]: result["score"] for result in classifier(text, top_k=None)}


demo = gr.Interface(
    classify,
    gr.Textbox(label="Text", value="spacehub runs transformers"),
    gr.Label(label="Labels"),
    title="Text classification",
    api_name="classify",
)
demo.launch()
