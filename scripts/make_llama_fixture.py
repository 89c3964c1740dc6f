#!/usr/bin/env python3
"""Dev-time only: write tiny random LlamaForCausalLM checkpoints and transformers'
reference logits into tests/fixtures/model/, for the Rust agreement test
(tests/model_transformers.rs). Not needed by tests or users.

    python3 -m venv build/venv-ml && build/venv-ml/bin/pip install torch transformers safetensors
    build/venv-ml/bin/python scripts/make_llama_fixture.py

Fixtures (each a Hugging Face directory plus reference.json):
  llama-gqa/             2 layers, 4 query heads over 2 key/value heads, untied head, f32
  llama-gqa-f16/         the same architecture, weights stored in f16
  llama-tied-bf16-sharded/ 1 layer, plain multi-head, tied head, bf16, several shards
Also: `make_llama_fixture.py --check DIR IDS [TEXT]` loads a directory this project
wrote (config.json, model.safetensors, optional tokenizer.json) with transformers and
prints {"logits": ..., "ids_of_text": ...} as JSON, to compare with `onebit logits --json`.

reference.json holds the input ids, the logits and the hidden states transformers
computed (in f32, from the weights exactly as stored, i.e. after f16/bf16 rounding).
"""
import json
import os
import shutil
import sys

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")


def randomise(model, seed):
    """Weights far from HF's 0.02 init so the logits are not near-uniform and the
    norm weights matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def make(name, cfg, seed, store_dtype, ids, max_shard_size=None):
    torch.manual_seed(seed)
    config = LlamaConfig(**cfg)
    model = LlamaForCausalLM(config).eval()
    model.config._attn_implementation = "eager"
    randomise(model, seed)
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    kwargs = {"safe_serialization": True}
    if max_shard_size:
        kwargs["max_shard_size"] = max_shard_size
    model.to(store_dtype).save_pretrained(d, **kwargs)
    for extra in ["generation_config.json"]:
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    # The reference is what transformers computes from the files as written, read
    # back in f32 (casting the live model would also round RoPE's inv_freq buffer).
    model = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(torch.tensor(ids), output_hidden_states=True)
    logits = out.logits
    # transformers' hidden_states: embeddings, then the input of each later block
    # (= output of the previous block), and last the final-normed output.
    block_outputs = [h.tolist() for h in out.hidden_states[1:-1]]
    ref = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "storage_dtype": str(store_dtype).replace("torch.", ""),
        "ids": ids,
        "logits": logits.tolist(),
        "block_outputs": block_outputs,
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    files = sorted(os.listdir(d))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
    print(f"{name}: {files}, {size} bytes, logits std {logits.std().item():.3f}", file=sys.stderr)


def main():
    ids = [[1, 5, 17, 33, 2, 63, 0, 8, 8, 40, 12, 51], [7, 7, 3, 60, 22, 9, 41, 18, 30, 5, 1, 2]]
    gqa = dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=56,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
    )
    make("llama-gqa", gqa, 1, torch.float32, ids)
    make("llama-gqa-f16", gqa, 2, torch.float16, ids)
    tied = dict(
        vocab_size=64,
        hidden_size=24,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=3,
        max_position_embeddings=32,
        rms_norm_eps=1e-6,
        rope_theta=500.0,
        tie_word_embeddings=True,
    )
    make("llama-tied-bf16-sharded", tied, 3, torch.bfloat16, ids, max_shard_size="8KB")


def check(d, ids, text=None):
    model = LlamaForCausalLM.from_pretrained(d, attn_implementation="eager").float().eval()
    ids = [int(i) for i in ids.split(",")]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    out = {"logits": logits.tolist()}
    tok_file = os.path.join(d, "tokenizer.json")
    if text is not None and os.path.exists(tok_file):
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(tokenizer_file=tok_file)
        out["ids_of_text"] = tok(text)["input_ids"]
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        check(*sys.argv[2:])
    else:
        main()
