"""Python bindings of libkvz (kvz.h) and libkvz-model (kvz_model.h) through ctypes.

Model(path) opens a GGUF model; model.compress(text, ratio, policy) returns a compressed Cache;
model.ask(cache, question) answers from it without changing it; Cache.save / Cache.load keep it in
a .kvz file. Cache.create, append, compact and policy_select serve a host written in Python.
Every failure raises Error with the library's status and message.
"""
import ctypes
import ctypes.util
import os

__all__ = ["Error", "Model", "Cache", "Query", "policy_select", "version", "isa"]

_POLICIES = {"full": 0, "kvzip": 1, "kvzip-pair": 1, "kvzip-pair-uniform": 2, "kvzip-head": 3, "fastkv": 4,
             "snapkv": 5, "pyramidkv": 6, "adakv": 7, "h2o": 8, "streaming": 9, "streamingllm": 9, "random": 10}
_DTYPES = {"f32": 0, "bf16": 1, "f16": 2}
_KV = {"auto": 0, "f32": 1, "bf16": 2, "f16": 3}  # kvz_lm_kv
_MODES = {"strict": 0, "exact": 1}
_PIECES = ("system", "repeat_first", "repeat_next", "postfix")  # kvz_lm_piece order


def _load(name):
    """The library from KVZ_LIB_DIR, else wherever the system's loader finds it."""
    d = os.environ.get("KVZ_LIB_DIR")
    candidates = [os.path.join(d, f"lib{name}.so")] if d else []
    found = ctypes.util.find_library(name)
    candidates += [found] if found else []
    candidates.append(f"lib{name}.so")
    err = None
    for c in candidates:
        try:
            return ctypes.CDLL(c)
        except OSError as e:
            err = e
    raise ImportError(f"cannot load lib{name}.so (install libkvz, or set KVZ_LIB_DIR): {err}")


_core = _load("kvz")
_lm = _load("kvz-model")
_size_t, _i32, _i64, _f32p = ctypes.c_size_t, ctypes.c_int32, ctypes.c_int64, ctypes.POINTER(ctypes.c_float)


class Error(Exception):
    """A failed libkvz call: .status (kvz_status), .name (its text) and the library's message."""

    def __init__(self, status, what):
        self.status = status
        self.name = _core.kvz_strerror(status).decode()
        super().__init__(f"{what}: {_core.kvz_last_error().decode()} ({self.name})")


def _check(status, what):
    if status != 0:
        raise Error(status, what)


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("string", ctypes.c_char_p)]


class _CacheConfig(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("n_layers", _size_t), ("n_kv_heads", _size_t), ("head_dim", _size_t),
                ("dtype", ctypes.c_int), ("reserve", _size_t), ("layer_window", ctypes.POINTER(_size_t))]


class _CacheStats(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("rows", _size_t), ("full_rows", _size_t), ("kept_ratio", ctypes.c_double),
                ("bytes_used", _size_t), ("bytes_reserved", _size_t)]


class _PolicyArgs(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("policy", ctypes.c_int), ("n_layers", _size_t), ("n_kv_heads", _size_t),
                ("n_tokens", _size_t), ("scores", ctypes.POINTER(_f32p)), ("head_scores", _f32p),
                ("ratio", ctypes.c_double), ("budget", _size_t), ("mode", ctypes.c_int), ("sinks", _size_t),
                ("recent", _size_t), ("adakv_alpha", ctypes.c_double), ("pyramid_beta", ctypes.c_double),
                ("seed", ctypes.c_uint64)]


