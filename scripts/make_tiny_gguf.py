#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF model with random weights for the load test.

2 layers, 64 hidden units, 4 heads, an SPM vocabulary of byte-fallback tokens plus
the common words moeprobe load synthesises prompts from (and their prefixes, which
SPM merging needs), F16 matrices: about 0.3 MB. The text it writes is nonsense;
the serving (tokenizer, KV cache, sampling, streaming) is real.
Usage: make_tiny_gguf.py OUT.gguf   (needs the `gguf` and `numpy` packages)
"""
import sys

import gguf
import numpy as np

# Keep in step with probe/src/load_requests.cpp (words()).
WORDS = ("the of and to in is it that for on with as was at by this from or but not are be "
         "have one all we can her has there been if more when will would who so no time about "
         "out up into only new some could these two may first then do any like my now over "
         "such").split()

N_EMBD, N_LAYER, N_HEAD, N_FF, N_CTX = 64, 2, 4, 128, 4096


def vocab():
    toks = [("<unk>", 0.0, gguf.TokenType.UNKNOWN), ("<s>", 0.0, gguf.TokenType.CONTROL),
            ("</s>", 0.0, gguf.TokenType.CONTROL)]
    toks += [(f"<0x{b:02X}>", 0.0, gguf.TokenType.BYTE) for b in range(256)]
    pieces = {"\u2581"} | {c for c in "abcdefghijklmnopqrstuvwxyz"}
    for w in WORDS:
        full = "\u2581" + w
        for i in range(2, len(full) + 1):
            pieces.add(full[:i])
    # Longer pieces score higher, so SPM merges prefer whole words.
    for p in sorted(pieces, key=lambda s: (len(s), s)):
        toks.append((p, float(len(p)) - 10.0, gguf.TokenType.NORMAL))
    return toks


def main(out):
    rng = np.random.default_rng(0)
    toks = vocab()
    n_vocab = len(toks)
    w = gguf.GGUFWriter(out, "llama")
    w.add_name("moeplan-tiny-test")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_token_list([t[0] for t in toks])
    w.add_token_scores([t[1] for t in toks])
    w.add_token_types([int(t[2]) for t in toks])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                        "assistant:")

    def mat(rows, cols):  # numpy (rows, cols) = ggml ne {cols, rows}
        return (rng.standard_normal((rows, cols)) * 0.5).astype(np.float16)

    ones = np.ones(N_EMBD, dtype=np.float32)
    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", mat(n_vocab, N_EMBD))
    for i in range(N_LAYER):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", ones)
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(b + n + ".weight", mat(N_EMBD, N_EMBD))
        w.add_tensor(b + "ffn_norm.weight", ones)
        w.add_tensor(b + "ffn_gate.weight", mat(N_FF, N_EMBD))
        w.add_tensor(b + "ffn_up.weight", mat(N_FF, N_EMBD))
        w.add_tensor(b + "ffn_down.weight", mat(N_EMBD, N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1])
