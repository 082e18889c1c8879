#!/usr/bin/python3
"""Writes pytorch_model.bin: gpt2-tiny's weights saved by real torch.save (zip format), for the pickle loader tests.

Run with Debian's python3-torch (torch 1.13): /usr/bin/python3 make_pickle_checkpoint.py ../../../../../shared/fixtures/gpt2-tiny
The state dict holds every tensor of the fixture's model.safetensors (float32), plus, as real GPT2LMHeadModel
checkpoints do, lm_head.weight sharing wte's storage; and two extra tensors that exercise other storage layouts:
extra.half (float16 copy of ln_f.weight) and extra.transposed (a non-contiguous view, wte transposed).
"""
import collections, json, struct, sys, os
import torch

folder = sys.argv[1]
with open(os.path.join(folder, "model.safetensors"), "rb") as f:
    data = f.read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
body = data[8 + n:]
sd = collections.OrderedDict()
for name, info in header.items():
    if name == "__metadata__":
        continue
    assert info["dtype"] == "F32"
    begin, end = info["data_offsets"]
    sd[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=torch.float32).reshape(info["shape"]).clone()
wte = sd["transformer.wte.weight"]
sd["lm_head.weight"] = wte                      # tied: same storage, as GPT2LMHeadModel.state_dict() has it
sd["extra.half"] = sd["transformer.ln_f.weight"].half()
sd["extra.transposed"] = wte.t()                # stride (1, 64): a view, not contiguous
sd._metadata = collections.OrderedDict([("", {"version": 1})])   # as Module.state_dict() sets it (pickled via BUILD)
torch.save(sd, "pytorch_model.bin")
print("torch", torch.__version__, "wrote pytorch_model.bin with", len(sd), "tensors")
