#!/usr/bin/env python3
"""Dev-time only: what transformers' own GGUF loader makes of SmolLM2-135M-Instruct.Q4_1.gguf,
written to tests/fixtures/smollm2/reference.json for the Rust agreement test
(tests/model_gguf.rs). Not needed by tests or users; `make smollm2-fixture` runs it in a
throwaway venv (build/venv-gguf: torch, transformers, gguf, accelerate from PyPI).

    build/venv-gguf/bin/python scripts/make_smollm2_fixture.py GGUF WIKITEXT_TEST_TXT

The fixture holds:
  * `whole_split`: the number of token ids transformers' GGUF tokenizer gives for the whole
    WikiText-2 test file (read whole, as `onebit ppl` reads it) and their FNV-1a hash (each id
    as 4 little-endian bytes), so the test checks every id of the split without shipping them;
  * `passage`: a WikiText-2 passage (text) and its ids;
  * `weights`: a few rows of dequantised tensors under their Hugging Face names (q and k after
    transformers undoes llama.cpp's row permutation);
  * `positions`: for some positions of the passage's first `seq_len` ids, the logits of a fixed
    slice of the vocabulary, the top ids with their logits, the argmax, the gap between the two
    largest logits and the log-sum-exp, computed in f32 with eager attention.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "smollm2", "reference.json")
SEQ_LEN = 96
POSITIONS = [0, 1, 2, 5, 17, 40, 95]
VOCAB_SLICE = list(range(0, 24)) + list(range(1000, 49152, 3001))
TOP = 8
WEIGHT_ROWS = [
    ("model.layers.0.self_attn.q_proj.weight", [0, 1, 31, 32, 63, 64, 575]),
    ("model.layers.0.self_attn.k_proj.weight", [0, 1, 32, 33, 191]),
    ("model.layers.29.self_attn.k_proj.weight", [2, 40]),
    ("model.layers.0.self_attn.v_proj.weight", [0, 191]),
    ("model.layers.3.mlp.down_proj.weight", [0, 575]),
    ("model.embed_tokens.weight", [0, 100, 49151]),
    ("model.layers.0.input_layernorm.weight", None),
]
COLUMNS = 12


def fnv1a(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_smollm2_fixture.py GGUF WIKITEXT_TEST_TXT")
    gguf, data = sys.argv[1], sys.argv[2]
    folder, name = os.path.split(os.path.abspath(gguf))
    torch.set_grad_enabled(False)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    text = open(data, encoding="utf-8").read()
    all_ids = tok(text)["input_ids"]
    # A passage from the middle of the split, starting at a line boundary.
    start = text.index("\n", len(text) // 3) + 1
    passage = text[start : start + 1500]
    ids = tok(passage)["input_ids"]
    assert len(ids) >= SEQ_LEN, len(ids)

    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    sd = model.state_dict()
    weights = []
    for wname, rows in WEIGHT_ROWS:
        w = sd[wname].float()
        if rows is None:
            weights.append({"name": wname, "row": None, "values": w[:COLUMNS].tolist()})
        else:
            for r in rows:
                weights.append({"name": wname, "row": r, "values": w[r, :COLUMNS].tolist()})

    x = torch.tensor([ids[:SEQ_LEN]])
    logits = model(input_ids=x).logits[0].float()
    positions = []
    for p in POSITIONS:
        row = logits[p]
        top = torch.topk(row, TOP)
        positions.append(
            {
                "position": p,
                "argmax": int(top.indices[0]),
                "top2_gap": float(top.values[0] - top.values[1]),
                "logsumexp": float(torch.logsumexp(row.double(), 0)),
                "top_ids": top.indices.tolist(),
                "top_logits": top.values.tolist(),
                "slice_logits": row[VOCAB_SLICE].tolist(),
            }
        )
    out = {
        "made_by": "scripts/make_smollm2_fixture.py (transformers' GGUF loader, f32, eager attention)",
        "gguf": name,
        "gguf_bytes": os.path.getsize(gguf),
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "tokenizer_class": type(tok).__name__,
        "data": os.path.basename(os.path.dirname(data)) + "/" + os.path.basename(data),
        "whole_split": {"tokens": len(all_ids), "fnv1a": f"{fnv1a(all_ids):016x}", "first_ids": all_ids[:32]},
        "passage": {"text": passage, "ids": ids},
        "seq_len": SEQ_LEN,
        "vocab_slice": VOCAB_SLICE,
        "weights": weights,
        "positions": positions,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {len(all_ids)} ids for the whole split, passage of {len(ids)} ids, {len(POSITIONS)} positions")


if __name__ == "__main__":
    main()
