#!/usr/bin/env python3
"""Checks a running `moerun serve` with the official `openai` client: completion, chat completion, streaming
(with the usage chunk) and one refused request; prints every failed check and exits non-zero if there was one.

    python3 scripts/openai_client_check.py --base-url http://127.0.0.1:8000/v1 [--api-key KEY] [--model NAME]
"""
import argparse
import sys

import openai

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)
    return condition


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("--api-key", default="EMPTY", help="the server's --api-key, if it has one")
    ap.add_argument("--model", help="served model name (default: the first of /v1/models)")
    ap.add_argument("--max-tokens", type=int, default=8)
    args = ap.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=600)

    models = client.models.list().data
    check(len(models) >= 1, "/v1/models lists the served model")
    model = args.model or models[0].id
    check(any(m.id == model for m in models), f"/v1/models lists '{model}'")

    c = client.completions.create(model=model, prompt="The capital of France is", max_tokens=args.max_tokens,
                                  temperature=0, seed=1)
    check(c.object == "text_completion" and c.id.startswith("cmpl-"), f"completion id/object: {c.id} {c.object}")
    check(len(c.choices) == 1 and isinstance(c.choices[0].text, str), "completion has one text choice")
    check(c.choices[0].finish_reason in ("stop", "length"), f"completion finish_reason {c.choices[0].finish_reason}")
    check(c.usage.completion_tokens >= 1 and c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens,
          f"completion usage {c.usage}")

    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Say hello."}]
    r = client.chat.completions.create(model=model, messages=messages, max_tokens=args.max_tokens, temperature=0, seed=1)
    check(r.object == "chat.completion" and r.id.startswith("chatcmpl-"), f"chat id/object: {r.id} {r.object}")
    check(r.choices[0].message.role == "assistant" and isinstance(r.choices[0].message.content, str), "chat message")
    check(r.choices[0].finish_reason in ("stop", "length"), f"chat finish_reason {r.choices[0].finish_reason}")
    check(r.usage.completion_tokens >= 1, f"chat usage {r.usage}")

    # Same request streamed: same seed and greedy sampling, so the same text (the server is batch invariant).
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=args.max_tokens, temperature=0,
                                            seed=1, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    check(len(chunks) >= 3, f"stream has role, finish and usage chunks ({len(chunks)} chunks)")
    if chunks:
        check(chunks[0].choices and chunks[0].choices[0].delta.role == "assistant", "first chunk carries role=assistant")
        check(chunks[-1].choices == [] and chunks[-1].usage is not None, "last chunk is the usage chunk")
        finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        check(len(finishes) == 1 and finishes[0] in ("stop", "length"), f"one finish_reason in the stream: {finishes}")
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        check(text == r.choices[0].message.content, f"streamed text {text!r} == whole {r.choices[0].message.content!r}")
        if chunks[-1].usage is not None:
            check(chunks[-1].usage.completion_tokens == r.usage.completion_tokens, "stream usage equals the whole response's")

    cs = client.completions.create(model=model, prompt="One, two, three,", max_tokens=args.max_tokens, stream=True,
                                   temperature=0, seed=1)
    parts = list(cs)
    check(any(p.choices and p.choices[0].finish_reason for p in parts), "completion stream ends with a finish_reason")

    try:
        client.chat.completions.create(model=model, messages=messages, max_tokens=2, n=2)
        check(False, "n=2 is refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "'n'" in str(e), f"n=2 refused with 400 naming n: {e}")
    try:
        client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
        check(False, "an unknown model is refused")
    except openai.NotFoundError as e:
        check(e.status_code == 404, f"unknown model -> 404: {e}")

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all OpenAI client checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
