#!/usr/bin/python3
"""Run the ```python blocks of a Markdown doc against real files.

usage: run_doc_snippets.py DOC.md RESULTS.h5 MODEL.h5
       run_doc_snippets.py DOC.md --tag TAG LITERAL=PATH...
The first form runs the untagged ```python blocks, written for the quick
start's paths: those literals are replaced by the given files. The second runs
only the blocks fenced ```python TAG (e.g. ```python influence), replacing
each LITERAL (a path as the doc writes it) by PATH. Blocks run in order in one
namespace, as a reader would paste them. Exits 1 if a block raises or none was
found."""
import re
import sys
import traceback

doc = sys.argv[1]
if len(sys.argv) > 2 and sys.argv[2] == "--tag":
    tag, subs = sys.argv[3], []
    for arg in sys.argv[4:]:
        lit, _, path = arg.partition("=")
        subs.append((lit, path))
    fence = r"```python " + re.escape(tag) + r"\n(.*?)```"
else:
    results, model = sys.argv[2:4]
    subs = [("results/quickstart.h5", results), ("models/mlp.h5", model)]
    fence = r"```python\n(.*?)```"
text = open(doc, encoding="utf-8").read()
blocks = re.findall(fence, text, flags=re.S)
if not blocks:
    print(f"FAIL: no python blocks in {doc}")
    sys.exit(1)
ns = {}
for i, code in enumerate(blocks, 1):
    for lit, path in subs:
        code = code.replace(lit, path)
    print(f"--- block {i} ---\n{code}")
    try:
        exec(compile(code, f"{doc}:block{i}", "exec"), ns)
    except Exception:
        traceback.print_exc()
        print(f"FAIL: block {i} of {doc} raised")
        sys.exit(1)
print(f"ok: {len(blocks)} blocks of {doc} ran")
