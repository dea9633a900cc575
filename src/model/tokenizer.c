/* The GGUF tokenizers: SentencePiece-style and byte-level BPE encoding with a heap of merges, the Llama-3 /
 * Qwen2 / GPT-2 pre-tokenizer regexes as hand-written matchers (Qwen2's after its NFC normalizer, in
 * unicode_nfc.c), and decoding. */
#include "model/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/grow.h"
#include "model/unicode_nfc.h"
#include "model/unicode_util.h"

/* GGUF token types (llama.cpp's numbering). 0 appears in some files and is treated as normal. */
enum { TT_UNDEF = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };
enum { MODEL_SPM, MODEL_BPE };
enum { PRE_LLAMA3, PRE_QWEN2, PRE_GPT2, PRE_SMOLLM };

/* Symbols are indexed by int32 and SPM triples the bytes of spaces ("▁"): texts this large are refused
 * rather than mis-indexed. */
#define MAX_TEXT ((size_t)1 << 29)

typedef struct merge_slot {
    int32_t a, b;      /* the pair (token ids); a == -1 marks an empty slot */
    int32_t rank, out; /* its position in the merge list and the merged token */
} merge_slot;

struct kvz_tokenizer {
    int model, pre;
    int ignore_merges; /* Llama-3: a pre-token that is a vocabulary entry is taken whole */
    int add_bos, add_space_prefix;
    int32_t bos, eos, unk, eot, eom;
    size_t n;    /* vocabulary size */
    char *arena; /* all token texts, back to back */
    size_t *off; /* text of id i: arena + off[i], len[i] bytes */
    uint32_t *len;
    float *score;  /* SPM merge priority */
    uint8_t *type; /* TT_* */
    int32_t *slot; /* text -> id, open addressing (-1 empty); first spelling wins */
    size_t slot_mask;
    merge_slot *mslot; /* (id, id) -> merge, open addressing */
    size_t mslot_mask;
    int32_t byte_id[256];  /* SPM: the <0xXX> token of each byte; BPE: the token of each byte's character */
    int16_t cp_byte[324];  /* BPE decode: byte-level character (code point < 324) -> byte, -1 if none */
    uint16_t byte_cp[256]; /* BPE: byte -> its byte-level character */
    /* A trie of the control and user-defined tokens' texts, node 0 the root: the scan at a text
       position walks it byte by byte, so it costs at most the longest special token's length
       whatever the number of special tokens sharing a prefix. */
    uint64_t *sp_edge;  /* (node << 8 | byte) + 1 of an edge, 0 empty; open addressing */
    uint32_t *sp_child; /* the child node of sp_edge[k] */
    size_t sp_edge_mask;
    int32_t (*sp_id)[2]; /* per node: the lowest id spelling it, the lowest user-defined one; -1 none */
    int32_t eog[16];
    size_t n_eog;
};

/* ---- Unicode: the classes the pre-tokenizer regexes use (UTF-8 decoding is in unicode_util.h) ------- */

/*
 * \p{L} and \p{N} as sorted, inclusive code-point ranges: every code point of General_Category L* (letters:
 * Lu Ll Lt Lm Lo) and N* (numbers: Nd Nl No) in Unicode 14.0, for all scripts and planes (Latin, Greek,
 * Cyrillic, Armenian, Hebrew, Arabic, the Indic and South-East Asian scripts, Georgian, Hangul, kana, CJK
 * including extensions B-G, fullwidth forms, mathematical alphanumerics, ...). Neighbouring ranges were joined
 * across unassigned code points to keep the table small, so a code point assigned after 14.0 inside such a
 * gap counts as a letter/number; any other code point not listed (marks, punctuation, symbols, later
 * additions) is "other", as are malformed bytes. Combining marks (Mn, Mc) are not letters, exactly as in the
 * regexes: "é" written as e + U+0301 splits after the e.
 * Generated with Python's unicodedata (unidata_version 14.0.0): for each prefix 'L' and 'N', the runs of
 * code points whose category starts with it, merged while the gap between two runs is all category 'Cn'.
 */
