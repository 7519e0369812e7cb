"""
PyTorch reference for scripts/bench.ts: the same architecture, loss and optimiser as src/model/globalpointer.ts,
src/train/loss.ts and src/train/optimizer.ts, on the same batches and texts, so the ratio tfjs / PyTorch is
measured side by side on one machine in one invocation.

    python3 scripts/torch_reference.py DATA.json  →  one JSON object on stdout
    python3 scripts/torch_reference.py DATA.json --check WEIGHTS.json  →  {loss, gradNorm, lossAfterStep} with gp's
        initial parameters (name → flat values), for scripts/torch-parity.ts to compare with gp's own

DATA.json is written by bench.ts (shapes, hyper-parameters, training batches, prediction texts). Without torch
this prints {"error": "..."} and exits 3, which bench.ts reports as "skipped".

What is mirrored, and how:
  - pre-LN transformer: dropout on the embeddings, then per layer x + drop(attn(LN x)), x + drop(ffn(LN x)); final LN.
    LayerNorm eps 1e-12; GELU in its tanh form; attention dropout on the probabilities; padding keys get −1e9.
  - RoPE inside attention and in the head, rotating the pairs (x_k, x_{k+d/2}) with angle p · 10000^(−2k/d).
  - GlobalPointer head: one dense layer to H · 2d, per type q and k, RoPE, q·k/√d, −1e12 added on cells with
    j < i or on padding; or (shape.head "efficient") the efficient head: one q·k/√d for all types plus per-type
    start and end biases from a dense layer over the un-rotated [q; k], halved.
  - multilabel categorical CE with the same masking: log(1 + Σ_neg e^s) + log(1 + Σ_pos e^−s), mean over B·H.
  - AdamW with decoupled decay (not on biases / LayerNorm), global-norm clipping to clipNorm, a step skipped when
    the norm is not finite (which needs the norm on the host, as gp's loop reads it with dataSync).
  - N(0, 0.02) truncated at 2σ for matrices, ones / zeros for LayerNorm gains / biases.
  - prediction: tokenise (one id per character, [CLS] / [SEP] around), sort windows by length, batches padded to
    their longest, forward without dropout, cells above the threshold read back as (type, start, end) spans.
Threads: torch.set_num_threads(threads) (intra-op), as given in DATA.json.
"""
import json
import math
import resource
import statistics
import sys
import time


