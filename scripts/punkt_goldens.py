"""Golden sentence splits from NLTK's PunktSentenceTokenizer for precis eval --split-sentences.

Writes tests/fixtures/golden/punkt.json, which `cargo test --test punkt_parity` compares precis's
Punkt port (src/eval/punkt/) against. NLTK's tokenizer is built from the same parameters precis
embeds (data/punkt/english.json: NLTK's English model as shipped in rust-punkt), so the goldens
test the algorithm. The corpus is written here: abbreviations, initials, numbers, ellipses,
quotes and brackets after a period, ?/!, lower case after a period, collocations, line breaks,
non-ASCII text, empty text, and seeded random texts assembled from such pieces.

    .venv/bin/python scripts/punkt_goldens.py            # rewrite the golden file
    .venv/bin/python scripts/punkt_goldens.py --check    # compare with the committed one

Pinned versions: scripts/requirements-eval.txt.
"""

import argparse
import json
import random
import sys
from pathlib import Path

import nltk
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / "data" / "punkt" / "english.json"
OUT = ROOT / "tests" / "fixtures" / "golden" / "punkt.json"

CASES = [
    ("empty", ""),
    ("blank", " \n\t \n"),
    ("one", "One sentence without an end"),
    ("simple", "The dam held. Engineers checked it twice! Was it safe? Officials said yes."),
    ("titles", "Mr. Smith met Dr. Jones and Mrs. Brown at St. Mary's. Prof. Lee was late."),
    ("us", "The U.S. economy grew. The U.S.S.R. collapsed in 1991. U.K. talks resumed."),
    ("months", "It opened on Jan. 5 and closed in Sept. after a Feb. review. Then Oct. came."),
    ("initials", "Johann S. Bach wrote it. J. R. R. Tolkien wrote more. T. Walter agreed."),
    ("collocation", "He met J. Walter Thompson. B. Smith left. 12. Dividend news came."),
    ("numbers", "Prices rose 3.5% in May. Output fell 2.1 percent. It cost $1,000.50 today."),
    ("ordinal", "It was the 3. time. On the 2. we left. In 2024. Rates rose."),
    ("ellipsis", "Wait... Then what? He paused... and went on. Well . . . Maybe."),
    ("ellipsis-lower", "She said... nothing. He hesitated.. then spoke."),
    ("quotes", "\"We are worried,\" a trader said. \"Shares fell.\" Then prices rose."),
    ("brackets", "Shares fell (again.) Then (briefly) rose. [See note.] Done."),
    ("realign-doc", "(How does it deal with this parenthesis?)  \"It should be part of the\n"
     "previous sentence.\" \"(And the same with this one.)\" ('And this one!')\n"
     "\"('(And (this)) '?)\" [(and this. )]"),
    ("curly-quotes", "\u201cIt works.\u201d She smiled. \u2018Really?\u2019 he asked. \u00abOui.\u00bb Fin."),
    ("question-exclaim", "Really?! Yes!! Are you sure??? Absolutely. Wow!Great."),
    ("lowercase-after", "It ended. and then it began. i think so. The end."),
    ("sent-starter", "He works at Acme Inc. However, he left. She joined Acme Corp. The firm grew."),
    ("abbrev-end", "They moved to Washington, D.C. The city was busy. Call at 5 p.m. Tomorrow."),
    ("hyphen-abbrev", "He was ex-Gen. Smith's aide. The anti-Mr. campaign failed."),
    ("multi-line", "The storm passed\novernight. Roads reopened\n\nby noon. Schools stay closed\n"),
    ("paragraphs", "First paragraph ends here.\n\nSecond paragraph starts. It goes on.\n\n\nThird."),
    ("crlf", "Line one ends.\r\nLine two ends.\r\nNo. 3 follows."),
    ("non-ascii", "Café owners in Zürich met. Émile Zola wrote. Naïve tourists paid €5. Ça va."),
    ("greek-cyrillic", "Η Αθήνα είναι. Привет мир. Это тест! Done."),
    ("cjk", "東京で会議が開かれた。 Meeting held. 大阪. Osaka followed."),
    ("nbsp", "Ends here.\u00a0Next one.\u2003Another.\u3000Last."),
    ("separators", "One.\x1c Two. Three.\x1f\x1c"),
    ("dashes", "He left--quickly. She stayed -- calmly. They waited.--Then went."),
    ("comma-period", "Items: a., b., and c. were listed. Next."),
    ("trailing-space", "  Leading space. Trailing space.   "),
    ("urls", "See www.example.com for more. Email a.b@c.org now. Version 2.0.1 shipped."),
    ("long-run", "A" * 300 + ". " + "b." * 50 + " End."),
    ("wide-space-ellipsis", "Wait.\u2003.\u2003. Go. Then.\u00a0.\u00a0.\u00a0.x"),
    ("said-quote", "\"Stop!\" he said. \"Why?\" She asked. He said \"stop.\""),
    ("close-then-dash", "It ended (finally.)--then more. End.)"),
    ("quote-newline", "He asked \"why?\"\nShe left.\n\"Done.\"\n"),
    ("latin-abbrevs", "Bring tools, e.g. hammers, i.e. heavy ones, etc. Then go. See fig. 3."),
    ("no-number", "Room No. 5 is free. Call No. 12. It rings. Vol. 2 ships."),
    ("greek-sigma", "ΟΔΟΣ. Και ΟΔΟΣ ΑΘΗΝΑΣ. Τέλος."),
    ("only-marks", "?!. ... !"),
    ("long-spaced-ellipsis", "He paused . . . . then went. Wait . . . . So. Go. . . . . .Now."),
    ("mark-start", ". Starts with a period. ?Odd! (Yes.)"),
]