/* clang-format off */
static const uint32_t uc_letters[][2] = { /* 354 ranges */
    {0x41, 0x5A}, {0x61, 0x7A}, {0xAA, 0xAA}, {0xB5, 0xB5}, {0xBA, 0xBA}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x2C1},
    {0x2C6, 0x2D1}, {0x2E0, 0x2E4}, {0x2EC, 0x2EC}, {0x2EE, 0x2EE}, {0x370, 0x374}, {0x376, 0x37D}, {0x37F, 0x37F},
    {0x386, 0x386}, {0x388, 0x3F5}, {0x3F7, 0x481}, {0x48A, 0x559}, {0x560, 0x588}, {0x5D0, 0x5F2}, {0x620, 0x64A},
    {0x66E, 0x66F}, {0x671, 0x6D3}, {0x6D5, 0x6D5}, {0x6E5, 0x6E6}, {0x6EE, 0x6EF}, {0x6FA, 0x6FC}, {0x6FF, 0x6FF},
    {0x710, 0x710}, {0x712, 0x72F}, {0x74D, 0x7A5}, {0x7B1, 0x7B1}, {0x7CA, 0x7EA}, {0x7F4, 0x7F5}, {0x7FA, 0x7FA},
    {0x800, 0x815}, {0x81A, 0x81A}, {0x824, 0x824}, {0x828, 0x828}, {0x840, 0x858}, {0x860, 0x887}, {0x889, 0x88E},
    {0x8A0, 0x8C9}, {0x904, 0x939}, {0x93D, 0x93D}, {0x950, 0x950}, {0x958, 0x961}, {0x971, 0x980}, {0x985, 0x9B9},
    {0x9BD, 0x9BD}, {0x9CE, 0x9CE}, {0x9DC, 0x9E1}, {0x9F0, 0x9F1}, {0x9FC, 0x9FC}, {0xA05, 0xA39}, {0xA59, 0xA5E},
    {0xA72, 0xA74}, {0xA85, 0xAB9}, {0xABD, 0xABD}, {0xAD0, 0xAE1}, {0xAF9, 0xAF9}, {0xB05, 0xB39}, {0xB3D, 0xB3D},
    {0xB5C, 0xB61}, {0xB71, 0xB71}, {0xB83, 0xBB9}, {0xBD0, 0xBD0}, {0xC05, 0xC39}, {0xC3D, 0xC3D}, {0xC58, 0xC61},
    {0xC80, 0xC80}, {0xC85, 0xCB9}, {0xCBD, 0xCBD}, {0xCDD, 0xCE1}, {0xCF1, 0xCF2}, {0xD04, 0xD3A}, {0xD3D, 0xD3D},
    {0xD4E, 0xD4E}, {0xD54, 0xD56}, {0xD5F, 0xD61}, {0xD7A, 0xD7F}, {0xD85, 0xDC6}, {0xE01, 0xE30}, {0xE32, 0xE33},
    {0xE40, 0xE46}, {0xE81, 0xEB0}, {0xEB2, 0xEB3}, {0xEBD, 0xEC6}, {0xEDC, 0xF00}, {0xF40, 0xF6C}, {0xF88, 0xF8C},
    {0x1000, 0x102A}, {0x103F, 0x103F}, {0x1050, 0x1055}, {0x105A, 0x105D}, {0x1061, 0x1061}, {0x1065, 0x1066},
    {0x106E, 0x1070}, {0x1075, 0x1081}, {0x108E, 0x108E}, {0x10A0, 0x10FA}, {0x10FC, 0x135A}, {0x1380, 0x138F},
    {0x13A0, 0x13FD}, {0x1401, 0x166C}, {0x166F, 0x167F}, {0x1681, 0x169A}, {0x16A0, 0x16EA}, {0x16F1, 0x1711},
    {0x171F, 0x1731}, {0x1740, 0x1751}, {0x1760, 0x1770}, {0x1780, 0x17B3}, {0x17D7, 0x17D7}, {0x17DC, 0x17DC},
    {0x1820, 0x1884}, {0x1887, 0x18A8}, {0x18AA, 0x191E}, {0x1950, 0x19C9}, {0x1A00, 0x1A16}, {0x1A20, 0x1A54},
    {0x1AA7, 0x1AA7}, {0x1B05, 0x1B33}, {0x1B45, 0x1B4C}, {0x1B83, 0x1BA0}, {0x1BAE, 0x1BAF}, {0x1BBA, 0x1BE5},
    {0x1C00, 0x1C23}, {0x1C4D, 0x1C4F}, {0x1C5A, 0x1C7D}, {0x1C80, 0x1CBF}, {0x1CE9, 0x1CEC}, {0x1CEE, 0x1CF3},
    {0x1CF5, 0x1CF6}, {0x1CFA, 0x1DBF}, {0x1E00, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FCC}, {0x1FD0, 0x1FDB},
    {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FFC}, {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2102, 0x2102},
    {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149}, {0x214E, 0x214E},
    {0x2183, 0x2184}, {0x2C00, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0x2D00, 0x2D6F}, {0x2D80, 0x2DDE},
    {0x2E2F, 0x2E2F}, {0x3005, 0x3006}, {0x3031, 0x3035}, {0x303B, 0x303C}, {0x3041, 0x3096}, {0x309D, 0x309F},
    {0x30A1, 0x30FA}, {0x30FC, 0x318E}, {0x31A0, 0x31BF}, {0x31F0, 0x31FF}, {0x3400, 0x4DBF}, {0x4E00, 0xA48C},
    {0xA4D0, 0xA4FD}, {0xA500, 0xA60C}, {0xA610, 0xA61F}, {0xA62A, 0xA66E}, {0xA67F, 0xA69D}, {0xA6A0, 0xA6E5},
    {0xA717, 0xA71F}, {0xA722, 0xA788}, {0xA78B, 0xA801}, {0xA803, 0xA805}, {0xA807, 0xA80A}, {0xA80C, 0xA822},
    {0xA840, 0xA873}, {0xA882, 0xA8B3}, {0xA8F2, 0xA8F7}, {0xA8FB, 0xA8FB}, {0xA8FD, 0xA8FE}, {0xA90A, 0xA925},
    {0xA930, 0xA946}, {0xA960, 0xA97C}, {0xA984, 0xA9B2}, {0xA9CF, 0xA9CF}, {0xA9E0, 0xA9E4}, {0xA9E6, 0xA9EF},
    {0xA9FA, 0xAA28}, {0xAA40, 0xAA42}, {0xAA44, 0xAA4B}, {0xAA60, 0xAA76}, {0xAA7A, 0xAA7A}, {0xAA7E, 0xAAAF},
    {0xAAB1, 0xAAB1}, {0xAAB5, 0xAAB6}, {0xAAB9, 0xAABD}, {0xAAC0, 0xAAC0}, {0xAAC2, 0xAADD}, {0xAAE0, 0xAAEA},
    {0xAAF2, 0xAAF4}, {0xAB01, 0xAB5A}, {0xAB5C, 0xAB69}, {0xAB70, 0xABE2}, {0xAC00, 0xD7FB}, {0xF900, 0xFB1D},
    {0xFB1F, 0xFB28}, {0xFB2A, 0xFBB1}, {0xFBD3, 0xFD3D}, {0xFD50, 0xFDC7}, {0xFDF0, 0xFDFB}, {0xFE70, 0xFEFC},
    {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0xFF66, 0xFFDC}, {0x10000, 0x100FA}, {0x10280, 0x102D0},
    {0x10300, 0x1031F}, {0x1032D, 0x10340}, {0x10342, 0x10349}, {0x10350, 0x10375}, {0x10380, 0x1039D},
    {0x103A0, 0x103CF}, {0x10400, 0x1049D}, {0x104B0, 0x10563}, {0x10570, 0x10855}, {0x10860, 0x10876},
    {0x10880, 0x1089E}, {0x108E0, 0x108F5}, {0x10900, 0x10915}, {0x10920, 0x10939}, {0x10980, 0x109B7},
    {0x109BE, 0x109BF}, {0x10A00, 0x10A00}, {0x10A10, 0x10A35}, {0x10A60, 0x10A7C}, {0x10A80, 0x10A9C},
    {0x10AC0, 0x10AC7}, {0x10AC9, 0x10AE4}, {0x10B00, 0x10B35}, {0x10B40, 0x10B55}, {0x10B60, 0x10B72},
    {0x10B80, 0x10B91}, {0x10C00, 0x10CF2}, {0x10D00, 0x10D23}, {0x10E80, 0x10EA9}, {0x10EB0, 0x10F1C},
    {0x10F27, 0x10F45}, {0x10F70, 0x10F81}, {0x10FB0, 0x10FC4}, {0x10FE0, 0x10FF6}, {0x11003, 0x11037},
    {0x11071, 0x11072}, {0x11075, 0x11075}, {0x11083, 0x110AF}, {0x110D0, 0x110E8}, {0x11103, 0x11126},
    {0x11144, 0x11144}, {0x11147, 0x11172}, {0x11176, 0x11176}, {0x11183, 0x111B2}, {0x111C1, 0x111C4},
    {0x111DA, 0x111DA}, {0x111DC, 0x111DC}, {0x11200, 0x1122B}, {0x11280, 0x112A8}, {0x112B0, 0x112DE},
    {0x11305, 0x11339}, {0x1133D, 0x1133D}, {0x11350, 0x11350}, {0x1135D, 0x11361}, {0x11400, 0x11434},
    {0x11447, 0x1144A}, {0x1145F, 0x114AF}, {0x114C4, 0x114C5}, {0x114C7, 0x114C7}, {0x11580, 0x115AE},
    {0x115D8, 0x115DB}, {0x11600, 0x1162F}, {0x11644, 0x11644}, {0x11680, 0x116AA}, {0x116B8, 0x116B8},
    {0x11700, 0x1171A}, {0x11740, 0x1182B}, {0x118A0, 0x118DF}, {0x118FF, 0x1192F}, {0x1193F, 0x1193F},
    {0x11941, 0x11941}, {0x119A0, 0x119D0}, {0x119E1, 0x119E1}, {0x119E3, 0x119E3}, {0x11A00, 0x11A00},
    {0x11A0B, 0x11A32}, {0x11A3A, 0x11A3A}, {0x11A50, 0x11A50}, {0x11A5C, 0x11A89}, {0x11A9D, 0x11A9D},
    {0x11AB0, 0x11C2E}, {0x11C40, 0x11C40}, {0x11C72, 0x11C8F}, {0x11D00, 0x11D30}, {0x11D46, 0x11D46},
    {0x11D60, 0x11D89}, {0x11D98, 0x11D98}, {0x11EE0, 0x11EF2}, {0x11FB0, 0x11FB0}, {0x12000, 0x12399},
    {0x12480, 0x12FF0}, {0x13000, 0x1342E}, {0x14400, 0x16A5E}, {0x16A70, 0x16ABE}, {0x16AD0, 0x16AED},
    {0x16B00, 0x16B2F}, {0x16B40, 0x16B43}, {0x16B63, 0x16E7F}, {0x16F00, 0x16F4A}, {0x16F50, 0x16F50},
    {0x16F93, 0x16FE1}, {0x16FE3, 0x16FE3}, {0x17000, 0x1BC99}, {0x1D400, 0x1D6C0}, {0x1D6C2, 0x1D6DA},
    {0x1D6DC, 0x1D6FA}, {0x1D6FC, 0x1D714}, {0x1D716, 0x1D734}, {0x1D736, 0x1D74E}, {0x1D750, 0x1D76E},
    {0x1D770, 0x1D788}, {0x1D78A, 0x1D7A8}, {0x1D7AA, 0x1D7C2}, {0x1D7C4, 0x1D7CB}, {0x1DF00, 0x1DF1E},
    {0x1E100, 0x1E12C}, {0x1E137, 0x1E13D}, {0x1E14E, 0x1E14E}, {0x1E290, 0x1E2AD}, {0x1E2C0, 0x1E2EB},
    {0x1E7E0, 0x1E8C4}, {0x1E900, 0x1E943}, {0x1E94B, 0x1E94B}, {0x1EE00, 0x1EEBB}, {0x20000, 0x3134A},
};
static const uint32_t uc_numbers[][2] = { /* 128 ranges */
    {0x30, 0x39}, {0xB2, 0xB3}, {0xB9, 0xB9}, {0xBC, 0xBE}, {0x660, 0x669}, {0x6F0, 0x6F9}, {0x7C0, 0x7C9},
    {0x966, 0x96F}, {0x9E6, 0x9EF}, {0x9F4, 0x9F9}, {0xA66, 0xA6F}, {0xAE6, 0xAEF}, {0xB66, 0xB6F}, {0xB72, 0xB77},
    {0xBE6, 0xBF2}, {0xC66, 0xC6F}, {0xC78, 0xC7E}, {0xCE6, 0xCEF}, {0xD58, 0xD5E}, {0xD66, 0xD78}, {0xDE6, 0xDEF},
    {0xE50, 0xE59}, {0xED0, 0xED9}, {0xF20, 0xF33}, {0x1040, 0x1049}, {0x1090, 0x1099}, {0x1369, 0x137C},
    {0x16EE, 0x16F0}, {0x17E0, 0x17F9}, {0x1810, 0x1819}, {0x1946, 0x194F}, {0x19D0, 0x19DA}, {0x1A80, 0x1A99},
    {0x1B50, 0x1B59}, {0x1BB0, 0x1BB9}, {0x1C40, 0x1C49}, {0x1C50, 0x1C59}, {0x2070, 0x2070}, {0x2074, 0x2079},
    {0x2080, 0x2089}, {0x2150, 0x2182}, {0x2185, 0x2189}, {0x2460, 0x249B}, {0x24EA, 0x24FF}, {0x2776, 0x2793},
    {0x2CFD, 0x2CFD}, {0x3007, 0x3007}, {0x3021, 0x3029}, {0x3038, 0x303A}, {0x3192, 0x3195}, {0x3220, 0x3229},
    {0x3248, 0x324F}, {0x3251, 0x325F}, {0x3280, 0x3289}, {0x32B1, 0x32BF}, {0xA620, 0xA629}, {0xA6E6, 0xA6EF},
    {0xA830, 0xA835}, {0xA8D0, 0xA8D9}, {0xA900, 0xA909}, {0xA9D0, 0xA9D9}, {0xA9F0, 0xA9F9}, {0xAA50, 0xAA59},
    {0xABF0, 0xABF9}, {0xFF10, 0xFF19}, {0x10107, 0x10133}, {0x10140, 0x10178}, {0x1018A, 0x1018B},
    {0x102E1, 0x102FB}, {0x10320, 0x10323}, {0x10341, 0x10341}, {0x1034A, 0x1034A}, {0x103D1, 0x103D5},
    {0x104A0, 0x104A9}, {0x10858, 0x1085F}, {0x10879, 0x1087F}, {0x108A7, 0x108AF}, {0x108FB, 0x108FF},
    {0x10916, 0x1091B}, {0x109BC, 0x109BD}, {0x109C0, 0x109FF}, {0x10A40, 0x10A48}, {0x10A7D, 0x10A7E},
    {0x10A9D, 0x10A9F}, {0x10AEB, 0x10AEF}, {0x10B58, 0x10B5F}, {0x10B78, 0x10B7F}, {0x10BA9, 0x10BAF},
    {0x10CFA, 0x10CFF}, {0x10D30, 0x10E7E}, {0x10F1D, 0x10F26}, {0x10F51, 0x10F54}, {0x10FC5, 0x10FCB},
    {0x11052, 0x1106F}, {0x110F0, 0x110F9}, {0x11136, 0x1113F}, {0x111D0, 0x111D9}, {0x111E1, 0x111F4},
    {0x112F0, 0x112F9}, {0x11450, 0x11459}, {0x114D0, 0x114D9}, {0x11650, 0x11659}, {0x116C0, 0x116C9},
    {0x11730, 0x1173B}, {0x118E0, 0x118F2}, {0x11950, 0x11959}, {0x11C50, 0x11C6C}, {0x11D50, 0x11D59},
    {0x11DA0, 0x11DA9}, {0x11FC0, 0x11FD4}, {0x12400, 0x1246E}, {0x16A60, 0x16A69}, {0x16AC0, 0x16AC9},
    {0x16B50, 0x16B61}, {0x16E80, 0x16E96}, {0x1D2E0, 0x1D2F3}, {0x1D360, 0x1D378}, {0x1D7CE, 0x1D7FF},
    {0x1E140, 0x1E149}, {0x1E2F0, 0x1E2F9}, {0x1E8C7, 0x1E8CF}, {0x1E950, 0x1E959}, {0x1EC71, 0x1ECAB},
    {0x1ECAD, 0x1ECAF}, {0x1ECB1, 0x1ED2D}, {0x1ED2F, 0x1ED3D}, {0x1F100, 0x1F10C}, {0x1FBF0, 0x1FBF9},
};
/* clang-format on */

