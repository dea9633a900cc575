#!/usr/bin/env python3
"""Reference vectors from llama.cpp (the llama-cpp-python package) for the real-model tests.

For one GGUF file it writes tests/data/ref_<name>.txt: the token ids of 200+ texts (ASCII,
Unicode, code, numbers, whitespace runs, chat markers), greedy continuations of 32 tokens for 8
prompts with the top-2 logit gap of every step, and the top-20 log-probabilities at every position
of a 512-token teacher-forced text. tests/test_real_models.c holds libkvz to them.

With --f32 it writes tests/data/ref_<name>_f32.txt from a copy of the file whose tensors the gguf
package's dequantize has turned into F32: llama.cpp then computes in fp32 on exactly the weights
libkvz dequantizes, where on the quantized file its matrix products round the activations to 8 bits
(Q8_1 / Q8_K blocks), a difference of method, not of model. Both runs keep the KV cache in F32 and
flash attention off.

With --long (and --f32) it writes tests/data/ref_<name>_long_f32.txt: only the teacher-forced text,
1536 tokens of the text above told three times over, where Gemma 3's local layers see 512 of them.

    python3 -m venv build/refvenv
    build/refvenv/bin/pip install llama-cpp-python==0.3.36 gguf==0.19.0 numpy==2.4.6
    for m in smollm2:SmolLM2-135M-Instruct.Q4_1 gemma3:gemma-3-270m-q4_k_m; do
        for f in "" --f32; do
            build/refvenv/bin/python tests/llama_ref.py $f ${m%%:*} ~/.cache/kvz/models/${m#*:}.gguf
        done
    done

Format (text, one record a line, fields separated by single spaces):
    kvz-ref 1
    model NAME SHA256 llama-cpp-python VERSION
    text HEX                 the UTF-8 bytes of a text, in hex (the next line holds its ids)
    ids ID...                with the model's BOS as llama.cpp adds it, special tokens parsed
    prompt ID...             a greedy prompt (ids)
    greedy ID...             its 32-token greedy continuation
    gap G...                 top-1 minus top-2 logit of each of those steps (nats)
    tf ID...                 the teacher-forced text (512 ids)
    top P ID:LOGPROB...      the 20 most likely next tokens after position P, best first
"""
import hashlib
import os
import random
import sys
import tempfile

import gguf
import llama_cpp
import numpy as np


def texts_for_tokenizer():
    base = [
        "Hello world", "hello world", "HELLO WORLD", " Hello", "  Hello", "Hello ", "Hello  world",
        "The quick brown fox jumps over the lazy dog.", "I'm sure it's fine, isn't it? We'll see; they'd know.",
        "don't DON'T Don't", "a", " ", "  ", "\n", "\n\n", "\t", " \t \n ", "x\n\ny", "line1\nline2\r\nline3",
        "1", "12", "123", "1234", "12345", "3.14159", "1,000,000", "2026-12-06", "0x1F 0b1010 1e-9",
        "Phone: +1 (555) 010-9999", "$100.00 or €85,50 or ¥1200", "42nd 3rd 1st",
        "café naïve résumé Zoë", "Größe Straße", "東京は日本の首都です。", "北京欢迎你", "こんにちは世界",
        "안녕하세요", "Привет, мир!", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
        "ภาษาไทย", "🙂🚀✨ emoji 👍🏽", "👨‍👩‍👧‍👦 family", "e\u0301 vs é", "Å\u030a", "ﬁ ligature", "½ ¼ ²",
        "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "tab\tseparated\tvalues",
        "def f(x):\n    return x * 2\n", "int main(void) { return 0; }", "for (i = 0; i < n; i++) {\n\ta[i] = i;\n}",
        "if x == 1 and y != 2:\n    pass", "<html><body>Hi</body></html>", '{"key": "value", "n": [1, 2, 3]}',
        "SELECT * FROM users WHERE id = 42;", "#include <stdio.h>", "// comment\n/* block */", "x += 1; y -= 2;",
        "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Windows\\System32", "~/dir/file.txt",
        "                                ", "a  b   c    d     e", "\n\n\n\n", "end.\n\n\nStart", "...", "!!!???",
        "--- *** ___", "(parenthesis) [brackets] {braces}", "\"quoted\" 'single'", "Mr. Smith vs. Ms. Jones",
        "ALL CAPS SENTENCE HERE", "camelCaseIdentifier snake_case_identifier", "supercalifragilisticexpialidocious",
        "The year 1999 and 2000 and 20001", "Room 101, floor 7", "A1B2C3", "v1.2.3-rc4",
    ]
    chat = [
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\n",
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
        "<|endoftext|>text after end", "<|im_start|><|im_end|>",
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
        "<bos><start_of_turn>user\nWrite a poem.<end_of_turn>\n<start_of_turn>model\nRoses<end_of_turn>",
        "<end_of_turn>", "text <start_of_turn> more", "<s> </s> <unk> literal", "<|eot_id|> not a marker here",
    ]
    texts = base + chat
    texts += [" " + t for t in base[:40]] + [t + "\n" for t in base[40:80]]
    rng = random.Random(20261206)
    pools = [
        "the of and to in is that it for was on with he as you at by this had not are but from or have".split(),
        ["café", "Zürich", "東京", "мир", "κόσμε", "🙂", "😀", "naïve", "ß", "Ω", "→", "∑", "日本語", "한국어", "עברית"],
        ["0", "7", "42", "123", "2048", "3.5", "-1", "1e3", "007", "99999"],
        [" ", "  ", "\n", "\t", "   ", "\n\n", " \n"],
        ["(", ")", "{", "}", ";", "=", "==", "->", "::", "#", "//", "'s", "'ll", "n't", ",", ".", "?", "!", "\"", "'"],
    ]
    for _ in range(120):
        parts = []
        for _ in range(rng.randint(3, 14)):
            pool = pools[rng.choices(range(len(pools)), weights=[6, 2, 2, 2, 2])[0]]
            parts.append(rng.choice(pool))
            if rng.random() < 0.6:
                parts.append(" ")
        texts.append("".join(parts))
    return texts


