import time

import gradio as gr


def greet(name: str, intensity: int) -> str:
    return "Hello, " + (name or "world") + "!" * int(intensity)


def count_letters(text: str):
    """A generator: each partial result is streamed to the browser as it is produced."""
    counted = ""
    for letter in text:
        counted += letter
        time.sleep(0.05)
        yield f"{len(counted)} letters: {counted}"


with gr.Blocks(title="Hello Gradio") as demo:
    gr.Markdown("# Hello Gradio\nA first app on spacehub.")
    with gr.Row():
        name = gr.Textbox(label="Name", value="spacehub")
        intensity = gr.Slider(1, 10, value=3, step=1, label="Intensity")
    greeting = gr.Textbox(label="Greeting")
    gr.Button("Greet").click(greet, [name, intensity], greeting, api_name="greet")
    text = gr.Textbox(label="Text to count")
    progress = gr.Textbox(label="Progress")
    gr.Button("Count").click(count_letters, text, progress, api_name="count")

demo.launch()