enum { CC_OTHER, CC_LETTER, CC_NUMBER, CC_SPACE };

static int in_ranges(uint32_t c, const uint32_t (*r)[2], size_t n)
{
    return kvz_row_of(r[0], n, 2, 1, c) != NULL;
}

/* \s: the White_Space property. */
static int is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static int cp_class(uint32_t c)
{
    if (c < 0x80) { /* the common case without a search */
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            return CC_LETTER;
        if (c >= '0' && c <= '9')
            return CC_NUMBER;
        return is_space(c) ? CC_SPACE : CC_OTHER;
    }
    if (is_space(c))
        return CC_SPACE;
    if (in_ranges(c, uc_letters, KVZ_N_ROWS(uc_letters)))
        return CC_LETTER;
    if (in_ranges(c, uc_numbers, KVZ_N_ROWS(uc_numbers)))
        return CC_NUMBER;
    return CC_OTHER;
}

/* Class of the character at s[i] (-1 at the end) and its length. */
static int class_at(const unsigned char *s, size_t n, size_t i, size_t *l)
{
    if (i >= n) {
        *l = 0;
        return -1;
    }
    return cp_class(kvz_utf8_at(s, n, i, l));
}

/* End of the run of class cc starting at i. */
static size_t run_of(const unsigned char *s, size_t n, size_t i, int cc)
{
    size_t l;
    while (i < n && class_at(s, n, i, &l) == cc)
        i += l;
    return i;
}

/* ---- Pre-tokenizers: the regexes as matchers --------------------------------------------------------
 * Each returns the length (>= 1) of the match at i (< n) that the regex's leftmost-first alternation with
 * backtracking would give; every character belongs to one class, so some alternative always matches.
 * Llama-3 (Qwen2 has \p{N} in place of \p{N}{1,3}):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+
 *   |\s+(?!\S)|\s+
 * GPT-2:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The case-insensitive contractions fold ASCII letters only. */

static size_t contraction(const unsigned char *s, size_t n, size_t i, int fold)
{
    if (s[i] != '\'' || i + 1 >= n)
        return 0;
    const unsigned a = fold ? (unsigned)(s[i + 1] | 0x20) : s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 < n) {
        const unsigned b = fold ? (unsigned)(s[i + 2] | 0x20) : s[i + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
    }
    return 0;
}

