#!/usr/bin/env python3
"""Save every module output of a Hugging Face Llama forward pass as one .npy per module, the
layout `lltrace import npy DIR` reads. Usage: hook_dump.py MODEL_DIR "PROMPT" OUT_DIR
Needs torch, transformers and numpy (not needed by lltrace itself; not run in CI)."""
import os, sys
import numpy as np, torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, prompt, out = sys.argv[1], sys.argv[2], sys.argv[3]
# inputs of these modules are saved too, as "<module>.input": attention context and silu(gate)*up
SAVE_INPUTS = ("self_attn.o_proj", "mlp.down_proj")
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
os.makedirs(out, exist_ok=True)

def save(name, t):
    t = t[0] if isinstance(t, (tuple, list)) else t   # decoder layers return (hidden, ...)
    if torch.is_tensor(t) and t.is_floating_point():
        np.save(os.path.join(out, name + ".npy"), t.detach().float().cpu().numpy())

def hook(name):
    def fn(module, inputs, output):
        save(name, output)
        if name.endswith(SAVE_INPUTS):
            save(name + ".input", inputs[0])
    return fn

for name, module in model.named_modules():
    if name:
        module.register_forward_hook(hook(name))
ids = tok(prompt, return_tensors="pt").input_ids            # [1, seq], BOS included
with open(os.path.join(out, "input_ids.txt"), "w") as f:
    f.write(" ".join(str(i) for i in ids[0].tolist()) + "\n")
with torch.no_grad():
    model(ids)                                               # one forward = step 0