class _LmInfo(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("arch", ctypes.c_char * 16), ("chat", ctypes.c_char * 16),
                ("n_layers", _size_t), ("n_heads", _size_t), ("n_kv_heads", _size_t), ("head_dim", _size_t),
                ("n_embd", _size_t), ("n_vocab", _size_t), ("n_params", _size_t), ("weights", ctypes.c_int),
                ("kv_dtype", ctypes.c_int), ("model_fingerprint", ctypes.c_uint8 * 32), ("bos", _i32),
                ("n_ff", _size_t), ("n_ctx_train", _size_t), ("window", _size_t), ("n_window_layers", _size_t),
                ("weight_bytes", _size_t), ("weights_as_stored", _i32)]


class _LmConfig(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("weights", ctypes.c_int), ("prefill_chunk", _size_t),
                ("vocab_only", ctypes.c_int)]


class _Pieces(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("ids", ctypes.POINTER(_i32) * 4), ("n", _size_t * 4),
                ("prev_tokens", _size_t)]


class _CompressOpts(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("policy", ctypes.c_int), ("ratio", ctypes.c_double),
                ("kv", ctypes.c_int), ("chunk", _size_t), ("mode", ctypes.c_int), ("head_scores", _f32p),
                ("pieces", ctypes.POINTER(_Pieces)), ("scores", _f32p), ("window", _size_t),
                ("kernel", _size_t), ("pool", ctypes.c_int)]


class _CompressReport(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("n_sys", _size_t), ("n_context", _size_t), ("n_kept", _size_t),
                ("passes", _size_t), ("pass_tokens", _size_t), ("prefill_s", ctypes.c_double),
                ("score_s", ctypes.c_double), ("select_s", ctypes.c_double)]


class _FastkvOpts(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("tsp_rate", ctypes.c_double), ("retain_rate", ctypes.c_double),
                ("full_layers", _size_t), ("no_tsp", ctypes.c_int), ("window", _size_t), ("kernel", _size_t),
                ("avg_pool", ctypes.c_int), ("kv", ctypes.c_int), ("pieces", ctypes.POINTER(_Pieces))]


class _FastkvReport(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("n_sys", _size_t), ("full_layers", _size_t), ("tsp_tokens", _size_t),
                ("prefill_s", ctypes.c_double)]


class _GenOpts(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("max_tokens", _size_t), ("temperature", ctypes.c_float),
                ("seed", ctypes.c_uint64), ("no_stop", ctypes.c_int)]


def _sig(lib, name, args, res=ctypes.c_int):
    f = getattr(lib, name)
    f.argtypes, f.restype = args, res


_vp, _pp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
_core.kvz_version.restype = _Version
_sig(_core, "kvz_strerror", [ctypes.c_int], ctypes.c_char_p)
_sig(_core, "kvz_last_error", [], ctypes.c_char_p)
_sig(_core, "kvz_isa_active", [])
_sig(_core, "kvz_isa_name", [ctypes.c_int], ctypes.c_char_p)
_sig(_core, "kvz_cache_create", [ctypes.POINTER(_CacheConfig), _pp])
_sig(_core, "kvz_cache_destroy", [_vp], None)
_sig(_core, "kvz_cache_append", [_vp, _size_t, _size_t, _f32p, _f32p, ctypes.c_ssize_t, ctypes.c_ssize_t])
_sig(_core, "kvz_cache_compact", [_vp, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8))])
_sig(_core, "kvz_cache_length", [_vp, _size_t, _size_t, ctypes.POINTER(_size_t)])
_sig(_core, "kvz_cache_positions", [_vp, _size_t, _size_t, ctypes.POINTER(ctypes.POINTER(_i64))])
_sig(_core, "kvz_cache_shape", [_vp, ctypes.POINTER(_size_t), ctypes.POINTER(_size_t), ctypes.POINTER(_size_t),
                                ctypes.POINTER(ctypes.c_int)])
_sig(_core, "kvz_cache_get_stats", [_vp, ctypes.POINTER(_CacheStats)])
_sig(_core, "kvz_policy_select", [ctypes.POINTER(_PolicyArgs), ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)),
                                  ctypes.POINTER(_size_t)])
