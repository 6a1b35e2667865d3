"""The tiny XLM-R loads through the Auto classes as a hub checkpoint would, and covers the mini corpus."""

import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    XLMRobertaTokenizer,
)

from fslib.engine.models import load_model
from fslib.prepare.mini.model import mini_corpus


def test_tiny_model_round_trips_through_save_and_from_pretrained(tiny_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert isinstance(tokenizer, XLMRobertaTokenizer)
    assert (tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id) == \
        (0, 1, 2, 3)  # XLM-R's special token ids
    model = load_model(tiny_model, "ner")
    assert model.config.model_type == "xlm-roberta" and model.config.hidden_size <= 256
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again = AutoModelForTokenClassification.from_pretrained(tmp_path)
    inputs = tokenizer(["Ivan works in Paris ."], return_tensors="pt")
    model.eval(), again.eval()
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, again(**inputs).logits)
    assert again.config.id2label[1] == "B-PER"


def test_tokenizer_covers_the_mini_corpus_without_unknown_tokens(mini_dir, tokenizer):
    texts = list(mini_corpus(mini_dir))
    assert len(texts) > 10_000
    unknown = tokenizer.unk_token_id
    for start in range(0, len(texts), 2000):
        ids = tokenizer(texts[start:start + 2000], add_special_tokens=False)["input_ids"]
        assert not any(unknown in row for row in ids)