/* \s+(?!\S)|\s+ at a whitespace character: the run, less its last character when a non-space follows and
 * the run has two or more characters (that character then leads the next pre-token). */
static size_t space_tail(const unsigned char *s, size_t n, size_t i)
{
    size_t j = i, last = i, l;
    while (j < n && class_at(s, n, j, &l) == CC_SPACE)
        last = j, j += l;
    if (j == n || last == i)
        return j - i;
    return last - i;
}

static size_t match_llama3(const unsigned char *s, size_t n, size_t i, size_t max_digits)
{
    size_t l0, l1, m;
    const uint32_t c0 = kvz_utf8_at(s, n, i, &l0);
    const int k0 = cp_class(c0);
    if ((m = contraction(s, n, i, 1)))
        return m;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (k0 == CC_LETTER)
        return run_of(s, n, i, CC_LETTER) - i;
    if (c0 != '\r' && c0 != '\n' && k0 != CC_NUMBER && class_at(s, n, i + l0, &l1) == CC_LETTER)
        return run_of(s, n, i + l0, CC_LETTER) - i;
    /* \p{N}{1,max_digits} */
    if (k0 == CC_NUMBER) {
        size_t j = i, k = 0;
        while (k < max_digits && class_at(s, n, j, &l1) == CC_NUMBER)
            j += l1, k++;
        return j - i;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = i;
    if (c0 == ' ' && class_at(s, n, i + 1, &l1) == CC_OTHER)
        j = i + 1;
    if (class_at(s, n, j, &l1) == CC_OTHER) {
        j = run_of(s, n, j, CC_OTHER);
        while (j < n && (s[j] == '\r' || s[j] == '\n'))
            j++;
        return j - i;
    }
    /* \s*[\r\n]+ : up to the last \r or \n of the whitespace run (none: the next alternatives) */
    size_t end = i, nl = 0;
    while (end < n && class_at(s, n, end, &l1) == CC_SPACE) {
        if (s[end] == '\r' || s[end] == '\n')
            nl = end + 1;
        end += l1;
    }
    if (nl)
        return nl - i;
    return space_tail(s, n, i);
}

static size_t match_gpt2(const unsigned char *s, size_t n, size_t i)
{
    size_t l0, l1, m;
    const uint32_t c0 = kvz_utf8_at(s, n, i, &l0);
    const int k0 = cp_class(c0);
    if ((m = contraction(s, n, i, 0)))
        return m;
    if (k0 == CC_SPACE && c0 == ' ') {
        const int k1 = class_at(s, n, i + 1, &l1);
        if (k1 == CC_LETTER || k1 == CC_NUMBER || k1 == CC_OTHER) /*  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ */
            return run_of(s, n, i + 1, k1) - i;
    }
    if (k0 != CC_SPACE)
        return run_of(s, n, i, k0) - i;
    return space_tail(s, n, i);
}

/* Length of the pre-token at i in s[0..n). *digit_at: SmolLM's cache of where the next digit at or after i
 * is (n when none); the caller starts it at 0 and keeps it across the calls of one text, so that a text
 * without digits is scanned for them once rather than once per pre-token (which made encoding quadratic:
 * 10 s for 32K tokens of prose). */
static size_t pre_next(int pre, const unsigned char *s, size_t n, size_t i, size_t *digit_at)
{
    switch (pre) {
    case PRE_LLAMA3: return match_llama3(s, n, i, 3);
    case PRE_QWEN2: return match_llama3(s, n, i, 1);
    case PRE_GPT2: return match_gpt2(s, n, i);
    default: { /* SmolLM: every digit is split off first; the GPT-2 regex runs on what lies between */
        size_t l, j = i;
        if (class_at(s, n, i, &l) == CC_NUMBER)
            return l;
        if (*digit_at <= i) { /* no digit lies in [i, *digit_at) otherwise: the cache still holds */
            while (j < n && class_at(s, n, j, &l) != CC_NUMBER)
                j += l;
            *digit_at = j;
        }
        return match_gpt2(s, *digit_at, i);
    }
    }
}

/* ---- vocabulary lookups ------------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ^ h >> 29;
}

static int32_t lookup(const kvz_tokenizer *t, const char *p, size_t n)
{
    for (size_t h = hash_bytes(p, n) & t->slot_mask;; h = (h + 1) & t->slot_mask) {
        const int32_t id = t->slot[h];
        if (id < 0)
            return -1;
        if (t->len[id] == n && !memcmp(t->arena + t->off[id], p, n))
            return id;
    }
}

static size_t pair_hash(int32_t a, int32_t b)
{
    uint64_t x = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    x ^= x >> 31, x *= 0x9E3779B97F4A7C15ull, x ^= x >> 29;
    return (size_t)x;
}

static const merge_slot *merge_find(const kvz_tokenizer *t, int32_t a, int32_t b)
{
    if (!t->mslot)
        return NULL;
    for (size_t h = pair_hash(a, b) & t->mslot_mask;; h = (h + 1) & t->mslot_mask) {
        const merge_slot *m = &t->mslot[h];
        if (m->a < 0)
            return NULL;
        if (m->a == a && m->b == b)
            return m;
    }
}

/* Pieces SPM may build from characters: not control, unknown, unused or byte tokens. */
static int spm_mergeable(const kvz_tokenizer *t, int32_t id)
{
    return id >= 0 && (t->type[id] == TT_NORMAL || t->type[id] == TT_UNDEF || t->type[id] == TT_USER);
}

/* ---- the merge engine ---------------------------------------------------------------------------
 * Both models merge adjacent symbols of a doubly linked list, best candidate first, ties to the leftmost,
 * as SentencePiece and Hugging Face's BPE do. Every candidate pair sits in a binary heap; a merge makes at
 * most two new candidates, and a popped candidate whose pair changed since it was pushed is dropped. The
 * left symbol is enough to tell: a symbol only grows (by absorbing its right neighbour, which it keeps as
 * `next` until then), so while left.n is unchanged left.next is still the right symbol, and left.n +
 * next.n equals the recorded size exactly when neither side has merged since (a zeroed left fails too).
 * With n symbols there are at most 3n pushes, so a text costs O(n log n) and is never rescanned. */

typedef struct sym {
    int32_t prev, next;
    uint32_t start, n; /* bytes of the (escaped) text */
    int32_t id;        /* BPE: current token */
} sym;

typedef struct cand { /* 16 bytes: the heap can hold ~3 entries per byte of text */
    float pri;        /* smaller first: -score (SPM) or the merge rank (BPE; exact below 2^24) */
    int32_t left, out;
    uint32_t size;
} cand;

typedef struct work {
    sym *syms;
    size_t syms_cap;
    cand *heap;
    size_t heap_n, heap_cap;
    char *buf;
    size_t buf_cap;
    kvz_nfc_buf nfc; /* Qwen2: the NFC form of the text */
} work;

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static kvz_status push_id(ivec *o, int32_t id)
{
    if (!kvz_grow((void **)&o->v, &o->cap, o->n + 1, sizeof *o->v))
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the token ids");
    o->v[o->n++] = id;
    return KVZ_OK;
}

static int cand_before(const cand *x, const cand *y)
{
    return x->pri < y->pri || (x->pri == y->pri && x->left < y->left);
}

static int heap_push(work *w, cand c)
{
    if (!kvz_grow((void **)&w->heap, &w->heap_cap, w->heap_n + 1, sizeof *w->heap))
        return 0;
    size_t i = w->heap_n++;
    while (i > 0) {
        const size_t p = (i - 1) / 2;
        if (!cand_before(&c, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    return 1;
}

static cand heap_pop(work *w)
{
    const cand top = w->heap[0];
    const cand last = w->heap[--w->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->heap_n)
            break;
        if (c + 1 < w->heap_n && cand_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!cand_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->heap_n)
        w->heap[i] = last;
    return top;
}

/* The candidate merge of symbols l and r (adjacent), if the vocabulary has one. */
static int try_pair(const kvz_tokenizer *t, work *w, const char *text, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 1;
    const sym *a = &w->syms[l], *b = &w->syms[r];
    cand c = {0, l, -1, a->n + b->n};
    if (t->model == MODEL_SPM) {
        const int32_t id = lookup(t, text + a->start, c.size);
        if (!spm_mergeable(t, id))
            return 1;
        c.pri = -t->score[id], c.out = id;
    } else {
        if (a->id < 0 || b->id < 0)
            return 1;
        const merge_slot *m = merge_find(t, a->id, b->id);
        if (!m)
            return 1;
        c.pri = (float)m->rank, c.out = m->out;
    }
    return heap_push(w, c);
}

/* Merges w->syms[0..ns) of text until no candidate is left. */
static kvz_status merge_all(const kvz_tokenizer *t, work *w, const char *text, size_t ns)
{
    w->heap_n = 0;
    for (size_t i = 1; i < ns; i++)
        if (!try_pair(t, w, text, (int32_t)i - 1, (int32_t)i))
            return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the merge heap");
    while (w->heap_n) {
        const cand c = heap_pop(w);
        sym *a = &w->syms[c.left];
        if (a->n == 0 || a->next < 0 || a->n + w->syms[a->next].n != c.size)
            continue; /* stale: one side has merged since */
        sym *b = &w->syms[a->next];
        a->n += b->n, a->id = c.out, b->n = 0;
        a->next = b->next;
        if (b->next >= 0)
            w->syms[b->next].prev = c.left;
        if (!try_pair(t, w, text, a->prev, c.left) || !try_pair(t, w, text, c.left, a->next))
            return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the merge heap");
    }
    return KVZ_OK;
}

/* A byte no token spells: the unknown token, or a refusal rather than a silent loss of text. */
static kvz_status byte_fallback(const kvz_tokenizer *t, unsigned char byte, ivec *o)
{
    if (t->byte_id[byte] >= 0)
        return push_id(o, t->byte_id[byte]);
    if (t->unk >= 0)
        return push_id(o, t->unk);
    return kvz_fail(KVZ_ERR_UNSUPPORTED,
                    "tokenizer: byte 0x%02X has no token and the vocabulary has no unknown token", byte);
}

/* SPM on one stretch of ordinary text: spaces become "▁" (and one more in front when prefix), symbols start
 * as UTF-8 characters, merges follow the piece scores, leftover characters fall back to <0xXX> bytes (or one
 * <unk> per character when the vocabulary lacks those byte pieces, as SentencePiece does). */
static kvz_status spm_text(const kvz_tokenizer *t, work *w, const char *s, size_t n, int prefix, ivec *o)
{
    static const char sep[3] = {'\xE2', '\x96', '\x81'}; /* U+2581 */
    if (!kvz_grow((void **)&w->buf, &w->buf_cap, 3 * n + 3, 1))
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the text");
    size_t m = 0;
    if (prefix)
        memcpy(w->buf, sep, 3), m = 3;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ')
            memcpy(w->buf + m, sep, 3), m += 3;
        else
            w->buf[m++] = s[i];
    if (!kvz_grow((void **)&w->syms, &w->syms_cap, m, sizeof *w->syms))
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the symbols");
    const unsigned char *u = (const unsigned char *)w->buf;
    size_t ns = 0;
    for (size_t i = 0, l; i < m; i += l) {
        kvz_utf8_at(u, m, i, &l);
        w->syms[ns] = (sym){(int32_t)ns - 1, (int32_t)ns + 1, (uint32_t)i, (uint32_t)l, -1};
        ns++;
    }
    if (!ns)
        return KVZ_OK;
    w->syms[ns - 1].next = -1;
    kvz_status st = merge_all(t, w, w->buf, ns);
    for (int32_t i = 0; st == KVZ_OK && i >= 0; i = w->syms[i].next) {
        const sym *x = &w->syms[i];
        const int32_t id = lookup(t, w->buf + x->start, x->n);
        int bytes = 1; /* only characters stay unmerged; spell one by its byte pieces, or <unk> for it whole */
        for (uint32_t k = 0; k < x->n; k++)
            bytes &= t->byte_id[u[x->start + k]] >= 0;
        if (spm_mergeable(t, id))
            st = push_id(o, id);
        else if (!bytes && t->unk >= 0)
            st = push_id(o, t->unk);
        else
            for (uint32_t k = 0; k < x->n && st == KVZ_OK; k++)
                st = byte_fallback(t, u[x->start + k], o);
    }
    return st;
}

/* BPE on one pre-token: a symbol per byte (its byte-level character's token), merges by rank. */
static kvz_status bpe_word(const kvz_tokenizer *t, work *w, const unsigned char *s, size_t n, ivec *o)
{
    if (t->ignore_merges && n > 1) {
        if (!kvz_grow((void **)&w->buf, &w->buf_cap, 2 * n, 1))
            return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the text");
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += kvz_utf8_put(t->byte_cp[s[i]], w->buf + m);
        const int32_t id = lookup(t, w->buf, m);
        if (id >= 0)
            return push_id(o, id);
    }
    if (!kvz_grow((void **)&w->syms, &w->syms_cap, n, sizeof *w->syms))
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the symbols");
    for (size_t i = 0; i < n; i++)
        w->syms[i] = (sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1, t->byte_id[s[i]]};
    kvz_status st = merge_all(t, w, (const char *)s, n);
    for (int32_t i = 0; st == KVZ_OK && i >= 0; i = w->syms[i].next) {
        const sym *x = &w->syms[i];
        st = x->id >= 0 ? push_id(o, x->id) : byte_fallback(t, s[x->start], o);
    }
    return st;
}

/* Qwen2's tokenizer.json (Qwen2, Qwen2.5, Qwen3) puts each stretch of text between special tokens in
 * Normalization Form C before its pre-tokenizer regex, so "e" + U+0301 is read as "é" and gets é's token; GGUF
 * files do not record the normalizer (llama.cpp applies none), so the pre-tokenizer name selects it (qwen2, and
 * deepseek-r1-qwen, the R1 distillations of Qwen2.5, which llama.cpp treats as qwen2 as this file does). */
static kvz_status bpe_text(const kvz_tokenizer *t, work *w, const char *text, size_t n, ivec *o)
{
    kvz_status st = KVZ_OK;
    if (t->pre == PRE_QWEN2 && (st = kvz_nfc_normalize(&w->nfc, text, n, &text, &n)) != KVZ_OK)
        return st;
    const unsigned char *s = (const unsigned char *)text;
    size_t digit_at = 0;
    for (size_t i = 0; i < n && st == KVZ_OK;) {
        const size_t l = pre_next(t->pre, s, n, i, &digit_at);
        st = bpe_word(t, w, s + i, l, o);
        i += l;
    }
    return st;
}

/* The slot of the edge key ((node << 8 | byte) + 1) in the trie's table: where it is, or the
 * empty slot where it would go. */
static size_t sp_slot(const kvz_tokenizer *t, uint64_t key)
{
    uint64_t x = key;
    x ^= x >> 31, x *= 0x9E3779B97F4A7C15ull, x ^= x >> 29;
    size_t k = (size_t)x & t->sp_edge_mask;
    while (t->sp_edge[k] && t->sp_edge[k] != key)
        k = (k + 1) & t->sp_edge_mask;
    return k;
}

/* The child of node along byte c, 0 when there is none (the root is nobody's child). */
static uint32_t sp_next(const kvz_tokenizer *t, uint32_t node, unsigned char c)
{
    const size_t k = sp_slot(t, ((uint64_t)node << 8 | c) + 1);
    return t->sp_edge[k] ? t->sp_child[k] : 0;
}

/* ---- encode ------------------------------------------------------------------------------------ */

kvz_status kvz_tokenizer_encode(const kvz_tokenizer *t, const char *text, size_t len, int add_bos,
                                int parse_special, int32_t **ids, size_t *n_ids)
{
    return kvz_tokenizer_encode_counted(t, text, len, add_bos, parse_special, ids, n_ids, NULL);
}

kvz_status kvz_tokenizer_encode_counted(const kvz_tokenizer *t, const char *text, size_t len, int add_bos,
                                        int parse_special, int32_t **ids, size_t *n_ids, size_t *scan_steps)
{
    if (!t || !ids || !n_ids || (!text && len))
        return kvz_fail(KVZ_ERR_NULL, "tokenizer: encode needs a tokenizer, text and outputs");
    *ids = NULL, *n_ids = 0;
    if (len >= MAX_TEXT)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "tokenizer: %zu bytes of text is too much for one call", len);
    ivec o = {NULL, 0, 0};
    work w = {0};
    kvz_status st = KVZ_OK;
    if (!kvz_grow((void **)&o.v, &o.cap, len / 3 + 16, sizeof *o.v))
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the token ids");
    if (add_bos && t->add_bos && t->bos >= 0)
        st = push_id(&o, t->bos);
    const unsigned char *s = (const unsigned char *)text;
    size_t raw = 0; /* start of the ordinary text not yet encoded */
    int first = 1;
    for (size_t i = 0; st == KVZ_OK && i <= len;) {
        int32_t hit = -1;
        /* the deepest node on the walk that a wanted token spells: the longest match, the lowest
           id among equal spellings */
        size_t j = i;
        for (uint32_t node = 0; j < len && (node = sp_next(t, node, s[j])) != 0; j++)
            if (t->sp_id[node][!parse_special] >= 0)
                hit = t->sp_id[node][!parse_special];
        if (scan_steps)
            *scan_steps += j - i + (j < len);
        if (hit < 0 && i < len) {
            i++;
            continue;
        }
        if (i > raw) {
            st = t->model == MODEL_SPM ? spm_text(t, &w, text + raw, i - raw, first && t->add_space_prefix, &o)
                                       : bpe_text(t, &w, text + raw, i - raw, &o);
            first = 0;
        }
        if (hit < 0)
            break;
        if (st == KVZ_OK)
            st = push_id(&o, hit);
        i += t->len[hit];
        raw = i;
    }
    free(w.syms), free(w.heap), free(w.buf);
    kvz_nfc_buf_free(&w.nfc);
    if (st != KVZ_OK) {
        free(o.v);
        return st;
    }
    *ids = o.v, *n_ids = o.n;
    return KVZ_OK;
}

/* ---- decode ------------------------------------------------------------------------------------ */

/* The bytes of one token into d (NULL: only counted); returns their number. */
static size_t render(const kvz_tokenizer *t, int32_t id, int special, char *d)
{
    if (id < 0 || (size_t)id >= t->n)
        return 0;
    const unsigned ty = t->type[id];
    const char *p = t->arena + t->off[id];
    const size_t n = t->len[id];
    if (ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_UNUSED || ty == TT_USER) {
        if (!special && ty != TT_USER)
            return 0;
        if (d)
            memcpy(d, p, n);
        return n;
    }
    size_t m = 0;
    if (t->model == MODEL_SPM) {
        if (ty == TT_BYTE) {
            unsigned v = 0; /* <0xXX>, as checked when the table was built */
            for (size_t i = 3; i < 5 && n == 6; i++)
                v = v << 4 | (unsigned)(p[i] <= '9' ? p[i] - '0' : p[i] - 'A' + 10);
            if (n != 6 || t->byte_id[v & 0xFF] != id)
                return 0; /* a byte-typed token that does not spell a byte */
            if (d)
                d[0] = (char)v;
            return 1;
        }
        for (size_t i = 0; i < n;) {
            if (n - i >= 3 && !memcmp(p + i, "\xE2\x96\x81", 3)) {
                if (d)
                    d[m] = ' ';
                m++, i += 3;
            } else {
                if (d)
                    d[m] = p[i];
                m++, i++;
            }
        }
        return m;
    }
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0, l; i < n; i += l) {
        const uint32_t c = kvz_utf8_at(u, n, i, &l);
        if (c < 324 && t->cp_byte[c] >= 0) {
            if (d)
                d[m] = (char)t->cp_byte[c];
            m++;
        } else { /* not a byte-level character: kept as written */
            if (d)
                memcpy(d + m, p + i, l);
            m += l;
        }
    }
    return m;
}

size_t kvz_tokenizer_piece(const kvz_tokenizer *t, int32_t id, int render_special, char *buf, size_t size)
{
    if (!t)
        return 0;
    const size_t n = render(t, id, render_special, NULL);
    if (buf && n <= size) {
        render(t, id, render_special, buf);
        if (n < size)
            buf[n] = '\0';
    }
    return n;
}

kvz_status kvz_tokenizer_decode(const kvz_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                                char **text)
{
    const int special = !!(flags & KVZ_DECODE_SPECIAL);
    if (!t || !text || (!ids && n))
        return kvz_fail(KVZ_ERR_NULL, "tokenizer: decode needs a tokenizer, ids and an output");
    *text = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n)
            return kvz_fail(KVZ_ERR_INVALID_ARG, "tokenizer: id %d at %zu is outside the vocabulary of %zu",
                            (int)ids[i], i, t->n);
        total += render(t, ids[i], special, NULL);
    }
    char *out = malloc(total + 1);
    if (!out)
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for %zu bytes of text", total);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += render(t, ids[i], special, out + m);
    out[m] = '\0';
    /* pieces before the first non-empty one are empty, so that piece starts the text */
    if ((flags & KVZ_DECODE_START) && t->model == MODEL_SPM && t->add_space_prefix && m && out[0] == ' ')
        memmove(out, out + 1, m);
    *text = out;
    return KVZ_OK;
}