_sig(_lm, "kvz_lm_open", [ctypes.c_char_p, ctypes.POINTER(_LmConfig), _pp])
_sig(_lm, "kvz_lm_close", [_vp], None)
_sig(_lm, "kvz_lm_get_info", [_vp, ctypes.POINTER(_LmInfo)])
_sig(_lm, "kvz_lm_tokenize", [_vp, ctypes.c_char_p, ctypes.c_uint, ctypes.POINTER(_i32), _size_t,
                              ctypes.POINTER(_size_t)])
_sig(_lm, "kvz_lm_detokenize", [_vp, ctypes.POINTER(_i32), _size_t, ctypes.c_uint, ctypes.c_char_p, _size_t,
                                ctypes.POINTER(_size_t)])
_sig(_lm, "kvz_lm_compress", [_vp, ctypes.c_char_p, ctypes.POINTER(_CompressOpts), _pp])
_sig(_lm, "kvz_lm_compress_ids", [_vp, ctypes.POINTER(_i32), _size_t, ctypes.POINTER(_CompressOpts), _pp,
                                  ctypes.POINTER(_CompressReport)])
_sig(_lm, "kvz_lm_ask", [_vp, _vp, ctypes.c_char_p, ctypes.POINTER(_GenOpts), ctypes.POINTER(_vp)])
_sig(_lm, "kvz_lm_generate", [_vp, ctypes.c_char_p, ctypes.POINTER(_GenOpts), ctypes.POINTER(_vp)])
_sig(_lm, "kvz_lm_load_cache", [_vp, ctypes.c_char_p, _pp, _vp])
_sig(_lm, "kvz_lm_save_cache", [_vp, _vp, ctypes.c_char_p, ctypes.POINTER(_CompressOpts)])
_sig(_lm, "kvz_lm_free", [_vp], None)
_sig(_lm, "kvz_lm_new_cache", [_vp, ctypes.c_int, _pp])
_sig(_lm, "kvz_lm_fastkv", [_vp, ctypes.POINTER(_i32), _size_t, ctypes.POINTER(_FastkvOpts), _pp, _f32p,
                            ctypes.POINTER(_FastkvReport)])
_sig(_lm, "kvz_lm_prefill_logits", [_vp, _vp, _vp, ctypes.POINTER(_i32), _size_t, _size_t, _f32p])
_sig(_lm, "kvz_lm_prefill", [_vp, _vp, _vp, ctypes.POINTER(_i32), _size_t, _f32p])
_sig(_lm, "kvz_lm_decode", [_vp, _vp, _vp, _f32p, ctypes.POINTER(_GenOpts), ctypes.POINTER(_i32),
                            ctypes.POINTER(_size_t)])
_sig(_lm, "kvz_lm_is_eog", [_vp, _i32])
_sig(_lm, "kvz_lm_piece_ids", [_vp, ctypes.c_int, ctypes.POINTER(_i32), _size_t, ctypes.POINTER(_size_t)])
_sig(_lm, "kvz_lm_question_ids", [_vp, ctypes.c_char_p, ctypes.POINTER(_i32), _size_t, ctypes.POINTER(_i32),
                                  _size_t, ctypes.POINTER(_size_t)])
_sig(_core, "kvz_query_create", [_vp, _pp])
_sig(_core, "kvz_query_destroy", [_vp], None)


def version():
    """The library's version string."""
    return _core.kvz_version().string.decode()


def isa():
    """The kernel level in use ("avx2", "avx512", "amx", "neon", ...)."""
    return _core.kvz_isa_name(_core.kvz_isa_active()).decode()


