"""Tiny models made here, as the tests need them: randomly initialised configs with a word-level
tokenizer, saved with `save_pretrained` (no download from anywhere)."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)

WORDS = [
    "the",
    "a",
    "is",
    "was",
    "of",
    "to",
    "and",
    "in",
    "it",
    "you",
    "that",
    "he",
    "she",
    "they",
    "we",
    "i",
    "this",
    "my",
    "your",
    "good",
    "bad",
    "great",
    "awful",
    "movie",
    "film",
    "day",
    "weather",
    "sunny",
    "rain",
    "paris",
    "london",
    "city",
    "capital",
    "france",
    "england",
    "who",
    "what",
    "where",
    "when",
    "how",
    "love",
    "hate",
    "like",
    "happy",
    "sad",
    "alice",
    "bob",
    "lives",
    "works",
    "here",
    "there",
    "today",
    "tomorrow",
    "yes",
    "no",
    "hello",
    "hi",
    "user",
    "assistant",
    "system",
    ":",
    ".",
    ",",
    "?",
    "!",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<eos>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}


def word_tokenizer(*, bert_style: bool) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over WORDS (lowercased, split on spaces and punctuation)."""
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if bert_style:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            do_lower_case=True,
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", eos_token="<eos>", bos_token="<eos>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def bert_config(**extra: object) -> BertConfig:
    return BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        **extra,
    )


def save(model: torch.nn.Module, tokenizer: object, folder: Path, card: str) -> Path:
    """Save the model, its tokenizer (or image processor) and a model card naming its task."""
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
    (folder / "README.md").write_text(f"---\npipeline_tag: {card}\nlibrary_name: transformers\n---\n")
    return folder


def make(task: str, folder: Path) -> Path:
    """A tiny model for `task`, saved in `folder`."""
    torch.manual_seed(0)
    text = word_tokenizer(bert_style=True)
    if task == "text-classification":
        config = bert_config(id2label=NLI_LABELS, label2id={v: k for k, v in NLI_LABELS.items()})
        return save(BertForSequenceClassification(config), text, folder, task)
    if task == "fill-mask":
        return save(BertForMaskedLM(bert_config()), text, folder, task)
    if task == "token-classification":
        labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
        config = bert_config(id2label=labels, label2id={v: k for k, v in labels.items()})
        return save(BertForTokenClassification(config), text, folder, task)
    if task == "question-answering":
        return save(BertForQuestionAnswering(bert_config()), text, folder, task)
    if task == "text-generation":
        tokenizer = word_tokenizer(bert_style=False)
        config = GPT2Config(
            vocab_size=len(SPECIALS) + len(WORDS),
            n_positions=128,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=SPECIALS.index("<eos>"),
            eos_token_id=SPECIALS.index("<eos>"),
        )
        return save(GPT2LMHeadModel(config), tokenizer, folder, task)
    if task == "summarization":
        eos = SPECIALS.index("<eos>")
        config = BartConfig(
            vocab_size=len(SPECIALS) + len(WORDS),
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=37,
            decoder_ffn_dim=37,
            max_position_embeddings=128,
            pad_token_id=0,
            bos_token_id=SPECIALS.index("[CLS]"),
            eos_token_id=eos,
            decoder_start_token_id=SPECIALS.index("[CLS]"),
            forced_eos_token_id=None,
        )
        return save(BartForConditionalGeneration(config), word_tokenizer(bert_style=False), folder, task)
    if task == "image-classification":
        labels = {0: "cat", 1: "dog"}
        config = ViTConfig(
            image_size=32,
            patch_size=8,
            num_channels=3,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            id2label=labels,
            label2id={v: k for k, v in labels.items()},
        )
        processor = ViTImageProcessor(size={"height": 32, "width": 32})
        return save(ViTForImageClassification(config), processor, folder, task)
    raise ValueError(task)


def png(seed: int = 0) -> bytes:
    """A small image with some structure in it, as PNG bytes."""
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(40, 48, 3, generator=generator) * 255).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