/* ---- queries ----------------------------------------------------------------------------------- */

size_t kvz_tokenizer_vocab(const kvz_tokenizer *t) { return t ? t->n : 0; }
int32_t kvz_tokenizer_bos(const kvz_tokenizer *t) { return t ? t->bos : -1; }
int32_t kvz_tokenizer_eos(const kvz_tokenizer *t) { return t ? t->eos : -1; }

int kvz_tokenizer_is_eog(const kvz_tokenizer *t, int32_t id)
{
    for (size_t i = 0; t && id >= 0 && i < t->n_eog; i++)
        if (t->eog[i] == id)
            return 1;
    return 0;
}

int32_t kvz_tokenizer_find(const kvz_tokenizer *t, const char *piece)
{
    return t && piece ? lookup(t, piece, strlen(piece)) : -1;
}

/* ---- loading ----------------------------------------------------------------------------------- */

static int key_is(kvz_gguf_str s, const char *z) { return strlen(z) == s.n && !memcmp(s.p, z, s.n); }

/* A token id: absent -> def; -1 or 0xFFFFFFFF (how converters write "none") -> -1; else within the vocabulary.
 */
static kvz_status meta_id(const kvz_gguf *g, const char *key, size_t n, int32_t def, int32_t *out)
{
    const kvz_gguf_kv *kv = kvz_gguf_find(g, key);
    int64_t v;
    *out = def;
    if (!kv)
        return KVZ_OK;
    if (kv->type == KVZ_GGUF_BOOL || !kvz_gguf_kv_int(kv, &v))
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: %s is not an integer", key);
    if (v == -1 || v == 0xFFFFFFFF) {
        *out = -1;
        return KVZ_OK;
    }
    if (v < 0 || (uint64_t)v >= n)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: %s = %lld is outside the vocabulary of %zu", key,
                        (long long)v, n);
    *out = (int32_t)v;
    return KVZ_OK;
}

