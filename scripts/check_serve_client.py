#!/usr/bin/env python3
"""Check `precis serve` with the real Hugging Face client: InferenceClient.summarization().

    .venv/bin/python scripts/check_serve_client.py [--precis target/debug/precis]
        [--model tests/fixtures/t5-tiny --model tests/fixtures/bart-tiny]

Starts `precis serve` on a free 127.0.0.1 port with an API key, then checks that
1. `huggingface_hub.InferenceClient(model="http://127.0.0.1:PORT", token=KEY).summarization(text)`
   returns a SummarizationOutput whose text is the one `POST /summarize` gives for that text;
2. with `generate_parameters`, `truncation` and `clean_up_tokenization_spaces=True`, the text is
   what transformers' own tokenizer gives for the summary's ids with
   `decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)`, on a summary
   where the clean-up matters (transformers 5 cleans SentencePiece output such as T5's and
   leaves byte-level BPE output such as BART's alone);
3. a wrong key is an HTTP 401 the client raises;
4. SIGTERM stops the server with exit status 0.
Exits non-zero on the first mismatch. Needs huggingface_hub and transformers (the venv).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
KEY = "check-serve-client-key"
TEXT = (
    "The council of the harbour town agreed on Monday to go ahead with a new footbridge over "
    "the river, after a debate that lasted most of the evening. The cost is put at 12 million, "
    "shared between the council and a national fund. Work should start in March and take about "
    "nine months. Residents welcomed the decision but asked how it would be paid for. Shop "
    "owners worried that the building work would keep customers away in summer. It isn't the "
    "first bridge the town has built, and it won't be the last, officials said."
)


def start(precis: str, model: str) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [precis, "serve", "--model", model, "--port", "0", "--max-new-tokens", "24",
         "--api-key", KEY],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    assert server.stderr is not None
    for line in server.stderr:
        if line.startswith("precis: listening on "):
            base = line.split()[-1]
            break
        if time.monotonic() > deadline:
            break
    else:
        sys.exit(f"precis serve did not start: exit {server.wait()}")
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
                if answer.status == 200:
                    return server, base
        except OSError:
            pass
        time.sleep(0.1)
    server.kill()
    sys.exit("precis serve never became ready")


def post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def check(what: str, got: object, want: object) -> None:
    if got != want:
        sys.exit(f"FAIL {what}:\n  got  {got!r}\n  want {want!r}")
    print(f"ok   {what}")


# The strings `clean_up_applies_as_transformers_applies_it` in src/summarizer/decode.rs pins.
CRAFTED = "It is n't here , is it ? Yes . We 're sure"
CLEANED = {
    "t5-tiny": "It is nt here, is it? Yes. We re sure",
    "bart-tiny": CRAFTED,
}


def check_clean_up(client: InferenceClient, base: str, model: str) -> None:
    """The client's clean_up_tokenization_spaces reaches the server, whose text is transformers'
    decode of the same ids; and transformers' decode of a crafted text still gives what the Rust
    test pins (random fixture summaries rarely hold a space before punctuation)."""
    tokenizer = AutoTokenizer.from_pretrained(model)
    generate = {"num_beams": 2, "max_new_tokens": 20, "no_repeat_ngram_size": 2}
    output = client.summarization(
        TEXT, generate_parameters=generate, truncation="do_not_truncate",
        clean_up_tokenization_spaces=True,
    )
    record = post(base, "/summarize", {"text": TEXT, **generate, "clean_up_tokenization_spaces": True})
    expected = tokenizer.decode(
        record["output_ids"], skip_special_tokens=True, clean_up_tokenization_spaces=True
    ).strip()
    check("clean_up_tokenization_spaces: the client's text is transformers' decode", output.summary_text, expected)
    check("clean_up_tokenization_spaces: and /summarize's", record["summary"], expected)
    name = Path(model).name
    if name in CLEANED:
        ids = tokenizer(CRAFTED).input_ids
        cleaned = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        check(f"transformers' clean-up of the crafted text is decode.rs's golden ({name})",
              cleaned, CLEANED[name])


def check_model(precis: str, model: str) -> None:
    print(f"--- {model}")
    server, base = start(precis, model)
    try:
        client = InferenceClient(model=base, token=KEY)
        output = client.summarization(TEXT)
        record = post(base, "/summarize", {"text": TEXT})
        check("summarization() returns the server's summary", output.summary_text, record["summary"])
        check_clean_up(client, base, model)
        try:
            InferenceClient(model=base, token="wrong").summarization(TEXT)
            sys.exit("FAIL a wrong API key was accepted")
        except HfHubHTTPError as error:
            check("a wrong API key is HTTP 401", error.response.status_code, 401)
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=120)
    check("SIGTERM exits 0", status, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precis", default=str(ROOT / "target/debug/precis"))
    parser.add_argument("--model", action="append",
                        help="model folder (repeatable; default: the t5-tiny and bart-tiny fixtures)")
    args = parser.parse_args()
    models = args.model or [str(ROOT / "tests/fixtures/t5-tiny"), str(ROOT / "tests/fixtures/bart-tiny")]
    for model in models:
        check_model(args.precis, model)


if __name__ == "__main__":
    main()
