#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/<harness>/): small GGUF files of every tensor type and
tokenizer kind, .kvz caches of each format version and storage type, task lines, .npy arrays and texts.

Usage: [KVZ_BIN=build/native/kvz] fuzz/make_corpus.py [shared-dir] (default ../shared: stories260K's
vocabulary is copied from it; the real models' first 4 KiB are taken from ~/.cache/kvz/models when present;
with KVZ_BIN, `kvz compress` on stories260K adds a real saved cache and its dumped scores). Deterministic."""
import os
import random
import struct
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(TOP, "fuzz", "corpus")
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "..", "shared")
MODELS = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kvz", "models")
rng = random.Random(22)


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- GGUF ------------------------------------------------------------------------------------
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q",
          I64: "<q", F64: "<d"}
# ggml type: (elements per block, bytes per block, offset of the f16 scale(s) to keep finite)
TYPES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84),
         11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 30: (1, 2)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STRING:
        return gstr(v)
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def kv(key, t, v):
    return gstr(key) + struct.pack("<I", t) + value(t, v)


def gguf(kvs, tensors, alignment=32):
    """kvs: encoded pairs; tensors: (name, dims, type, data)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    off, infos, blobs = 0, b"", b""
    for name, dims, t, data in tensors:
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", t, off)
        pad = -len(data) % alignment
        blobs += data + b"\0" * pad
        off += len(data) + pad
    head += infos
    return head + b"\0" * (-len(head) % alignment) + blobs


def f16(x):
    return struct.pack("<e", x)


def block_data(t, n_blocks):
    """Random quantized blocks whose f16 scales are small finite numbers, as a real file's are."""
    block, size = TYPES[t]
    if t == 0:
        return b"".join(struct.pack("<f", rng.uniform(-2, 2)) for _ in range(n_blocks))
    if t in (1, 30):
        return b"".join(f16(rng.uniform(-2, 2)) if t == 1 else struct.pack("<f", rng.uniform(-2, 2))[2:]
                        for _ in range(n_blocks))
    out = b""
    for _ in range(n_blocks):
        b = bytearray(rng.getrandbits(8) for _ in range(size))
        if t in (2, 3, 6, 7, 8):  # d (and m) first
            b[0:2] = f16(rng.uniform(0.001, 0.05))
            if t in (3, 7):
                b[2:4] = f16(rng.uniform(-0.05, 0.05))
        elif t in (12, 13):  # d, dmin first
            b[0:2], b[2:4] = f16(rng.uniform(0.001, 0.05)), f16(rng.uniform(0.001, 0.05))
        elif t == 10:  # Q2_K: d, dmin last
            b[size - 4:size - 2], b[size - 2:size] = f16(rng.uniform(0.001, 0.05)), f16(rng.uniform(0.001, 0.05))
        else:  # Q3_K, Q6_K: d last
            b[size - 2:size] = f16(rng.uniform(0.001, 0.05))
        out += bytes(b)
    return out


def read_kvs(path):
    """The metadata pairs of a GGUF file, each as its encoded bytes."""
    with open(path, "rb") as f:
        data = f.read()
    p = 24
    n_kv = struct.unpack_from("<Q", data, 16)[0]

    def skip(p, t):
        if t == STRING:
            return p + 8 + struct.unpack_from("<Q", data, p)[0]
        if t == ARRAY:
            et, n = struct.unpack_from("<IQ", data, p)
            p += 12
            for _ in range(n):
                p = skip(p, et)
            return p
        return p + struct.calcsize(SCALAR[t])

    out = []
    for _ in range(n_kv):
        start = p
        p += 8 + struct.unpack_from("<Q", data, p)[0]
        t = struct.unpack_from("<I", data, p)[0]
        p = skip(p + 4, t)
        out.append(data[start:p])
    return out