static kvz_status meta_bool(const kvz_gguf *g, const char *key, int def, int *out)
{
    const kvz_gguf_kv *kv = kvz_gguf_find(g, key);
    int64_t v;
    *out = def;
    if (!kv)
        return KVZ_OK;
    if (!kvz_gguf_kv_int(kv, &v))
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: %s is not a boolean", key);
    *out = v != 0;
    return KVZ_OK;
}

/* The array under key with count n elements (absent -> NULL, KVZ_OK). */
static kvz_status meta_array(const kvz_gguf *g, const char *key, size_t n, const kvz_gguf_kv **out)
{
    const kvz_gguf_kv *kv = kvz_gguf_find(g, key);
    *out = NULL;
    if (!kv)
        return KVZ_OK;
    if (kv->type != KVZ_GGUF_ARRAY)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: %s is not an array", key);
    if (kv->count != n)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: %s has %llu entries for %zu tokens", key,
                        (unsigned long long)kv->count, n);
    *out = kv;
    return KVZ_OK;
}

static int name_in(kvz_gguf_str s, const char *const *names)
{
    for (; *names; names++)
        if (key_is(s, *names))
            return 1;
    return 0;
}

/* Builds the special-token trie: one node per distinct prefix, so at most the tokens' total
 * length plus the root. */