TF_TEXT = (
    "The lighthouse at Carrow Point was built in 1871 by the harbour commission of the town of Wrenfield, "
    "after the schooner Mary Ellen was lost on the reef with all eleven of her crew. Its first keeper, Tobias "
    "Hale, kept a logbook that survives in the town library; in it he recorded the weather twice a day, the "
    "ships that passed, and the number of gallons of whale oil the lamp consumed. In the winter of 1883 the "
    "oil ran short and Hale burned lard for nine nights, a fact the commission learned only when the bill "
    "arrived in the spring. The tower is forty-two metres tall and painted in red and white bands, seven of "
    "each. Its lens, a first-order Fresnel lens made in Paris, weighs nearly three tonnes and floats on a bath "
    "of mercury so that a small clockwork motor can turn it. The light flashes white every ten seconds and can "
    "be seen from thirty-eight kilometres away on a clear night.\n\n"
    "Electricity reached the lighthouse in 1952, and the last resident keeper, Agnes Moorcroft, left in 1987 "
    "when the light was automated. She had lived there for twenty-six years and raised three children on the "
    "point, rowing them across the bay to school when the causeway flooded. Today the keeper's cottage is a "
    "small museum. Visitors can climb the 219 steps of the spiral staircase on weekends between April and "
    "October; the museum asks for a donation of five pounds and closes at four in the afternoon. From the "
    "gallery at the top one can see the ruins of Saint Brannoc's chapel to the north and, on the clearest "
    "days, the hills of the mainland some sixty kilometres to the east.\n\n"
    "The reef itself, called the Teeth by local fishermen, is a ridge of dark basalt that lies just below the "
    "surface at high tide. Divers from the university at Kelsey have surveyed nine wrecks on it, the oldest a "
    "merchant ship from the seventeenth century whose cargo of wine jars still lies scattered across the sand. "
    "The Mary Ellen's bell was recovered in 1994 and now hangs in the entrance hall of the museum, beside a "
    "photograph of her captain, Elias Brand, taken the summer before she sank. Every year on the fourteenth of "
    "November the town rings the bell eleven times at dusk, once for each member of the crew, and the light "
    "is switched on a few minutes early in their memory. Children from the school read out the crew's names, "
    "and the harbourmaster lays a wreath of heather on the water at the foot of the tower. Afterwards there "
    "is soup and bread in the chapel hall, paid for by the fishermen's cooperative, and the oldest people of "
    "the town tell the stories they heard from their grandparents about the night the schooner was lost, the "
    "storm that lasted three days, and the lantern that Hale is said to have carried along the shore until "
    "dawn, looking for survivors who never came. The commission's minutes from that year record a single "
    "sentence about the decision to build the tower: that no ship should again be lost for want of a light."
)