def _floats(values):
    """A float32 ctypes array of a sequence or buffer."""
    try:
        mv = memoryview(values)
        if mv.format == "f" and mv.c_contiguous:
            return (ctypes.c_float * mv.nbytes // 4).from_buffer_copy(mv)
    except TypeError:
        pass
    values = list(values)
    return (ctypes.c_float * len(values))(*values)


def _policy(policy):
    if isinstance(policy, int):
        return policy
    try:
        return _POLICIES[policy]
    except KeyError:
        raise ValueError(f"unknown policy {policy!r} (one of {', '.join(sorted(_POLICIES))})") from None


def _choice(table, value, what):
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"unknown {what} {value!r} (one of {', '.join(table)})") from None


def _compress_opts(policy, ratio, kv_dtype="auto", chunk=0, mode="strict"):
    return _CompressOpts(ctypes.sizeof(_CompressOpts), _policy(policy), float(ratio),
                         _choice(_KV, kv_dtype, "kv_dtype"), int(chunk), _choice(_MODES, mode, "mode"))


class Cache:
    """A compressed KV cache (kvz_cache): per (layer, KV head) segments of rows."""

    def __init__(self, handle):
        self._h = ctypes.c_void_p(handle)

    def __del__(self):
        if getattr(self, "_h", None) and self._h.value:
            _core.kvz_cache_destroy(self._h)
            self._h = None

    @classmethod
    def create(cls, n_layers, n_kv_heads, head_dim, dtype="f32"):
        cfg = _CacheConfig(ctypes.sizeof(_CacheConfig), n_layers, n_kv_heads, head_dim, _DTYPES[dtype], 0, None)
        h = ctypes.c_void_p()
        _check(_core.kvz_cache_create(ctypes.byref(cfg), ctypes.byref(h)), "kvz_cache_create")
        return cls(h.value)

    @classmethod
    def load(cls, path, model):
        """A .kvz file, checked against the model it was made with."""
        h = ctypes.c_void_p()
        _check(_lm.kvz_lm_load_cache(model._h, os.fsencode(path), ctypes.byref(h), None), f"load {path}")
        return cls(h.value)

    def save(self, path, model, policy="kvzip", ratio=0.3):
        """Writes a .kvz file with the model's fingerprint and the policy and ratio it records."""
        _check(_lm.kvz_lm_save_cache(model._h, self._h, os.fsencode(path), ctypes.byref(_compress_opts(policy, ratio))),
               f"save {path}")

    def shape(self):
        """(layers, KV heads, head_dim, dtype name)."""
        L, H, D, dt = _size_t(), _size_t(), _size_t(), ctypes.c_int()
        _check(_core.kvz_cache_shape(self._h, ctypes.byref(L), ctypes.byref(H), ctypes.byref(D), ctypes.byref(dt)),
               "kvz_cache_shape")
        return L.value, H.value, D.value, {v: k for k, v in _DTYPES.items()}[dt.value]

    def append(self, layer, k, v, n_tokens):
        """n_tokens rows of post-RoPE K and V for every KV head: [token][head][head_dim] float32."""
        _, H, D, _ = self.shape()
        kb, vb = _floats(k), _floats(v)
        if len(kb) != n_tokens * H * D or len(vb) != n_tokens * H * D:
            raise ValueError(f"k and v must hold {n_tokens} x {H} x {D} floats")
        _check(_core.kvz_cache_append(self._h, layer, n_tokens, kb, vb, H * D, D), "kvz_cache_append")

    def length(self, layer, head):
        n = _size_t()
        _check(_core.kvz_cache_length(self._h, layer, head, ctypes.byref(n)), "kvz_cache_length")
        return n.value

    def positions(self, layer, head):
        """The original token positions of a segment's rows."""
        n, p = self.length(layer, head), ctypes.POINTER(_i64)()
        _check(_core.kvz_cache_positions(self._h, layer, head, ctypes.byref(p)), "kvz_cache_positions")
        return [p[i] for i in range(n)]

    def compact(self, keep):
        """keep[layer * kv_heads + head]: a sequence of truthy values, one per row of that segment."""
        L, H, _, _ = self.shape()
        if len(keep) != L * H:
            raise ValueError(f"keep needs {L * H} masks")
        rows = [(ctypes.c_uint8 * max(len(m), 1))(*[1 if x else 0 for x in m]) for m in keep]
        ptrs = (ctypes.POINTER(ctypes.c_uint8) * len(rows))(
            *[ctypes.cast(r, ctypes.POINTER(ctypes.c_uint8)) for r in rows])
        _check(_core.kvz_cache_compact(self._h, ptrs), "kvz_cache_compact")

    def query(self):
        """A Query: a private tail over this cache for one question or continuation."""
        return Query(self)

    def stats(self):
        """rows, full_rows, kept_ratio, bytes_used, bytes_reserved."""
        s = _CacheStats(ctypes.sizeof(_CacheStats))
        _check(_core.kvz_cache_get_stats(self._h, ctypes.byref(s)), "kvz_cache_get_stats")
        return {k: getattr(s, k) for k, _ in _CacheStats._fields_[1:]}