static kvz_status build_special_trie(kvz_tokenizer *t)
{
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->type[i] == TT_CONTROL || t->type[i] == TT_USER)
            total += t->len[i];
    if (total >= UINT32_MAX / 2)
        return kvz_fail(KVZ_ERR_UNSUPPORTED, "tokenizer: %zu bytes of special tokens", total);
    size_t cap = 16;
    while (cap < 2 * total + 2)
        cap *= 2;
    t->sp_edge_mask = cap - 1;
    t->sp_edge = calloc(cap, sizeof *t->sp_edge);
    t->sp_child = malloc(cap * sizeof *t->sp_child);
    t->sp_id = malloc((total + 1) * sizeof *t->sp_id);
    if (!t->sp_edge || !t->sp_child || !t->sp_id)
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the special tokens");
    t->sp_id[0][0] = t->sp_id[0][1] = -1;
    uint32_t nodes = 1;
    /* ids in increasing order, so the first id to reach a node is the lowest spelling it */
    for (size_t i = 0; i < t->n; i++) {
        if (t->type[i] != TT_CONTROL && t->type[i] != TT_USER)
            continue;
        uint32_t node = 0;
        for (uint32_t j = 0; j < t->len[i]; j++) {
            const uint64_t key = ((uint64_t)node << 8 | (unsigned char)t->arena[t->off[i] + j]) + 1;
            const size_t k = sp_slot(t, key);
            if (!t->sp_edge[k]) {
                t->sp_edge[k] = key, t->sp_child[k] = nodes;
                t->sp_id[nodes][0] = t->sp_id[nodes][1] = -1;
                nodes++;
            }
            node = t->sp_child[k];
        }
        if (node && t->sp_id[node][0] < 0)
            t->sp_id[node][0] = (int32_t)i;
        if (node && t->type[i] == TT_USER && t->sp_id[node][1] < 0)
            t->sp_id[node][1] = (int32_t)i;
    }
    return KVZ_OK;
}

static kvz_status load_merges(kvz_tokenizer *t, const kvz_gguf *g)
{
    const kvz_gguf_kv *kv = kvz_gguf_find(g, "tokenizer.ggml.merges");
    if (!kv)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: a gpt2 vocabulary needs tokenizer.ggml.merges");
    if (kv->type != KVZ_GGUF_ARRAY || kv->elem_type != KVZ_GGUF_STRING)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges is not a string array");
    if (kv->count > (1u << 24)) /* ranks are heap priorities in a float (real vocabularies have < 1M merges) */
        return kvz_fail(KVZ_ERR_UNSUPPORTED, "tokenizer: %llu merges (at most 2^24 are supported)",
                        (unsigned long long)kv->count);
    const size_t nm = (size_t)kv->count;
    size_t cap = 16;
    while (cap < 2 * nm)
        cap *= 2;
    kvz_gguf_str *m = malloc((nm ? nm : 1) * sizeof *m);
    t->mslot = malloc(cap * sizeof *t->mslot);
    char *joined = NULL;
    size_t joined_cap = 0;
    kvz_status st = KVZ_OK;
    if (!m || !t->mslot) {
        st = kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for %zu merges", nm);
        goto done;
    }
    t->mslot_mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        t->mslot[i].a = -1;
    if ((st = kvz_gguf_array_strings(kv, m)) != KVZ_OK)
        goto done;
    for (size_t i = 0; i < nm; i++) {
        const char *sp =
            m[i].n > 1 ? memchr(m[i].p + 1, ' ', m[i].n - 1) : NULL; /* the first part is never empty */
        if (!sp) {
            st = kvz_fail(KVZ_ERR_FORMAT, "tokenizer: merge %zu (\"%.*s\") has no space between its parts", i,
                          (int)(m[i].n < 64 ? m[i].n : 64), m[i].p);
            goto done;
        }
        const size_t la = (size_t)(sp - m[i].p), lb = m[i].n - la - 1;
        if (!kvz_grow((void **)&joined, &joined_cap, la + lb + 1, 1)) {
            st = kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for the merges");
            goto done;
        }
        memcpy(joined, m[i].p, la), memcpy(joined + la, sp + 1, lb);
        const int32_t a = lookup(t, m[i].p, la), b = lookup(t, sp + 1, lb), r = lookup(t, joined, la + lb);
        if (a < 0 || b < 0 || r < 0)
            continue; /* a merge the vocabulary cannot express can never apply */
        size_t h = pair_hash(a, b) & t->mslot_mask;
        while (t->mslot[h].a >= 0 && !(t->mslot[h].a == a && t->mslot[h].b == b))
            h = (h + 1) & t->mslot_mask;
        if (t->mslot[h].a < 0) /* a repeated pair keeps its first (best) rank */
            t->mslot[h] = (merge_slot){a, b, (int32_t)i, r};
    }
done:
    free(m), free(joined);
    return st;
}