def bpe_vocab():
    """A byte-level BPE vocabulary (the GPT-2 byte alphabet, a few merges, ChatML's special tokens), SmolLM2's
    kind, as its metadata pairs."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, k = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b), cs.append(256 + k)
            k += 1
    tokens = [chr(c) for c in cs]
    merges = ["\u0120 t", "h e", "\u0120t he", "i n", "\u0120 a", "e r", "1 2", "\u0120 \u0120"]
    tokens += [m.replace(" ", "") for m in merges]
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens += special
    types = [1] * (len(tokens) - len(special)) + [3] * len(special)
    return [kv("tokenizer.ggml.model", STRING, "gpt2"), kv("tokenizer.ggml.pre", STRING, "smollm"),
            kv("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)), kv("tokenizer.ggml.token_type", ARRAY, (I32, types)),
            kv("tokenizer.ggml.merges", ARRAY, (STRING, merges)),
            kv("tokenizer.ggml.bos_token_id", U32, len(tokens) - 2),
            kv("tokenizer.ggml.eos_token_id", U32, len(tokens) - 1)]


def gguf_seeds():
    scalars = [kv("general.architecture", STRING, "llama"), kv("general.alignment", U32, 32)]
    scalars += [kv("test.%d" % t, t, v) for t, v in
                [(U8, 200), (I8, -3), (U16, 60000), (I16, -300), (U32, 7), (I32, -7), (F32, 0.5), (BOOL, True),
                 (U64, 2**63 + 1), (I64, -2**40), (F64, 1e-300)]]
    scalars += [kv("test.u32s", ARRAY, (U32, [1, 2, 3])), kv("test.strs", ARRAY, (STRING, ["a", "", "\u2581b"]))]
    tensors = []
    for t, (block, _) in TYPES.items():
        tensors.append(("t%d" % t, [block, 2] if block > 1 else [8, 3], t, block_data(t, 2 if block > 1 else 24)))
    put("gguf", "types.gguf", gguf(scalars, tensors))
    put("gguf", "align64.gguf", gguf([kv("general.alignment", U32, 64)], tensors[:3], alignment=64))
    put("gguf", "no-tensors.gguf", gguf([kv("general.name", STRING, "x")], []))

    # stories260K's metadata (a SentencePiece vocabulary of 512 pieces) with one small tensor
    stories = os.path.join(SHARED, "models", "stories260K.gguf")
    put("gguf", "stories-vocab.gguf", gguf(read_kvs(stories), [("token_embd.weight", [8, 2], 0, block_data(0, 16))]))

    bpe = [kv("general.architecture", STRING, "llama")] + bpe_vocab()
    put("gguf", "bpe-vocab.gguf", gguf(bpe, [("token_embd.weight", [32, 1], 8, block_data(8, 1))]))

    for name in ("SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"):
        path = os.path.join(MODELS, name)
        if os.path.exists(path):  # the header and the first metadata, cut off: the reader's truncation paths
            with open(path, "rb") as f:
                put("gguf", name.split("-")[0].lower() + "-head.gguf", f.read(4096))


# ---- models ----------------------------------------------------------------------------------
def spm_vocab(special):
    """A tiny SentencePiece vocabulary: <unk> <s> </s>, `special` control tokens, a few byte pieces, the letters
    and some merges, as its metadata pairs."""
    tokens = ["<unk>", "<s>", "</s>"] + special + ["<0x%02X>" % b for b in (0x0A, 0x21, 0x2E, 0xC3, 0xA9)]
    types = [2, 3, 3] + [3] * len(special) + [6] * 5
    words = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
        ["\u2581t", "he", "\u2581the", "\u2581a", "in", "er", "\u2581R", "ep", "eat", "\u2581con", "text"]
    tokens += words
    types += [1] * len(words)
    scores = [0.0] * (len(tokens) - len(words)) + [-float(i) for i in range(len(words))]
    return [kv("tokenizer.ggml.model", STRING, "llama"), kv("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
            kv("tokenizer.ggml.scores", ARRAY, (F32, scores)), kv("tokenizer.ggml.token_type", ARRAY, (I32, types)),
            kv("tokenizer.ggml.bos_token_id", U32, 1), kv("tokenizer.ggml.eos_token_id", U32, 2)], len(tokens)


def weight(name, dims, t):
    """A tensor of random values in type t: dims[0] (the row) is whole blocks of t."""
    block = TYPES[t][0]
    n = 1
    for d in dims:
        n *= d
    return (name, dims, t, block_data(t, n // block))


def norm(name, n, t=0):
    """A norm weight near 1 (a model whose norms are random noise computes noise)."""
    if t == 0:
        return (name, [n], 0, b"".join(struct.pack("<f", 1 + rng.uniform(-0.1, 0.1)) for _ in range(n)))
    return weight(name, [n], t)


def model(arch, hp, vocab, n_vocab, layer_types, extra_kvs=(), extra_tensors=(), tied=True, alignment=32,
          model_tensors=()):
    """A decoder of architecture arch: hp holds block_count, embedding_length, feed_forward_length,
    attention.head_count(_kv) and key_length; layer_types[l] the types of q, k, v, o, gate, up, down;
    extra_tensors make a layer's further tensors from its name prefix, model_tensors are the model's own."""
    E, F, H, KV, D = (hp[k] for k in ("embedding_length", "feed_forward_length", "attention.head_count",
                                        "attention.head_count_kv", "attention.key_length"))
    kvs = [kv("general.architecture", STRING, arch), kv("general.alignment", U32, alignment)]
    kvs += [kv("%s.%s" % (arch, k), U32, v) for k, v in hp.items()] + list(extra_kvs) + vocab
    tensors = [weight("token_embd.weight", [E, n_vocab], 8)]
    for l, (tq, tk, tv, to, tg, tu, td) in enumerate(layer_types):
        b = "blk.%d." % l
        tensors += [norm(b + "attn_norm.weight", E), norm(b + "ffn_norm.weight", E, 1 if l % 2 else 0),
                    weight(b + "attn_q.weight", [E, H * D], tq), weight(b + "attn_k.weight", [E, KV * D], tk),
                    weight(b + "attn_v.weight", [E, KV * D], tv), weight(b + "attn_output.weight", [H * D, E], to),
                    weight(b + "ffn_gate.weight", [E, F], tg), weight(b + "ffn_up.weight", [E, F], tu),
                    weight(b + "ffn_down.weight", [F, E], td)]
        tensors += [x(b) for x in extra_tensors]
    tensors.append(norm("output_norm.weight", E))
    tensors += list(model_tensors)
    if not tied:
        tensors.append(weight("output.weight", [E, n_vocab], 3))
    return gguf(kvs, tensors, alignment)


def model_seeds():
    """Tiny models of each architecture the loader knows (a few KB each): every tensor type among the weights,
    tied and separate LM heads, biases, rope factors, rope scaling, sliding-window layers, a 1-byte alignment,
    and the three chat-template families a file can name."""
    shape = {"context_length": 64, "embedding_length": 32, "feed_forward_length": 32, "attention.head_count": 2,
             "attention.head_count_kv": 1, "attention.key_length": 16, "rope.dimension_count": 16}
    llama3 = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    vocab, n = spm_vocab(llama3)
    put("model", "llama-tiny.gguf", model(
        "llama", dict(shape, block_count=2), vocab + [kv("tokenizer.chat_template", STRING,
                                                         "{{ '<|start_header_id|>' + role + '<|end_header_id|>' }}")],
        n, [(2, 0, 1, 7, 30, 6, 8), (8, 8, 3, 2, 3, 6, 7)],
        [kv("llama.rope.freq_base", F32, 500000.0), kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-5)],
        model_tensors=[norm("rope_freqs.weight", 8)]))  # llama3's per-pair divisors
    vocab, n = spm_vocab([])
    put("model", "mistral-align1.gguf", model(
        "mistral", dict(shape, block_count=1, **{"rope.dimension_count": 8}), vocab, n, [(8, 1, 30, 8, 2, 3, 8)],
        [kv("mistral.rope.scaling.type", STRING, "linear"), kv("mistral.rope.scaling.factor", F32, 4.0)],
        tied=False, alignment=1))
    qwen = dict(shape, block_count=1, **{"feed_forward_length": 256, "attention.head_count": 4,
                                          "attention.head_count_kv": 2, "attention.key_length": 8,
                                          "rope.dimension_count": 8})
    put("model", "qwen2-bpe.gguf", model(
        "qwen2", qwen, bpe_vocab() + [kv("tokenizer.chat_template", STRING, "<|im_start|>{{ m }}<think>")], 267,
        [(2, 3, 8, 8, 2, 2, 12)], [kv("qwen2.rope.freq_base", F32, 1000000.0)],
        [lambda b: norm(b + "attn_q.bias", 32), lambda b: norm(b + "attn_k.bias", 16),
         lambda b: norm(b + "attn_v.bias", 16)], tied=False))
    gemma = ["<start_of_turn>", "<end_of_turn>"]
    vocab, n = spm_vocab(gemma)
    put("model", "gemma3-tiny.gguf", model(
        "gemma3", dict(shape, block_count=2, **{"feed_forward_length": 256}), vocab, n,
        [(8, 8, 8, 8, 2, 3, 14), (2, 6, 7, 1, 2, 2, 10)],
        [kv("gemma3.attention.sliding_window", U32, 3), kv("gemma3.attention.sliding_window_pattern", U32, 2),
         kv("gemma3.rope.freq_base", F32, 1000000.0), kv("gemma3.rope.freq_base_swa", F32, 10000.0),
         kv("gemma3.attention.layer_norm_rms_epsilon", F32, 1e-6)],
        [lambda b: norm(b + "attn_q_norm.weight", 16), lambda b: norm(b + "attn_k_norm.weight", 16),
         lambda b: norm(b + "post_attention_norm.weight", 32), lambda b: norm(b + "post_ffw_norm.weight", 32)]))


# ---- .kvz ------------------------------------------------------------------------------------
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def row(dt, d):
    vals = [rng.uniform(-1, 1) for _ in range(d)]
    if dt == 0:
        return b"".join(struct.pack("<f", v) for v in vals)
    if dt == 1:
        return b"".join(struct.pack("<f", v)[2:] for v in vals)
    return b"".join(f16(v) for v in vals)


def kvz(version, dt, d, layers, H, policy=b"kvzip-pair", ratio=0.5):
    """layers: (next position, window, [positions of each head's rows])."""
    L = len(layers)
    h = b"KVZCACHE" + struct.pack("<IIQQQII", version, 128, L, H, d, dt, 4)
    h += bytes(range(32)) + policy.ljust(32, b"\0") + struct.pack("<dI", ratio, 0)
    h += struct.pack("<I", crc32c(h))
    lens = b"".join(struct.pack("<Q", nxt) for nxt, _, _ in layers)
    if version >= 2:
        lens += b"".join(struct.pack("<Q", w) for _, w, _ in layers)
    lens += b"".join(struct.pack("<Q", len(p)) for _, _, heads in layers for p in heads)
    posn = b"".join(struct.pack("<q", x) for _, _, heads in layers for p in heads for x in p)
    n_rows = sum(len(p) for _, _, heads in layers for p in heads)
    keys = b"".join(row(dt, d) for _ in range(n_rows))
    vals = b"".join(row(dt, d) for _ in range(n_rows))
    out = h
    for tag, payload in ((b"LENS", lens), (b"POSN", posn), (b"KEYS", keys), (b"VALS", vals)):
        out += tag + struct.pack("<IQ", crc32c(payload), len(payload)) + payload
    return out


def kvz_seeds():
    put("kvz", "f32-window.kvz", kvz(2, 0, 4, [(3, 0, [[0, 1, 2], [0, 2]]), (5, 2, [[3, 4], [3, 4]])], 2))
    put("kvz", "bf16-compacted.kvz", kvz(2, 1, 8, [(6, 0, [[0, 2, 5]])], 1, b"fastkv", 0.25))
    put("kvz", "f16-v1.kvz", kvz(1, 2, 2, [(4, 0, [[1, 3], [0, 1, 2, 3]]), (4, 0, [[], [2]])], 2, b"h2o"))
    put("kvz", "empty.kvz", kvz(2, 0, 16, [(0, 0, [[]]), (0, 4, [[]])], 1, b"full", 1.0))


# ---- JSON, .npy, text ------------------------------------------------------------------------
def json_seeds():
    put("json", "task.json", '{"context_ids": [1, 2, 3, 4], "queries": [{"prompt_ids": [5, 6], "answer_ids": [7]}, '
                             '{"prompt_ids": [8], "answer_ids": [9, 10]}]}')
    put("json", "values.json", '{"s": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t", "n": -1.5e3, '
                               '"i": 2147483647, "t": true, "f": false, "z": null, "a": [[], {}, [0.5, -0]]}')
    put("json", "options.json", '{"system": "1 2 3", "prefix": "4 5", "suffix": "6", "prev-tokens": 8}')
    put("json", "nested.json", "[" * 40 + "1" + "]" * 40)
    put("json", "bad-escape.json", '{"a": "\\ud800\\u12"}')


def npy(shape, descr="<f4", order="False"):
    dims = ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (descr, order, dims)
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    count = 1
    for s in shape:
        count *= s
    data = b"".join(struct.pack("<f", rng.uniform(-1, 1)) for _ in range(count))
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def npy_seeds():
    put("npy", "vec7.npy", npy([7]))
    put("npy", "mat3x5.npy", npy([3, 5]))
    put("npy", "t2x3x4.npy", npy([2, 3, 4]))
    put("npy", "t1x2x1x3.npy", npy([1, 2, 1, 3]))
    put("npy", "empty.npy", npy([0]))
    put("npy", "fortran.npy", npy([2, 2], order="True"))


def tokenizer_seeds():
    # the first byte picks the vocabulary (modulo those loaded) and the flags: 0x10 BOS, 0x20 special
    # tokens parsed, 0x40 special pieces rendered
    texts = {
        "english.txt": "Once upon a time, there was a little girl named Lily. She liked to play outside.\n",
        "chat.txt": "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<start_of_turn>model\n"
                    "<s></s><|endoftext|><end_of_turn>",
        "digits.txt": "12345 3.14159 1,000,000 0x1F 2026-12-06 ١٢٣",
        "unicode.txt": "caf\u00e9 cafe\u0301 \u00c5ngstr\u00f6m \u4f60\u597d\u4e16\u754c \ud55c\uad6d\uc5b4 "
                       "\u0645\u0631\u062d\u0628\u0627 \U0001f642\U0001f468\u200d\U0001f469 \u2581\u2581 \ufb01",
        "space.txt": "  leading\t\ttabs\n\n\nnewlines   trailing   \r\n\u00a0nbsp\u3000ideographic",
        "code.txt": "def f(x):\n    return x**2  # square\n\nif __name__ == '__main__':\n    print(f(3))\n",
    }
    for i, (name, text) in enumerate(texts.items()):
        put("tokenizer", name, bytes([i % 3 | (0x30 if i % 2 else 0x10) | (0x40 if i == 1 else 0)]) + text.encode())
    invalid = [b"\xff\xfe", b"\x80 lone continuation", b"\xc0\xaf overlong", b"\xe2\x82 cut", b"\xed\xa0\x80 surrogate",
               b"\xf4\x90\x80\x80 beyond", b"ok\x00nul", b"\xf0\x9f\x99"]
    put("tokenizer", "invalid-utf8.txt", b"\x00" + b" ".join(invalid))
    put("tokenizer", "invalid-utf8-bpe.txt", b"\x31" + b"|".join(invalid))
    put("tokenizer", "invalid-utf8-spm.txt", b"\x32" + b"".join(invalid))


def real_seeds():
    """A cache and a score dump as the tool writes them, from stories260K."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = os.path.join(tmp, "ctx.txt")
        with open(ctx, "w") as f:
            f.write("Lily had a red ball. She threw it to Tom.\n")
        subprocess.run([os.environ["KVZ_BIN"], "compress", "--model", os.path.join(SHARED, "models", "stories260K.gguf"),
                        "--context", ctx, "--out", os.path.join(tmp, "c.kvz"), "--ratio", "0.5", "--kv-dtype", "bf16",
                        "--sys-ids", "1", "--repeat-ids", "2", "--repeat-next-ids", "2", "--postfix-ids", "3",
                        "--dump-scores", os.path.join(tmp, "s.npy")], check=True, stdout=subprocess.DEVNULL)
        for harness, src, name in (("kvz", "c.kvz", "stories260K.kvz"), ("npy", "s.npy", "stories260K-scores.npy")):
            with open(os.path.join(tmp, src), "rb") as f:
                put(harness, name, f.read())


gguf_seeds()
if os.environ.get("KVZ_BIN"):
    real_seeds()
kvz_seeds()
json_seeds()
npy_seeds()
tokenizer_seeds()
model_seeds()  # last: the seeds above keep their random bytes