class Query:
    """A private tail over a cache (kvz_query): what is prefilled or decoded into it stays out of the
    cache, which other queries may read meanwhile. The cache must outlive it."""

    def __init__(self, cache):
        h = ctypes.c_void_p()
        _check(_core.kvz_query_create(cache._h, ctypes.byref(h)), "kvz_query_create")
        self._h, self._cache = h, cache

    def __del__(self):
        if getattr(self, "_h", None) and self._h.value:
            _core.kvz_query_destroy(self._h)
            self._h = None


def policy_select(scores, n_layers, n_kv_heads, policy="kvzip", ratio=0.3, budget=0, recent=0, sinks=0):
    """Keep masks of a policy over score rows (scores[layer * n_kv_heads + head], each n_tokens
    floats): a list of lists of 0/1, and the kept count."""
    rows = [_floats(r) for r in scores]
    n = len(rows[0]) if rows else 0
    if len(rows) != n_layers * n_kv_heads or any(len(r) != n for r in rows):
        raise ValueError("scores needs n_layers * n_kv_heads rows of one length")
    row_ptrs = (_f32p * len(rows))(*[ctypes.cast(r, _f32p) for r in rows])
    args = _PolicyArgs(ctypes.sizeof(_PolicyArgs), _policy(policy), n_layers, n_kv_heads, n, row_ptrs, None,
                       float(ratio), budget, 0, sinks, recent, 0.0, 0.0, 0)
    masks = [(ctypes.c_uint8 * max(n, 1))() for _ in rows]
    mptrs = (ctypes.POINTER(ctypes.c_uint8) * len(rows))(
        *[ctypes.cast(m, ctypes.POINTER(ctypes.c_uint8)) for m in masks])
    kept = _size_t()
    _check(_core.kvz_policy_select(ctypes.byref(args), mptrs, ctypes.byref(kept)), "kvz_policy_select")
    return [list(m[:n]) for m in masks], kept.value


def _text(p):
    """A malloc'ed C string from libkvz-model, as str, freed."""
    try:
        return ctypes.string_at(p).decode("utf-8", errors="replace")
    finally:
        _lm.kvz_lm_free(p)