static kvz_status load(kvz_tokenizer *t, const kvz_gguf *g)
{
    static const char *const llama3_names[] = {"llama-bpe", "llama3",    "llama-v3", "default",
                                               "falcon3",   "smaug-bpe", NULL};
    static const char *const qwen2_names[] = {"qwen2", "deepseek-r1-qwen", NULL};
    static const char *const eog_texts[] = {"<|eot_id|>",    "<|eom_id|>",    "<|im_end|>",
                                            "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>"};
    kvz_status st;
    kvz_gguf_str s;
    const kvz_gguf_kv *kv = kvz_gguf_find(g, "tokenizer.ggml.model");
    if (!kv || kv->type != KVZ_GGUF_STRING)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: tokenizer.ggml.model is %s",
                        kv ? "not a string" : "absent");
    kvz_gguf_get_str(g, "tokenizer.ggml.model", &s);
    if (key_is(s, "llama"))
        t->model = MODEL_SPM;
    else if (key_is(s, "gpt2"))
        t->model = MODEL_BPE;
    else
        return kvz_fail(KVZ_ERR_UNSUPPORTED, "tokenizer: model \"%.*s\" is not supported (llama and gpt2 are)",
                        (int)(s.n < 64 ? s.n : 64), s.p);
    t->pre = PRE_LLAMA3;
    if (t->model == MODEL_BPE && (kv = kvz_gguf_find(g, "tokenizer.ggml.pre"))) {
        if (kv->type != KVZ_GGUF_STRING)
            return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: tokenizer.ggml.pre is not a string");
        kvz_gguf_get_str(g, "tokenizer.ggml.pre", &s);
        if (name_in(s, llama3_names))
            t->pre = PRE_LLAMA3;
        else if (name_in(s, qwen2_names))
            t->pre = PRE_QWEN2;
        else if (key_is(s, "gpt2"))
            t->pre = PRE_GPT2;
        else if (key_is(s, "smollm"))
            t->pre = PRE_SMOLLM;
        else
            return kvz_fail(
                KVZ_ERR_UNSUPPORTED,
                "tokenizer: pre-tokenizer \"%.*s\" is not supported (llama-bpe/llama3/default, qwen2, "
                "gpt2, smollm are)",
                (int)(s.n < 64 ? s.n : 64), s.p);
    }
    t->ignore_merges = t->model == MODEL_BPE && t->pre == PRE_LLAMA3;

    kv = kvz_gguf_find(g, "tokenizer.ggml.tokens");
    if (!kv || kv->type != KVZ_GGUF_ARRAY || kv->elem_type != KVZ_GGUF_STRING)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens is %s",
                        kv ? "not a string array" : "absent");
    if (kv->count == 0 || kv->count >= INT32_MAX)
        return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: a vocabulary of %llu tokens",
                        (unsigned long long)kv->count);
    const size_t n = t->n = (size_t)kv->count;
    kvz_gguf_str *tok = malloc(n * sizeof *tok);
    t->off = malloc(n * sizeof *t->off);
    t->len = malloc(n * sizeof *t->len);
    t->score = calloc(n, sizeof *t->score);
    t->type = malloc(n);
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    t->slot = malloc(cap * sizeof *t->slot);
    t->slot_mask = cap - 1;
    if (!tok || !t->off || !t->len || !t->score || !t->type || !t->slot) {
        free(tok);
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for %zu tokens", n);
    }
    kvz_gguf_array_strings(kv, tok);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i].n > UINT32_MAX || total + tok[i].n < total) {
            const size_t bad = tok[i].n;
            free(tok);
            return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: token %zu is %zu bytes long", i, bad);
        }
        t->off[i] = total, t->len[i] = (uint32_t)tok[i].n, total += tok[i].n;
    }
    if (!(t->arena = malloc(total + 1))) {
        free(tok);
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory for %zu bytes of tokens", total);
    }
    for (size_t i = 0; i < n; i++)
        memcpy(t->arena + t->off[i], tok[i].p, tok[i].n);
    free(tok);
    memset(t->slot, 0xFF, cap * sizeof *t->slot);
    for (size_t i = 0; i < n; i++) {
        size_t h = hash_bytes(t->arena + t->off[i], t->len[i]) & t->slot_mask;
        for (; t->slot[h] >= 0; h = (h + 1) & t->slot_mask)
            if (t->len[t->slot[h]] == t->len[i] &&
                !memcmp(t->arena + t->off[t->slot[h]], t->arena + t->off[i], t->len[i]))
                break;
        if (t->slot[h] < 0)
            t->slot[h] = (int32_t)i;
    }

    if ((st = meta_array(g, "tokenizer.ggml.scores", n, &kv)) != KVZ_OK)
        return st;
    if (kv) {
        if (kv->elem_type != KVZ_GGUF_F32)
            return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores is not an f32 array");
        memcpy(t->score, kv->data, n * sizeof *t->score);
    }
    memset(t->type, TT_NORMAL, n);
    if ((st = meta_array(g, "tokenizer.ggml.token_type", n, &kv)) != KVZ_OK)
        return st;
    if (kv) {
        if (kv->elem_type != KVZ_GGUF_I32 && kv->elem_type != KVZ_GGUF_U32)
            return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: tokenizer.ggml.token_type is not an i32 array");
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, kv->data + 4 * i, 4);
            if (v < 0 || v > TT_BYTE)
                return kvz_fail(KVZ_ERR_FORMAT, "tokenizer: token %zu has type %d", i, (int)v);
            t->type[i] = (uint8_t)v;
        }
    }

    const int spm = t->model == MODEL_SPM;
    if ((st = meta_id(g, "tokenizer.ggml.bos_token_id", n, spm && n > 1 ? 1 : -1, &t->bos)) != KVZ_OK ||
        (st = meta_id(g, "tokenizer.ggml.eos_token_id", n, spm && n > 2 ? 2 : -1, &t->eos)) != KVZ_OK ||
        (st = meta_id(g, "tokenizer.ggml.unknown_token_id", n, spm ? 0 : -1, &t->unk)) != KVZ_OK ||
        (st = meta_id(g, "tokenizer.ggml.eot_token_id", n, -1, &t->eot)) != KVZ_OK ||
        (st = meta_id(g, "tokenizer.ggml.eom_token_id", n, -1, &t->eom)) != KVZ_OK ||
        (st = meta_bool(g, "tokenizer.ggml.add_bos_token", spm, &t->add_bos)) != KVZ_OK ||
        (st = meta_bool(g, "tokenizer.ggml.add_space_prefix", spm, &t->add_space_prefix)) != KVZ_OK)
        return st;
    if (!spm)
        t->add_space_prefix = 0; /* byte-level BPE spells spaces itself */

    /* bytes: SPM's <0xXX> tokens; BPE's byte-level alphabet (printable Latin-1 bytes stand for themselves,
     * the other 68 take U+0100.. in byte order) */
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    for (int c = 0; c < 324; c++)
        t->cp_byte[c] = -1;
    if (spm) {
        static const char hex[] = "0123456789ABCDEF";
        for (int b = 0; b < 256; b++) {
            const char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
            const int32_t id = lookup(t, name, 6);
            if (id >= 0 && (t->type[id] == TT_BYTE || !kvz_gguf_find(g, "tokenizer.ggml.token_type")))
                t->byte_id[b] = id, t->type[id] = TT_BYTE;
        }
    } else {
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            const int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            const int cp = printable ? b : 256 + extra++;
            char u[4];
            t->cp_byte[cp] = (int16_t)b, t->byte_cp[b] = (uint16_t)cp;
            t->byte_id[b] = lookup(t, u, kvz_utf8_put((uint32_t)cp, u));
        }
        if ((st = load_merges(t, g)) != KVZ_OK)
            return st;
    }

    if ((st = build_special_trie(t)) != KVZ_OK)
        return st;

    const int32_t ids[] = {t->eos, t->eot, t->eom};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0] + sizeof eog_texts / sizeof eog_texts[0]; i++) {
        const int32_t id = i < 3 ? ids[i] : kvz_tokenizer_find(t, eog_texts[i - 3]);
        if (id < 0 || kvz_tokenizer_is_eog(t, id))
            continue;
        t->eog[t->n_eog++] = id;
    }
    return KVZ_OK;
}

kvz_status kvz_tokenizer_from_gguf(const kvz_gguf *g, kvz_tokenizer **out)
{
    if (!g || !out)
        return kvz_fail(KVZ_ERR_NULL, "tokenizer: needs a GGUF file and an output");
    *out = NULL;
    kvz_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return kvz_fail(KVZ_ERR_NOMEM, "tokenizer: no memory");
    const kvz_status st = load(t, g);
    if (st != KVZ_OK) {
        kvz_tokenizer_free(t);
        return st;
    }
    *out = t;
    return KVZ_OK;
}

void kvz_tokenizer_free(kvz_tokenizer *t)
{
    if (!t)
        return;
    free(t->arena), free(t->off), free(t->len), free(t->score), free(t->type), free(t->slot), free(t->mslot);
    free(t->sp_edge), free(t->sp_child), free(t->sp_id), free(t);
}
