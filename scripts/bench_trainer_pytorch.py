#!/usr/bin/env python3
"""Dev-time peer for trainer/examples/kd_step_bench.rs: the official OneBit KD
step in PyTorch on the same model and batch (not needed by tests or users).

One step: teacher forward (no grad), OneBit student forward (BitLinear: sign
with straight-through gradient grad*(1.001-tanh(w)^2), g, h, LayerNorm without
affine), KL(teacher||student) 'batchmean' + sum over blocks of the mean squared
distance of L2-normalised hidden states, backward, clip_grad_norm_(1.0), AdamW
(0.9, 0.98). Prints JSON on stdout.

Setup: python3 -m venv build/venv-torch && build/venv-torch/bin/pip install torch
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS, HEADS, HIDDEN, INTER, VOCAB, CONTEXT, BATCH = 4, 4, 128, 352, 65, 64, 12


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (1.001 - torch.tanh(w) ** 2)


class BitLinear(nn.Module):
    def __init__(self, k, n):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, k).sign() * 0.01)
        self.g = nn.Parameter(torch.rand(k) + 0.5)
        self.h = nn.Parameter(torch.rand(n) * 0.05)
        self.ln = nn.LayerNorm(n, elementwise_affine=False, eps=1e-5)

    def forward(self, x):
        return self.ln(F.linear(x * self.g, SignSTE.apply(self.weight)) * self.h)


def dense(k, n):
    lin = nn.Linear(k, n, bias=False)
    nn.init.normal_(lin.weight, std=0.02)
    return lin


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(t, hd):
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.outer(torch.arange(t).float(), inv)
    emb = torch.cat([ang, ang], -1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


class Block(nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.n1, self.n2 = RMSNorm(HIDDEN), RMSNorm(HIDDEN)
        self.q, self.k, self.v, self.o = (lin(HIDDEN, HIDDEN) for _ in range(4))
        self.gate, self.up = lin(HIDDEN, INTER), lin(HIDDEN, INTER)
        self.down = lin(INTER, HIDDEN)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        hd = HIDDEN // HEADS
        xn = self.n1(x)
        q, k, v = (p(xn).view(b, t, HEADS, hd).transpose(1, 2) for p in (self.q, self.k, self.v))
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(att.transpose(1, 2).reshape(b, t, HIDDEN))
        xn = self.n2(x)
        return x + self.down(F.silu(self.gate(xn)) * self.up(xn))


class Llama(nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, HIDDEN)
        nn.init.normal_(self.emb.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(lin) for _ in range(LAYERS))
        self.norm = RMSNorm(HIDDEN)
        cos, sin = rope_tables(CONTEXT, HIDDEN // HEADS)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, ids):
        x = self.emb(ids)
        hidden = []
        for blk in self.blocks:
            x = blk(x, self.cos, self.sin)
            hidden.append(x)
        return F.linear(self.norm(x), self.emb.weight), hidden


def kd_loss(s_logits, t_logits, s_hidden, t_hidden, alpha=1.0):
    kl = F.kl_div(F.log_softmax(s_logits.view(-1, VOCAB), -1), F.softmax(t_logits.view(-1, VOCAB), -1), reduction="batchmean")
    hid = sum(((F.normalize(s, dim=-1) - F.normalize(t, dim=-1)) ** 2).sum(-1).mean() for s, t in zip(s_hidden, t_hidden))
    return kl + alpha * hid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    teacher, student = Llama(dense), Llama(BitLinear)
    teacher.eval()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.0)
    times = []
    for step in range(a.warmup + a.steps):
        ids = torch.randint(0, VOCAB, (BATCH, CONTEXT))
        t0 = time.perf_counter()
        with torch.no_grad():
            t_logits, t_hidden = teacher(ids)
        s_logits, s_hidden = student(ids)
        loss = kd_loss(s_logits, t_logits, s_hidden, t_hidden)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        assert math.isfinite(loss.item())
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "median_ms": median * 1e3,
        "mean_ms": sum(times) / len(times) * 1e3,
        "tokens_per_second": BATCH * CONTEXT / median,
        "steps_timed": a.steps,
        "times_ms": [t * 1e3 for t in times],
    }))


if __name__ == "__main__":
    main()