class Model:
    """A GGUF model with its tokenizer and chat template (kvz_lm). One call at a time per Model."""

    def __init__(self, path, vocab_only=False, weights="auto"):
        """vocab_only: the tokenizer alone (no weights read): tokenize, detokenize and info work.
        weights: auto (a quantized file's matrices as stored, products in bf16 on CPUs with AVX512_BF16,
        else f32), or f32 or bf16 copies made at load."""
        h = ctypes.c_void_p()
        cfg = _LmConfig(ctypes.sizeof(_LmConfig), _choice({"auto": 0, "f32": 1, "bf16": 2}, weights, "weights"), 0,
                        1 if vocab_only else 0)
        _check(_lm.kvz_lm_open(os.fsencode(path), ctypes.byref(cfg), ctypes.byref(h)), f"open {path}")
        self._h = h

    def __del__(self):
        if getattr(self, "_h", None) and self._h.value:
            _lm.kvz_lm_close(self._h)
            self._h = None

    def info(self):
        """arch, chat, n_layers, n_heads, n_kv_heads, head_dim, n_embd, n_vocab, n_params, ..."""
        i = _LmInfo(ctypes.sizeof(_LmInfo))
        _check(_lm.kvz_lm_get_info(self._h, ctypes.byref(i)), "kvz_lm_get_info")
        out = {k: getattr(i, k) for k, _ in _LmInfo._fields_[1:]}
        out["arch"], out["chat"] = i.arch.decode(), i.chat.decode()
        out["model_fingerprint"] = bytes(i.model_fingerprint).hex()
        return out

    def tokenize(self, text, bos=False, special=True):
        """Token ids of text: the model's BOS first with bos, special tokens in the text as their ids with special."""
        b = text.encode()
        flags = (1 if bos else 0) | (2 if special else 0)  # KVZ_TOKENIZE_BOS, KVZ_TOKENIZE_SPECIAL
        return self._sized(lambda buf, cap, n: _lm.kvz_lm_tokenize(self._h, b, flags, buf, cap, n), "kvz_lm_tokenize")

    def detokenize(self, ids, start=False, special=False):
        """The text of ids; start: they begin a document (no SentencePiece space before the first word);
        special: control tokens such as <|im_start|> as their text (else left out)."""
        arr = (_i32 * max(len(ids), 1))(*ids)
        n = _size_t()
        flags = (1 if start else 0) | (2 if special else 0)  # KVZ_DETOKENIZE_START, KVZ_DETOKENIZE_SPECIAL
        _check(_lm.kvz_lm_detokenize(self._h, arr, len(ids), flags, None, 0, ctypes.byref(n)), "kvz_lm_detokenize")
        buf = ctypes.create_string_buffer(n.value + 1)
        _check(_lm.kvz_lm_detokenize(self._h, arr, len(ids), flags, buf, n.value + 1, ctypes.byref(n)),
               "kvz_lm_detokenize")
        return buf.value.decode("utf-8", errors="replace")

    def compress(self, text, ratio=0.3, policy="kvzip", kv_dtype="auto", chunk=0, mode="strict"):
        """The model's system prompt and the text in a new cache, the policy's share of the text kept.
        kv_dtype: auto (what the model computes in), f32, bf16 or f16; mode: strict or exact (KVzip's cut)."""
        h = ctypes.c_void_p()
        opts = _compress_opts(policy, ratio, kv_dtype, chunk, mode)
        _check(_lm.kvz_lm_compress(self._h, text.encode(), ctypes.byref(opts), ctypes.byref(h)), "compress")
        return Cache(h.value)

    def compress_ids(self, ids, ratio=0.3, policy="kvzip", kv_dtype="auto", chunk=0, mode="strict",
                     head_scores=None, pieces=None, prev_tokens=0, scores=False):
        """compress() on context token ids; returns (cache, report), report a dict of what it did (n_sys,
        n_context, n_kept, passes, pass_tokens, prefill_s, score_s, select_s). pieces: a dict of piece
        name (system, repeat_first, repeat_next, postfix) to ids, the chat template's for the others.
        head_scores: kvzip-head's n_layers x n_kv_heads scores. scores=True adds report["scores"], the
        token scores the policy selected by as a numpy float32 array [layers, kv_heads, len(ids)]."""
        opts = _compress_opts(policy, ratio, kv_dtype, chunk, mode)
        ctx = (_i32 * max(len(ids), 1))(*ids)
        keep = [ctx]  # what the pointers in opts point at lives as long as the call
        if head_scores is not None:
            hs = _floats(head_scores)
            keep.append(hs)
            opts.head_scores = ctypes.cast(hs, _f32p)
        if pieces or prev_tokens:
            pc = _Pieces(ctypes.sizeof(_Pieces))
            pc.prev_tokens = prev_tokens
            for name, piece in (pieces or {}).items():
                k = _PIECES.index(name) if name in _PIECES else -1
                if k < 0:
                    raise ValueError(f"unknown piece {name!r} (one of {', '.join(_PIECES)})")
                arr = (_i32 * max(len(piece), 1))(*piece)
                keep.append(arr)
                pc.ids[k], pc.n[k] = ctypes.cast(arr, ctypes.POINTER(_i32)), len(piece)
            keep.append(pc)
            opts.pieces = ctypes.pointer(pc)
        out = None
        if scores:
            import numpy  # only this call needs it
            i = self.info()
            out = numpy.zeros((i["n_layers"], i["n_kv_heads"], len(ids)), dtype=numpy.float32)
            opts.scores = out.ctypes.data_as(_f32p)
        rep = _CompressReport(ctypes.sizeof(_CompressReport))
        h = ctypes.c_void_p()
        _check(_lm.kvz_lm_compress_ids(self._h, ctx, len(ids), ctypes.byref(opts), ctypes.byref(h),
                                       ctypes.byref(rep)), "compress_ids")
        report = {k: getattr(rep, k) for k, _ in _CompressReport._fields_[1:]}
        if out is not None:
            report["scores"] = out
        return Cache(h.value), report

    def fastkv(self, ids, tsp_rate=0.2, retain_rate=0.1, full_layers=0, tsp=True, window=0, kv_dtype="auto"):
        """FastKV's prefill of the system prompt and context ids: past the first full_layers (0: half the
        layers) only tsp_rate of the tokens run on; each layer's cache keeps retain_rate of its tokens per KV
        head. Returns (cache, report), report a dict (n_sys, full_layers, tsp_tokens, prefill_s) with the
        logits after the last id as a numpy array under "logits"."""
        import numpy
        opts = _FastkvOpts(ctypes.sizeof(_FastkvOpts), float(tsp_rate), float(retain_rate), full_layers,
                           0 if tsp else 1, window, 0, 0, _choice(_KV, kv_dtype, "kv_dtype"), None)
        arr = (_i32 * max(len(ids), 1))(*ids)
        logits = numpy.empty(self.info()["n_vocab"], dtype=numpy.float32)
        rep = _FastkvReport(ctypes.sizeof(_FastkvReport))
        h = ctypes.c_void_p()
        _check(_lm.kvz_lm_fastkv(self._h, arr, len(ids), ctypes.byref(opts), ctypes.byref(h),
                                 logits.ctypes.data_as(_f32p), ctypes.byref(rep)), "kvz_lm_fastkv")
        report = {k: getattr(rep, k) for k, _ in _FastkvReport._fields_[1:]}
        report["logits"] = logits
        return Cache(h.value), report

    def new_cache(self, kv_dtype="auto"):
        """An empty Cache shaped for the model (kvz_lm_new_cache); kv_dtype auto, f32, bf16 or f16."""
        dt = self.info()["kv_dtype"] if kv_dtype == "auto" else _choice(_DTYPES, kv_dtype, "kv_dtype")
        h = ctypes.c_void_p()
        _check(_lm.kvz_lm_new_cache(self._h, dt, ctypes.byref(h)), "kvz_lm_new_cache")
        return Cache(h.value)

    @staticmethod
    def _target(target):
        """(cache, query) handles of a Cache or a Query."""
        if isinstance(target, Query):
            return None, target._h
        if isinstance(target, Cache):
            return target._h, None
        raise TypeError("the target is a kvz.Cache or a kvz.Query")

    def prefill(self, target, ids, rows=1):
        """Runs ids through the model into a Cache or a Query; returns the next-token logits after each
        of the last `rows` ids as a numpy float32 array [rows, n_vocab] (rows=0: none, returns None)."""
        c, q = self._target(target)
        arr = (_i32 * max(len(ids), 1))(*ids)
        if not rows:
            _check(_lm.kvz_lm_prefill(self._h, c, q, arr, len(ids), None), "kvz_lm_prefill")
            return None
        import numpy
        out = numpy.empty((rows, self.info()["n_vocab"]), dtype=numpy.float32)
        _check(_lm.kvz_lm_prefill_logits(self._h, c, q, arr, len(ids), rows, out.ctypes.data_as(_f32p)),
               "kvz_lm_prefill_logits")
        return out

    def decode(self, target, logits, max_tokens=128, temperature=0.0, seed=0, stop=True):
        """Samples up to max_tokens ids from logits (a prefill's last row) on, feeding each but the last
        into the Cache or Query; stops after an end-of-turn id (kept) unless stop is False."""
        import numpy
        c, q = self._target(target)
        row = numpy.ascontiguousarray(numpy.asarray(logits, dtype=numpy.float32).reshape(-1)[-self.info()["n_vocab"]:])
        out, n = (_i32 * max_tokens)(), _size_t()
        opts = self._gen(max_tokens, temperature, seed, stop)
        _check(_lm.kvz_lm_decode(self._h, c, q, row.ctypes.data_as(_f32p), ctypes.byref(opts), out, ctypes.byref(n)),
               "kvz_lm_decode")
        return list(out[:n.value])

    def is_eog(self, token):
        """Whether an id ends a turn or the text."""
        return bool(_lm.kvz_lm_is_eog(self._h, token))

    def piece_ids(self, piece):
        """The ids of a chat-template piece KVzip uses: system, repeat_first, repeat_next or postfix."""
        k = _PIECES.index(piece) if piece in _PIECES else -1
        if k < 0:
            raise ValueError(f"unknown piece {piece!r} (one of {', '.join(_PIECES)})")
        return self._sized(lambda buf, cap, n: _lm.kvz_lm_piece_ids(self._h, k, buf, cap, n), "kvz_lm_piece_ids")

    def question_ids(self, question, postfix=None):
        """A question's ids as ask() sends them: the template's user turn, then postfix (the template's
        assistant opener when None)."""
        pf = (_i32 * max(len(postfix), 1))(*postfix) if postfix is not None else None
        npf = len(postfix) if postfix is not None else 0
        return self._sized(lambda buf, cap, n: _lm.kvz_lm_question_ids(self._h, question.encode(), pf, npf, buf,
                                                                       cap, n), "kvz_lm_question_ids")

    @staticmethod
    def _sized(call, what):
        """The ids of a count-then-fill call."""
        n = _size_t()
        _check(call(None, 0, ctypes.byref(n)), what)
        buf = (_i32 * max(n.value, 1))()
        _check(call(buf, n.value, ctypes.byref(n)), what)
        return list(buf[:n.value])

    @staticmethod
    def _gen(max_tokens, temperature, seed, stop):
        return _GenOpts(ctypes.sizeof(_GenOpts), max_tokens, temperature, seed, 0 if stop else 1)

    def ask(self, cache, question, max_tokens=128, temperature=0.0, seed=0, stop=True):
        """The answer to a question from the cache, which stays as it was."""
        p = ctypes.c_void_p()
        opts = self._gen(max_tokens, temperature, seed, stop)
        _check(_lm.kvz_lm_ask(self._h, cache._h, question.encode(), ctypes.byref(opts), ctypes.byref(p)), "ask")
        return _text(p)

    def generate(self, prompt, max_tokens=128, temperature=0.0, seed=0, stop=False):
        """The continuation of a text (no chat template)."""
        p = ctypes.c_void_p()
        opts = self._gen(max_tokens, temperature, seed, stop)
        _check(_lm.kvz_lm_generate(self._h, prompt.encode(), ctypes.byref(opts), ctypes.byref(p)), "generate")
        return _text(p)