def prompts(name, tok):
    if name == "smollm2":
        qs = ["What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.",
              "List three primary colors.", "How many legs does a spider have?", "Translate 'thank you' to Spanish.",
              "What is 12 times 7?", "Give me a tip for learning to code."]
        texts = ["<|im_start|>user\n" + q + "<|im_end|>\n<|im_start|>assistant\n" for q in qs]
    else:
        texts = ["The capital of France is", "Once upon a time, in a small village,", "def fibonacci(n):\n",
                 "The three primary colors are", "Water boils at a temperature of", "My favourite book is",
                 "In 1492, Columbus", "The best way to learn a language is"]
    return [tok(t) for t in texts]


def dequantized_copy(path, out):
    """The GGUF at path with every tensor turned into F32 by gguf.quants.dequantize."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(out, arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            w.add_file_type(gguf.LlamaFileType.ALL_F32)
            continue
        vtype = f.types[0]
        sub = f.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), vtype, sub_type=sub)
    for t in r.tensors:
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, x.reshape([int(d) for d in reversed(t.shape)]), raw_dtype=gguf.GGMLQuantizationType.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    args = sys.argv[1:]
    f32 = "--f32" in args
    long_text = "--long" in args
    args = [a for a in args if a not in ("--f32", "--long")]
    name, path = args[0], args[1]
    suffix = ("_long" if long_text else "") + ("_f32" if f32 else "")
    out = args[2] if len(args) > 2 else f"tests/data/ref_{name}{suffix}.txt"
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    tmp = tempfile.TemporaryDirectory()
    if f32:
        path = os.path.join(tmp.name, "f32.gguf")
        dequantized_copy(sys.argv[sys.argv.index(name) + 1], path)
    n_tf = 1536 if long_text else 512
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048 if long_text else 1024, n_batch=512, n_ubatch=512, n_threads=2, logits_all=True,
                          verbose=False, seed=1, flash_attn=False, type_k=llama_cpp.GGML_TYPE_F32,
                          type_v=llama_cpp.GGML_TYPE_F32)

    def tok(text):
        return llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    weights = "dequantized-f32" if f32 else "as-quantized"
    lines = ["kvz-ref 1", f"model {name} {sha} llama-cpp-python {llama_cpp.__version__} weights {weights}"]
    for t in [] if long_text else texts_for_tokenizer():
        lines.append("text " + t.encode("utf-8").hex())
        lines.append("ids " + " ".join(map(str, tok(t))))
    for p in [] if long_text else prompts(name, tok):
        llm.reset()
        llm.eval(p)
        gen, gaps = [], []
        for _ in range(32):
            logits = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            order = np.argsort(-logits, kind="stable")
            gen.append(int(order[0]))
            gaps.append(float(logits[order[0]] - logits[order[1]]))
            llm.eval([int(order[0])])
        lines.append("prompt " + " ".join(map(str, p)))
        lines.append("greedy " + " ".join(map(str, gen)))
        lines.append("gap " + " ".join(f"{g:.6g}" for g in gaps))
    text = TF_TEXT if not long_text else "\n\nThe same account, told again:\n\n".join([TF_TEXT] * 3)
    ids = tok(text)
    if len(ids) < n_tf:
        sys.exit(f"the teacher-forced text gives {len(ids)} tokens, fewer than {n_tf}")
    ids = ids[:n_tf]
    llm.reset()
    for a in range(0, n_tf, 512):
        llm.eval(ids[a:a + 512])
    lines.append("tf " + " ".join(map(str, ids)))
    for p in range(n_tf):
        x = np.asarray(llm.scores[p], dtype=np.float64)
        lp = x - (x.max() + np.log(np.exp(x - x.max()).sum()))
        top = np.argsort(-lp, kind="stable")[:20]
        lines.append(f"top {p} " + " ".join(f"{int(i)}:{lp[i]:.7g}" for i in top))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} lines")


if __name__ == "__main__":
    main()
