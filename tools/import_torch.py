#!/usr/bin/python3
"""Bring an attrib model file's parameters back into PyTorch.

usage: import_torch.py MODEL.h5 OUT.pt [--module MODEL.pt] [--import PATH]...

Without --module, OUT.pt holds the state dict: torch.save(OrderedDict(name ->
float32 tensor)), names and shapes exactly as stored in MODEL.h5's
/state_dict (batch norm running statistics included), in layer order. Load it
with model.load_state_dict(torch.load("OUT.pt")).

With --module, MODEL.pt is a pickled module (torch.save(model)) whose state
dict must match the file's tensors exactly (names and shapes; a batch norm's
num_batches_tracked, which attrib does not store, keeps the module's value).
The parameters are loaded with load_state_dict(strict=True) and the module is
saved to OUT.pt. --import puts a directory on sys.path so the module's
classes unpickle (the current directory and tools/ are always there).

The file's content hash is checked first. Errors name the file and the
tensor; exit status 2.
"""
import argparse
import os
import sys
import tempfile

TOOLS = os.path.dirname(os.path.abspath(__file__))
PROG = "import_torch.py"


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("model", metavar="MODEL.h5")
    ap.add_argument("out", metavar="OUT.pt")
    ap.add_argument("--module", metavar="MODEL.pt", help="a pickled module to load the parameters into")
    ap.add_argument("--import", dest="imports", action="append", default=[], metavar="PATH")
    a = ap.parse_args(argv)

    def fail(msg):
        print(f"{PROG}: {msg}", file=sys.stderr)
        return 2

    for p in [TOOLS, os.getcwd()] + [os.path.abspath(p) for p in a.imports]:
        if p not in sys.path:
            sys.path.insert(0, p)
    from collections import OrderedDict

    import torch

    import attrib_torch as at

    if not os.path.isfile(a.model):
        return fail(f"{a.model}: no such file")
    try:
        mf = at.read_model_file(a.model)
        net = at.build_attrib_model(mf["layers"], mf["input_shape"], mf["state_dict"])
    except at.ModelFileError as e:
        msg = str(e)
        return fail(msg if msg.startswith(a.model) else f"{a.model}: {msg}")
    # layer order (the module tree's), only the tensors the file holds
    sd = OrderedDict((k, v.detach().clone().float()) for k, v in net.state_dict().items()
                     if k in mf["state_dict"])
    assert set(sd) == set(mf["state_dict"]), (sorted(sd), sorted(mf["state_dict"]))

    obj = sd
    if a.module:
        if not os.path.isfile(a.module):
            return fail(f"{a.module}: no such file")
        try:
            mod = torch.load(a.module, map_location="cpu")
        except Exception as e:
            return fail(f"{a.module}: cannot load ({type(e).__name__}: {e}); pass the directory of "
                        "its classes with --import")
        if not isinstance(mod, torch.nn.Module):
            return fail(f"{a.module}: holds a {type(mod).__name__}, not an nn.Module")
        own = mod.state_dict()
        want = OrderedDict()
        for k, v in own.items():
            if k in sd:
                if tuple(sd[k].shape) != tuple(v.shape):
                    return fail(f"{a.model}: tensor '{k}' has shape {tuple(sd[k].shape)}, but "
                                f"{a.module} expects {tuple(v.shape)}")
                want[k] = sd[k].to(v.dtype)
            elif k.endswith("num_batches_tracked"):
                want[k] = v.clone()
            else:
                return fail(f"{a.module}: tensor '{k}' of the module is not in {a.model} "
                            f"(the file has: {', '.join(list(sd)[:8])}{' ...' if len(sd) > 8 else ''})")
        extra = [k for k in sd if k not in own]
        if extra:
            return fail(f"{a.model}: tensor '{extra[0]}' is not a tensor of the module in {a.module}"
                        f"{f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''}")
        try:
            mod.load_state_dict(want, strict=True)
        except RuntimeError as e:
            return fail(f"{a.module}: load_state_dict(strict=True) failed: {e}")
        obj = mod

    d = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(a.out) + ".", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, a.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    n = sum(v.numel() for v in sd.values())
    what = f"module {type(obj).__name__} from {a.module}" if a.module else "state dict"
    print(f"{PROG}: wrote {a.out}: {what}, {len(sd)} tensors ({n} values) from {a.model} "
          f"(sha256 {mf['attrs'].get('content_sha256', '')[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
