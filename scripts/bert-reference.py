"""
Reference outputs for test/bert.test.ts, computed by Hugging Face transformers' own BertModel / RobertaModel: an
implementation of BERT independent of gp's, run here once so that the test itself needs no Python.

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch transformers safetensors
    /tmp/ref/bin/python scripts/bert-reference.py

Writes, for each fixture checkpoint, reference.safetensors beside it: for every case k, `case{k}.ids` (int32 [B, L],
padded with the pad id), `case{k}.mask` (float32 [B, L], 1 on real tokens) and `case{k}.hidden` (float32 [B, L, D],
the last hidden states at every position, padding included).

  test/fixtures/tiny-random-bert/      the caikit-nlp checkpoint (already there; only reference.safetensors is written)
  test/fixtures/tiny-random-roberta/   a tiny RoBERTa made here from a fixed seed (config.json, model.safetensors):
                                       positions offset by padding_idx + 1, gelu_new, no `roberta.` prefix, no pooler
"""
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import BertModel, RobertaConfig, RobertaModel

FIXTURES = Path(__file__).resolve().parent.parent / "test" / "fixtures"


def batch(lengths, vocab, first, last, pad, low, generator):
    """Ids [B, L]: first, random ids in [low, vocab), last; then pad to the longest. Mask 1 on the real tokens."""
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad, dtype=torch.int64)
    mask = torch.zeros((len(lengths), width), dtype=torch.float32)
    for row, n in enumerate(lengths):
        ids[row, 1 : n - 1] = torch.randint(low, vocab, (n - 2,), generator=generator)
        ids[row, 0] = first
        ids[row, n - 1] = last
        mask[row, :n] = 1
    return ids, mask


def write_reference(model, cases, target):
    model.eval()
    tensors = {}
    with torch.no_grad():
        for k, (ids, mask) in enumerate(cases):
            # All token types 0, as gp uses them; the mask is what transformers turns into its additive bias.
            hidden = model(input_ids=ids, attention_mask=mask.long(), token_type_ids=torch.zeros_like(ids)).last_hidden_state
            tensors[f"case{k}.ids"] = ids.to(torch.int32).contiguous()
            tensors[f"case{k}.mask"] = mask.contiguous()
            tensors[f"case{k}.hidden"] = hidden.float().contiguous()
    save_file(tensors, str(target), metadata={"source": "scripts/bert-reference.py", "transformers": __import__("transformers").__version__})
    print(f"wrote {target} ({len(cases)} cases)")


def bert_reference():
    directory = FIXTURES / "tiny-random-bert"
    model = BertModel.from_pretrained(str(directory), attn_implementation="eager").float()
    generator = torch.Generator().manual_seed(1)
    vocab = model.config.vocab_size
    # [CLS] = 2, [SEP] = 3, [PAD] = 0; ids from 5 on are ordinary tokens.
    cases = [batch(lengths, vocab, 2, 3, 0, 5, generator) for lengths in ([9, 16, 4], [24], [40, 33])]
    write_reference(model, cases, directory / "reference.safetensors")


def roberta_fixture():
    directory = FIXTURES / "tiny-random-roberta"
    config = RobertaConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        hidden_act="gelu_new",
        max_position_embeddings=66,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = RobertaModel(config, add_pooling_layer=False)
    # Fresh LayerNorms are exactly 1 and 0, which would hide a gain and a bias swapped: move every weight a little.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model.save_pretrained(str(directory))
    generator = torch.Generator().manual_seed(2)
    # <s> = 0, </s> = 2, <pad> = 1; 64 tokens fill the position table (66 − padding_idx − 1).
    cases = [batch(lengths, config.vocab_size, 0, 2, 1, 3, generator) for lengths in ([10, 5, 17], [64])]
    write_reference(model, cases, directory / "reference.safetensors")


if __name__ == "__main__":
    bert_reference()
    roberta_fixture()