def main() -> int:
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError as err:  # the bench goes on without the reference and says why
        print(json.dumps({"error": f"torch is not importable by {sys.executable}: {err}"}))
        return 3

    with open(sys.argv[1], encoding="utf8") as f:
        data = json.load(f)
    shape, hp = data["shape"], data["training"]
    torch.set_num_threads(data["threads"])
    torch.manual_seed(data["seed"])
    V, D, layers, heads = shape["vocab"], shape["dim"], shape["layers"], shape["heads"]
    H, d, F_ = shape["types"], shape["headSize"], shape["dim"] * shape["ffnMultiplier"]
    p_drop, p_attn = shape["dropout"], shape["attentionDropout"]
    MASK_BIAS = -1e12

    def rope_tables(length: int, width: int):
        half = width // 2
        k = torch.arange(half, dtype=torch.float64)
        inv = torch.pow(10000.0, -2 * k / width)
        angles = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
        angles = torch.cat([angles, angles], -1).float()
        return angles.cos(), angles.sin()

    def apply_rope(x, cos, sin):
        x1, x2 = x.chunk(2, -1)
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def trunc_normal(*size):
        return nn.Parameter(nn.init.trunc_normal_(torch.empty(*size), std=0.02, a=-0.04, b=0.04))

    class Dense(nn.Module):
        """x W + b with W stored [in, out], as gp stores it."""

        def __init__(self, n_in: int, n_out: int):
            super().__init__()
            self.kernel = trunc_normal(n_in, n_out)
            self.bias = nn.Parameter(torch.zeros(n_out))

        def forward(self, x):
            return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.kernel).reshape(*x.shape[:-1], -1)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(D, eps=1e-12)
            self.qkv = Dense(D, 3 * D)
            self.out = Dense(D, D)
            self.ln2 = nn.LayerNorm(D, eps=1e-12)
            self.ffn_in = Dense(D, F_)
            self.ffn_out = Dense(F_, D)

        def forward(self, x, key_bias, cos, sin):
            B, L, _ = x.shape
            dh = D // heads
            q, k, v = self.qkv(self.ln1(x)).chunk(3, -1)
            to_heads = lambda t: t.reshape(B, L, heads, dh).transpose(1, 2)
            q, k, v = apply_rope(to_heads(q), cos, sin), apply_rope(to_heads(k), cos, sin), to_heads(v)
            scores = q @ k.transpose(-1, -2) * (1 / math.sqrt(dh)) + key_bias
            probs = F.dropout(scores.softmax(-1), p_attn, self.training)
            context = (probs @ v).transpose(1, 2).reshape(B, L, D)
            x = x + F.dropout(self.out(context), p_drop, self.training)
            hidden = F.dropout(F.gelu(self.ffn_in(self.ln2(x)), approximate="tanh"), p_drop, self.training)
            return x + F.dropout(self.ffn_out(hidden), p_drop, self.training)

    class GlobalPointerModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = trunc_normal(V, D)
            self.layers = nn.ModuleList([Layer() for _ in range(layers)])
            self.ln = nn.LayerNorm(D, eps=1e-12)
            self.efficient = shape["head"] == "efficient"
            if self.efficient:
                self.head = Dense(D, 2 * d)
                self.head_bias = Dense(2 * d, 2 * H)
            else:
                self.head = Dense(D, H * 2 * d)

        def forward(self, ids, mask):
            B, L = ids.shape
            x = F.dropout(F.embedding(ids, self.word), p_drop, self.training)
            key_bias = ((mask - 1) * 1e9).reshape(B, 1, 1, L)
            cos, sin = rope_tables(L, D // heads)
            for layer in self.layers:
                x = layer(x, key_bias, cos, sin)
            h = self.ln(x)
            cos, sin = rope_tables(L, d)
            if self.efficient:
                # one shared q·k/√d plus per-type start and end biases from the un-rotated [q; k]
                raw = self.head(h)  # [B, L, 2d]
                q, k = raw.chunk(2, -1)
                q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
                shared = (q @ k.transpose(-1, -2) / math.sqrt(d))[:, None]  # [B, 1, L, L]
                start, end = (self.head_bias(raw) / 2).reshape(B, L, H, 2).transpose(1, 2).chunk(2, -1)  # [B, H, L, 1]
                logits = shared + start + end.transpose(-1, -2)
            else:
                q, k = self.head(h).reshape(B, L, H, 2 * d).transpose(1, 2).chunk(2, -1)
                q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
                logits = q @ k.transpose(-1, -2) / math.sqrt(d)
            upper = torch.ones(L, L).triu()
            valid = mask.reshape(B, 1, L, 1) * mask.reshape(B, 1, 1, L) * upper
            return logits + (valid - 1) * -MASK_BIAS

    def log_one_plus_sum_exp(x):
        return torch.logsumexp(torch.cat([x, x.new_zeros(*x.shape[:-1], 1)], -1), -1)

    def multilabel_ce(logits, targets):
        B, H_, L = logits.shape[:3]
        s = logits.reshape(B, H_, L * L)
        y = targets.reshape(B, H_, L * L)
        negative = s + y * MASK_BIAS
        positive = torch.where(y.bool(), -s, torch.full_like(s, MASK_BIAS))
        return (log_one_plus_sum_exp(negative) + log_one_plus_sum_exp(positive)).mean()

    def batch_tensors(batch, with_targets: bool):
        B = len(batch)
        L = max(len(w["ids"]) for w in batch)
        ids = torch.full((B, L), data["padId"], dtype=torch.long)
        mask = torch.zeros(B, L)
        for b, w in enumerate(batch):
            ids[b, : len(w["ids"])] = torch.tensor(w["ids"])
            mask[b, : len(w["ids"])] = 1
        targets = None
        if with_targets:
            targets = torch.zeros(B, H, L, L)
            for b, w in enumerate(batch):
                for h, i, j in w["targets"]:
                    targets[b, h, i, j] = 1
        return ids, mask, targets, sum(len(w["ids"]) for w in batch), B * L

    model = GlobalPointerModel()
    # As gp's decays(): biases and LayerNorm parameters (named ln1, ln2, ln here) are not decayed.
    no_decay = lambda n: n.endswith("bias") or ".ln" in f".{n}"
    decay = [p for n, p in model.named_parameters() if not no_decay(n)]
    plain = [p for n, p in model.named_parameters() if no_decay(n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": hp["weightDecay"]}, {"params": plain, "weight_decay": 0.0}],
        lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["epsilon"],
    )
    params = list(model.parameters())

    def check(weights_file: str):
        """gp's parameters loaded: the loss of the first batch without dropout, ‖g‖, and the loss after one update."""
        with open(weights_file, encoding="utf8") as f:
            weights = json.load(f)
        rename = [("embeddings.word", "word"), ("encoder.ln.", "ln."), ("encoder.", "layers."), (".attn.", "."),
                  (".ffn.in.", ".ffn_in."), (".ffn.out.", ".ffn_out."), ("head.bias.", "head_bias."), ("head.qk.", "head."),
                  (".gamma", ".weight"), (".beta", ".bias")]
        named = dict(model.named_parameters())
        for name, values in weights.items():
            for old, new in rename:
                name = name.replace(old, new)
            with torch.no_grad():
                named.pop(name).copy_(torch.tensor(values).reshape(named_shape[name]))
        if named:
            raise ValueError(f"parameters gp did not provide: {sorted(named)}")
        model.eval()
        ids, mask, targets, _, _ = batch_tensors(batches[0], True)
        loss = multilabel_ce(model(ids, mask), targets)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, hp["clipNorm"])
        optimizer.step()
        with torch.no_grad():
            after = multilabel_ce(model(ids, mask), targets)
        return {"loss": loss.item(), "gradNorm": norm.item(), "lossAfterStep": after.item()}

    named_shape = {n: p.shape for n, p in model.named_parameters()}

    def train_step(batch):
        ids, mask, targets, real, padded = batch_tensors(batch, True)
        loss = multilabel_ce(model(ids, mask), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        loss_value = loss.item()
        norm = torch.nn.utils.clip_grad_norm_(params, hp["clipNorm"]) if hp["clipNorm"] > 0 else None
        if math.isfinite(loss_value) and (norm is None or math.isfinite(norm.item())):
            optimizer.step()
        return real, padded

    batches = data["batches"]
    if len(sys.argv) > 3 and sys.argv[2] == "--check":
        print(json.dumps(check(sys.argv[3])))
        return 0
    model.train()
    for s in range(data["warmup"]):
        train_step(batches[s % len(batches)])
    train_runs = []
    step = 0
    for _ in range(data["repeats"]):
        real = padded = 0
        started = time.perf_counter()
        for _ in range(data["steps"]):
            r, p = train_step(batches[step % len(batches)])
            step += 1
            real += r
            padded += p
        seconds = time.perf_counter() - started
        train_runs.append({"seconds": seconds, "tokensPerSecond": real / seconds, "paddedPerSecond": padded / seconds,
                           "rssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    train_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Prediction: the same texts, char vocabulary built from them, as gp's char tokenizer does.
    texts = data["texts"]
    vocab = {}
    for t in texts:
        for c in t:
            vocab.setdefault(c, len(vocab) + 5)
    cls_id, sep_id = 2, 3
    model.eval()

    def predict(texts_):
        windows = [{"ids": [cls_id] + [vocab[c] for c in t] + [sep_id], "text": i} for i, t in enumerate(texts_)]
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]["ids"]))
        found = [[] for _ in texts_]
        bs = data["predictBatchSize"]
        with torch.inference_mode():
            for s in range(0, len(order), bs):
                batch = [windows[i] for i in order[s : s + bs]]
                ids, mask, _, _, _ = batch_tensors(batch, False)
                logits = model(ids, mask)
                for b, h, i, j in (logits > data["threshold"]).nonzero().tolist():
                    # token i..j → characters i−1..j−1 (after [CLS]), end exclusive
                    found[batch[b]["text"]].append((h, i - 1, j))
        return found

    predict(texts[: data["predictBatchSize"]])
    predict_runs = []
    chars = sum(len(t) for t in texts)
    for _ in range(data["repeats"]):
        started = time.perf_counter()
        found = predict(texts)
        seconds = time.perf_counter() - started
        predict_runs.append({"seconds": seconds, "charsPerSecond": chars / seconds,
                             "entitiesPerText": sum(len(f) for f in found) / len(texts)})

    print(json.dumps({
        "name": "torch",
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "train": train_runs,
        "predict": predict_runs,
        "trainPeakRssMB": train_peak,
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "parameters": sum(p.numel() for p in params),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
