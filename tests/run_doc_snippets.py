#!/usr/bin/python3
"""Run every ```python block of a Markdown doc against real files.

usage: run_doc_snippets.py DOC.md RESULTS.h5 MODEL.h5
The snippets are written for the quick start's paths; those literals are
replaced by the given files. Blocks run in order in one namespace, as a
reader would paste them. Exits 1 if a block raises or none was found."""
import re
import sys
import traceback

doc, results, model = sys.argv[1:4]
text = open(doc, encoding="utf-8").read()
blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
if not blocks:
    print(f"FAIL: no python blocks in {doc}")
    sys.exit(1)
ns = {}
for i, code in enumerate(blocks, 1):
    code = code.replace("results/quickstart.h5", results).replace("models/mlp.h5", model)
    print(f"--- block {i} ---\n{code}")
    try:
        exec(compile(code, f"{doc}:block{i}", "exec"), ns)
    except Exception:
        traceback.print_exc()
        print(f"FAIL: block {i} of {doc} raised")
        sys.exit(1)
print(f"ok: {len(blocks)} blocks of {doc} ran")