# Pieces of text that exercise Punkt's rules, joined at random into more cases.
PIECES = [
    "Mr.", "Smith", "U.S.", "J.", "Walter", "Thompson", "3.5", "12.", "2024.", "...", ". . .",
    "\"", "'", ")", "(", "]", "\u201d", "\u00bb", "?", "!", ".", ",", ";", "--", "the", "The",
    "However", "however", "i", "It", "it", "Four", "four", "Jan.", "Inc.", "Corp.", "etc.",
    "e.g.", "a.m.", "Émile", "café", "naïve", "Zürich", "Привет", "東京", "ex-Gen.", "co-op.",
    "he", "He", "said.", "left.", "ran", "Dr.", "No.", "no.", "B.", "levine", "Levine",
]
SEPARATORS = [" ", " ", " ", " ", "", "  ", "\n", "\n\n", "\t", "\u00a0"]


def random_cases(count=400, seed=11):
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        parts = []
        for _ in range(rng.randint(1, 24)):
            parts.append(rng.choice(PIECES))
            parts.append(rng.choice(SEPARATORS))
        cases.append((f"random-{i}", "".join(parts)))
    return cases


def english_tokenizer():
    """NLTK's PunktSentenceTokenizer with the parameters precis embeds."""
    data = json.loads(PARAMS.read_text(encoding="utf-8"))
    params = PunktParameters()
    params.abbrev_types = set(data["abbrev_types"])
    params.collocations = {tuple(pair) for pair in data["collocations"]}
    params.sent_starters = set(data["sentence_starters"])
    for typ, flags in data["ortho_context"].items():
        params.ortho_context[typ] = flags
    return PunktSentenceTokenizer(params)


def example_lines(tokenizer, text):
    """What transformers' summarization example feeds rougeLsum:
    "\\n".join(nltk.sent_tokenize(text.strip()))."""
    return tokenizer.tokenize(text.strip())


def build():
    tokenizer = english_tokenizer()
    cases = [
        {"id": cid, "text": text, "sentences": tokenizer.tokenize(text),
         "lines": example_lines(tokenizer, text)}
        for cid, text in CASES + random_cases()
    ]
    return {"versions": {"nltk": nltk.__version__}, "cases": cases}


def write_or_check(out, build_golden, description):
    """The command line of a golden script: write `out`, or with --check compare with it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    args = parser.parse_args()
    assert nltk.__version__ == "3.10.4", nltk.__version__
    text = json.dumps(build_golden(), ensure_ascii=False, indent=1) + "\n"
    if args.check:
        same = out.read_text(encoding="utf-8") == text
        print("identical" if same else f"{out} differs")
        sys.exit(0 if same else 1)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)} ({len(text) // 1024} KiB)")


def main():
    write_or_check(OUT, build, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
