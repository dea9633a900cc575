"""The kvz package against independent references: cache rows and policy masks recomputed here, the
model's answers against the kvz tool's (KVZ_BIN) on SmolLM2-135M-Instruct (KVZ_TEST_MODEL). Tests
that need the model skip without it, and fail under CI."""
import os
import random
import subprocess

import pytest

import kvz

MODEL = os.environ.get("KVZ_TEST_MODEL", os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "kvz", "models",
    "SmolLM2-135M-Instruct.Q4_1.gguf"))
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")
DOC = ("The harbour town of Selwick has two lighthouses. The north light is painted red and was built in 1871 "
       "by the engineer Mara Quill. The south light is white, stands on the rocks called the Teeth, and has been "
       "dark since the storm of 1952. Every August the town holds a regatta in which the winning crew receives a "
       "brass compass.\n")
QUESTIONS = ["Who built the north light?", "What does the winning crew receive?"]


@pytest.fixture(scope="module")
def model():
    if not os.path.exists(MODEL):
        if IN_CI:
            pytest.fail(f"{MODEL} is absent under CI")
        pytest.skip(f"{MODEL} is absent (.ci/fetch-models downloads it)")
    return kvz.Model(MODEL)


def test_version_and_isa():
    assert kvz.version().count(".") == 2
    assert kvz.isa() in ("generic", "avx2", "avx512", "avx512bf16", "amx", "neon")


