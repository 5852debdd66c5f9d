#!/usr/bin/env python3
"""Compare `moerun generate --dump-logits` output with a fixture's reference.json (no torch needed).

usage: scripts/compare_logits.py REFERENCE_JSON DUMP_JSON [--case N] [--key cases|cases_bf16]
Prints max |diff| of prompt logits and step logits and whether the greedy tokens match; exit 1 on token mismatch.
"""
import argparse, json, sys

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference"); ap.add_argument("dump")
    ap.add_argument("--case", type=int, default=None, help="reference case index (default: match by prompt)")
    ap.add_argument("--key", default="cases")
    a = ap.parse_args()
    ref = json.load(open(a.reference))[a.key]
    dump = json.load(open(a.dump))
    results = dump["results"] if "results" in dump else [dump]
    ok = True
    for r in results:
        cases = [ref[a.case]] if a.case is not None else [c for c in ref if c["prompt"] == r["prompt"]]
        if not cases:
            print(f"prompt {r['prompt']}: no reference case with this prompt"); ok = False; continue
        c = cases[0]
        n = min(len(c["greedy"]), len(r["tokens"]))
        d_prompt = max(abs(x - y) for ra, rb in zip(r["logits"], c["logits"]) for x, y in zip(ra, rb))
        d_step = max(abs(x - y) for ra, rb in zip(r["step_logits"][:n], c["step_logits"][:n]) for x, y in zip(ra, rb))
        same = r["tokens"][:n] == c["greedy"][:n]
        ok &= same
        print(f"prompt len {len(r['prompt'])}: max|diff| prompt logits {d_prompt:.3e}, step logits {d_step:.3e}, greedy {'identical' if same else 'DIFFERENT'} ({n} tokens)")
    sys.exit(0 if ok else 1)

main()