def test_cache_for_a_host():
    L, H, D, n = 2, 2, 4, 6
    c = kvz.Cache.create(L, H, D)
    rows = [float(i) for i in range(n * H * D)]
    for layer in range(L):
        c.append(layer, rows, rows, n)
    assert c.shape() == (L, H, D, "f32")
    assert [c.length(l, h) for l in range(L) for h in range(H)] == [n] * (L * H)
    rng = random.Random(1)
    keep = [[rng.random() < 0.5 for _ in range(n)] for _ in range(L * H)]
    c.compact(keep)
    for s in range(L * H):
        assert c.positions(s // H, s % H) == [j for j in range(n) if keep[s][j]]
    st = c.stats()
    assert st["rows"] == sum(map(sum, keep)) and st["full_rows"] == L * H * n
    with pytest.raises(kvz.Error) as e:
        c.append(L, rows, rows, n)  # no such layer
    assert e.value.name == "invalid argument"


def test_policy_select_pair_rule():
    rng = random.Random(2)
    L, H, n, r = 2, 3, 50, 0.3
    scores = [[rng.random() for _ in range(n)] for _ in range(L * H)]
    masks, kept = kvz.policy_select(scores, L, H, "kvzip", r)
    # KVzip's strict rule (spec/kvzip.md 3.2): the value at rank max(int(N r) - 1, 0), kept when greater
    flat = sorted((x for row in scores for x in row), reverse=True)
    thr = flat[max(int(len(flat) * r) - 1, 0)]
    assert masks == [[1 if x > thr else 0 for x in row] for row in scores]
    assert kept == sum(map(sum, masks))
    with pytest.raises(ValueError):
        kvz.policy_select(scores, L, H, "no-such-policy")


def test_model_info_and_tokens(model):
    info = model.info()
    assert info["arch"] == "llama" and info["chat"] == "chatml"
    assert (info["n_layers"], info["n_heads"], info["n_kv_heads"], info["n_vocab"]) == (30, 9, 3, 49152)
    text = "Hello world, KV caches!"
    assert model.detokenize(model.tokenize(text)) == text
    assert model.tokenize("<|im_start|>") == [1]
    assert model.tokenize("<|im_start|>", special=False) != [1]


def test_weights_as_stored(model):
    """The quantized matrices are used as the file stores them: the model holds their bytes in the file, as the
    gguf package (llama.cpp's own reader) counts them, and no more."""
    import re
    import gguf
    info = model.info()
    assert info["weights_as_stored"] == 1 and info["weights"] in (0, 1)  # products in f32 or bf16
    tensors = {t.name: int(t.n_bytes) for t in gguf.GGUFReader(MODEL).tensors}
    layer = re.compile(r"blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight")
    want = sum(n for name, n in tensors.items() if layer.fullmatch(name))
    want += tensors.get("output.weight", tensors["token_embd.weight"])  # the head, tied when absent
    assert info["weight_bytes"] == want


def metadata_only_copy(src, dst):
    """The GGUF file src without its tensors, written by the gguf package (llama.cpp's own reader and writer)."""
    import gguf
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, arch=str(bytes(r.fields["general.architecture"].parts[-1]), "utf-8"))
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        t = f.types[0]
        if t == gguf.GGUFValueType.ARRAY and f.types[1] == gguf.GGUFValueType.STRING:
            w.add_array(name, [bytes(f.parts[i]) for i in f.data])
        elif t == gguf.GGUFValueType.ARRAY:
            w.add_array(name, [f.parts[i].tolist()[0] for i in f.data])
        elif t == gguf.GGUFValueType.STRING:
            w.add_string(name, str(bytes(f.parts[-1]), "utf-8"))
        else:
            w.add_key_value(name, f.parts[-1].tolist()[0], t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_compress_ids_scores(model):
    """The scores compress_ids hands out, cut by KVzip's strict rule recomputed here (spec/kvzip.md 3.2),
    give the rows the cache kept; a caller's system prompt opens the cache."""
    ids = model.tokenize(DOC, special=False)
    n, r = len(ids), 0.3
    cache, rep = model.compress_ids(ids, ratio=r, chunk=40, scores=True)
    s = rep["scores"]
    L, H = s.shape[0], s.shape[1]
    assert s.shape == (L, H, n) and rep["n_context"] == n and rep["passes"] == (n + 39) // 40
    flat = sorted(s.reshape(-1).tolist(), reverse=True)
    thr = flat[max(int(len(flat) * r) - 1, 0)]
    kept = 0
    for layer in range(L):
        for h in range(H):
            want = list(range(rep["n_sys"])) + [rep["n_sys"] + j for j in range(n) if s[layer, h, j] > thr]
            assert cache.positions(layer, h) == want
            kept += len(want) - rep["n_sys"]
    assert rep["n_kept"] == kept
    own, rep2 = model.compress_ids(ids, policy="full", pieces={"system": [1, 2]})
    assert rep2["n_sys"] == 2 and own.positions(0, 0) == list(range(2 + n))
    with pytest.raises(kvz.Error):
        model.compress_ids(ids, policy="full", scores=True)  # full scores nothing
    with pytest.raises(ValueError):
        model.compress_ids(ids, pieces={"preamble": [1]})


STORIES = os.path.join(os.environ.get("KVZ_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                                   "shared")), "models", "stories260K.gguf")
# shared/models/README.md's vectors (llama2.c's run.c on stories260K): a prompt's ids and its greedy continuation
TOM = [1, 274, 287, 381, 261, 352, 266, 409, 275, 411, 426, 385, 328]
TOM_NEXT = [432, 281, 272, 277, 264, 261, 370, 432, 352, 266]


def test_token_level_on_stories():
    """prefill and decode into a cache and into a query's tail give the published greedy continuation."""
    if not os.path.exists(STORIES):
        if IN_CI:
            pytest.fail(f"{STORIES} is absent under CI")
        pytest.skip(f"{STORIES} is absent (../shared)")
    m = kvz.Model(STORIES, weights="f32")
    assert m.tokenize("Tom had a red kite. One day", bos=True) == TOM
    c = m.new_cache("f32")
    logits = m.prefill(c, TOM, rows=len(TOM))
    assert logits.shape == (len(TOM), m.info()["n_vocab"]) and int(logits[-1].argmax()) == TOM_NEXT[0]
    assert m.decode(c, logits[-1], max_tokens=len(TOM_NEXT), stop=False) == TOM_NEXT
    shared = m.new_cache("f32")
    assert m.prefill(shared, TOM[:8], rows=0) is None
    q = shared.query()
    assert m.decode(q, m.prefill(q, TOM[8:]), max_tokens=len(TOM_NEXT), stop=False) == TOM_NEXT
    assert shared.length(0, 0) == 8  # the tail stays out of the shared cache
    assert m.is_eog(2) and not m.is_eog(TOM_NEXT[0])  # llama2.c's EOS is 2
    with pytest.raises(TypeError):
        m.prefill("not a cache", TOM)
    with pytest.raises(kvz.Error):
        m.prefill(c, TOM, rows=len(TOM) + 1)


def test_fastkv(model):
    """FastKV's prefill: spec/fastkv.md's T = floor(n tsp_rate) tokens past half the layers, floor(n retain)
    rows per KV head before, and an answer from the cache it leaves."""
    ids = model.tokenize(DOC * 4, special=False)
    cache, rep = model.fastkv(ids, tsp_rate=0.25, retain_rate=0.2)
    n, i = rep["n_sys"] + len(ids), model.info()
    assert rep["full_layers"] == i["n_layers"] // 2 and rep["tsp_tokens"] == n // 4
    assert cache.length(0, 0) == n // 5 and cache.length(i["n_layers"] - 1, 0) == int(n // 4 * 0.8)
    assert rep["logits"].shape == (i["n_vocab"],)
    assert model.ask(cache, QUESTIONS[0], max_tokens=16)


def test_chat_pieces(model):
    """the pieces and question turns kvz_lm_compress and kvz_lm_ask use, as the chat template writes them"""
    sys_ids = model.piece_ids("system")
    assert model.detokenize(sys_ids, special=True).startswith("<|im_start|>system\nYou are")
    assert model.detokenize(sys_ids).startswith("system\nYou are")  # control tokens left out
    q = model.question_ids("Who built it?")
    assert q[-len(model.piece_ids("postfix")):] == model.piece_ids("postfix")
    assert "Who built it?" in model.detokenize(q)
    with pytest.raises(ValueError):
        model.piece_ids("preamble")


def test_vocab_only(model, tmp_path):
    """vocab_only on the model file and on a copy without tensors tokenizes as the full model does."""
    text = "Tom had a red kite. One day <|im_end|>"
    want = model.tokenize(text, bos=True)
    assert kvz.Model(MODEL, vocab_only=True).tokenize(text, bos=True) == want
    copy = str(tmp_path / "vocab.gguf")
    metadata_only_copy(MODEL, copy)
    vocab = kvz.Model(copy, vocab_only=True)
    assert vocab.tokenize(text, bos=True) == want
    info = vocab.info()
    assert (info["arch"], info["chat"], info["n_vocab"], info["n_layers"]) == ("llama", "chatml", 49152, 0)
    with pytest.raises(kvz.Error, match="token_embd"):
        kvz.Model(copy)


def kvz_tool_answers(cache_path, questions, max_tokens):
    kvz_bin = os.environ.get("KVZ_BIN", "kvz")
    cmd = [kvz_bin, "ask", "--model", MODEL, "--cache", cache_path, "--max-tokens", str(max_tokens), "--json"]
    for q in questions:
        cmd += ["--question", q]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    import json
    return [json.loads(line)["text"] for line in out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("ratio", [0.3, 1.0])
def test_answers_as_the_kvz_tool(model, tmp_path, ratio):
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    kvz_bin = os.environ.get("KVZ_BIN", "kvz")
    tool_cache = str(tmp_path / "tool.kvz")
    subprocess.run([kvz_bin, "compress", "--model", MODEL, "--context", str(doc), "--ratio", str(ratio),
                    "--out", tool_cache], check=True, capture_output=True)
    want = kvz_tool_answers(tool_cache, QUESTIONS, 24)
    cache = model.compress(DOC, ratio=ratio, policy="kvzip")
    got = [model.ask(cache, q, max_tokens=24) for q in QUESTIONS]
    assert got == want
    assert all(got)
    st = cache.stats()
    assert abs(st["kept_ratio"] - 1.0) < 1e-9 if ratio == 1.0 else st["kept_ratio"] < 0.6
    # a .kvz file from Python answers the same, in Python and in the tool
    path = str(tmp_path / "py.kvz")
    cache.save(path, model, "kvzip", ratio)
    loaded = kvz.Cache.load(path, model)
    assert [model.ask(loaded, q, max_tokens=24) for q in QUESTIONS] == got
    assert kvz_tool_answers(path, QUESTIONS, 24) == got


def test_generate_as_the_kvz_tool(model):
    kvz_bin = os.environ.get("KVZ_BIN", "kvz")
    out = subprocess.run([kvz_bin, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--max-tokens", "12",
                          "--json"], check=True, capture_output=True, text=True).stdout
    import json
    want = json.loads(out.splitlines()[-1])["text"]
    assert model.generate("Once upon a time", max_tokens=12) == want


def test_errors(model, tmp_path):
    with pytest.raises(kvz.Error) as e:
        kvz.Model(str(tmp_path / "missing.gguf"))
    assert "missing.gguf" in str(e.value)
    with pytest.raises(kvz.Error):
        model.compress("")
    with pytest.raises(ValueError):
        model.compress(DOC, policy="nonsense")
    bad = tmp_path / "bad.kvz"
    bad.write_bytes(b"not a cache")
    with pytest.raises(kvz.Error):
        kvz.Cache.load(str(bad), model)
