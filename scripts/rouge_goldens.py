"""Golden ROUGE scores from Google's rouge-score 0.1.2 (and NLTK's Porter stemmer) for precis eval.

Writes tests/fixtures/golden/rouge.json, which `cargo test --test rouge_parity` compares precis
against bit for bit. Everything here is written for this project: a corpus of hard cases (empty
texts, punctuation only, numbers, non-ASCII letters, repeated n-grams, multi-line summaries for
rougeLsum, words the Porter stemmer changes, texts for --split-sentences split by NLTK's Punkt
as scripts/punkt_goldens.py builds it), a list of stemmer edge cases, and a bootstrap run
with its resample indices recorded. Scores are written as repr strings, exact to the last bit.

    .venv/bin/python scripts/rouge_goldens.py            # rewrite the golden file
    .venv/bin/python scripts/rouge_goldens.py --check    # compare with the committed one

Pinned versions: scripts/requirements-eval.txt.
"""

import itertools
import random
import re
from pathlib import Path

import nltk
import numpy as np
import rouge_score
from nltk.stem import porter
from rouge_score import rouge_scorer, scoring, tokenize

import punkt_goldens

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "golden" / "rouge.json"
TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
BOOTSTRAP_SEED = 42
BOOTSTRAP_SAMPLES = 200

# (id, reference, prediction). Newlines separate the sentences rougeLsum sees.
PAIRS = [
    ("readme", "The quick brown fox jumps over the lazy dog",
     "The quick brown dog jumps on the log."),
    ("identical", "The council approved the budget on Monday.",
     "The council approved the budget on Monday."),
    ("disjoint", "Rain fell across the valley.", "Markets closed higher today."),
    ("empty-prediction", "The ferry resumed service after the storm.", ""),
    ("empty-reference", "", "The ferry resumed service after the storm."),
    ("both-empty", "", ""),
    ("whitespace-only", "   \n\t \n", "The ferry resumed service."),
    ("punctuation-only-prediction", "Prices rose sharply in March.", "... !!! ?? -- ;:"),
    ("punctuation-only-both", "?!", "--- ... ,,,"),
    ("numbers", "Inflation hit 3.5% in 2024, up from 2.1% (1,000 homes, 2024-05-01).",
     "In 2024 inflation was 3.5 percent; 1000 homes were sold on 05/01."),
    ("digits-and-letters", "The B52s played 3 encores at 9pm in room 101b.",
     "b52s played three encores at 9 pm in room 101 b"),
    ("non-ascii", "Café owners in Zürich said naïve tourists paid €5 for crème brûlée.",
     "Zurich cafe owners say naive tourists pay 5 euros for creme brulee."),
    ("cyrillic-cjk", "Привет мир. 東京で会議が開かれた。 Meeting in Tokyo.",
     "Meeting held in Tokyo 東京."),
    ("dotted-capital-i", "İstanbul and \u212aelvin scales were discussed.",
     "istanbul and kelvin scale discussed"),
    ("ligatures-fullwidth", "The ﬁnal ＧＰＵ benchmark ran ﬂawlessly.",
     "The final GPU benchmark ran flawlessly."),
    ("repeated-ngrams", "the cat the cat the cat sat on the mat the mat",
     "the cat sat the cat sat on the mat mat mat"),
    ("repeated-single-token", "no no no no no", "no no"),
    ("reordered", "a b c d e f g h", "h g f e d c b a"),
    ("one-word", "Storm.", "storm"),
    ("case-only", "THE MAYOR RESIGNED", "the mayor resigned"),
    ("multi-sentence-lines",
     "The mayor resigned on Friday.\nCouncil members called for a new election.\n"
     "A vote is expected next month.",
     "Council members want a new election.\nThe mayor resigned Friday.\n"
     "The vote comes next month."),
    ("multi-sentence-one-line",
     "The mayor resigned on Friday. Council members called for a new election.",
     "Council members want a new election. The mayor resigned Friday."),
    ("lsum-double-count",
     "the police arrested the suspect\nthe suspect was charged by the police",
     "the police charged the suspect\nthe police arrested the man\nthe suspect the police"),
    ("blank-and-punct-lines", "First line here.\n\n...\nSecond line there.\n",
     "\nsecond line\n!!!\n\nfirst line here\n"),
    ("crlf", "Line one is here.\r\nLine two is there.\r\n", "line one\r\nline two is there"),
    ("tabs-and-spaces", "alpha\tbeta  gamma\u00a0delta\u2003epsilon", "alpha beta gamma delta epsilon"),
    ("stemmer-verbs", "The runners were running and jumped over hurdles while the crowd cheered.",
     "A runner runs and jumps over the hurdle; crowds cheer."),
    ("stemmer-suffixes",
     "Relational conditions and national generalizations improved the effectiveness of "
     "hopefulness, callousness, sensitivity and electrical triplicates.",
     "relate condition nation general improve effective hope callous sensitive electric triplicate"),
    ("stemmer-irregular", "Dying skies and lying ties: the news of innings and outings proceeded.",
     "die sky lie tie news inning outing proceed exceeded succeeding cannings howe"),
    ("stemmer-short-words", "The cats ran, dogs sat; bus was gas, yes it is his.",
     "cat ran dog sat buses were gases yes its"),
    ("stemmer-y", "happy crying daisy toys playing obeyed syzygy sky flies spied died dies",
     "happi cry daisi toy play obey syzygi sky fli spi die die"),
    ("stemmer-double-consonants", "hopping tanned falling hissing fizzed failing filing controlling rolling",
     "hop tan fall hiss fizz fail file control roll"),
    ("stemmer-logy", "geology theology archaeology philology biology analogy",
     "geologi theologi archaeolog philolog biolog analog"),
    ("long",
     "The city council voted on Tuesday to rebuild the old stone pier, which storms damaged "
     "last winter.\nFishermen said the repairs would let larger boats land their catch again.\n"
     "The council expects the work to finish before the summer, and the cost will be shared "
     "with the regional government.\nSome residents objected to the cost, saying the money "
     "should go to schools and roads instead.\nThe mayor said the pier is vital to the town's "
     "economy and its history.",
     "The council voted to rebuild the stone pier damaged by winter storms.\nLarger fishing "
     "boats will be able to land their catch again, fishermen said.\nThe work should finish "
     "before summer; the regional government shares the cost.\nSome residents wanted the "
     "money spent on schools and roads.\nThe mayor called the pier vital to the economy."),
]

# Texts for --split-sentences: NLTK's Punkt (built from data/punkt/english.json, as
# scripts/punkt_goldens.py does) splits them as transformers' summarization example does, and
# rouge-score scores the joined lines. The last pairs hold abbreviations, initials and numbers
# where Punkt and a Unicode (UAX #29) splitter differ, and so do their ROUGE-Lsum scores.
SPLIT_PAIRS = [
    ("split-simple",
     "The dam held. Engineers checked it twice! Was it safe? Officials said yes.",
     "Officials said the dam held. Engineers checked it twice."),
    ("split-numbers-quotes",
     "Prices rose 3.5% in May. \"We are worried,\" a trader said. Shares fell (again).",
     "A trader said shares fell again. Prices rose 3.5%."),
    ("split-paragraphs",
     "The storm passed overnight.\n\nRoads reopened by noon. Schools stay closed",
     "Roads reopened by noon after the storm passed. Schools stay closed."),
    ("split-abbreviations",
     "Mr. Smith met Dr. Jones in the U.S. capital on Jan. 5. Talks lasted an hour.",
     "Talks lasted an hour. Dr. Jones met Mr. Smith in the U.S. capital."),
    ("split-initials",
     "Johann S. Bach wrote the piece. J. Walter Thompson bought the rights.",
     "J. Walter Thompson bought rights to the piece that Johann S. Bach wrote."),
    ("split-quotes-lowercase",
     "\"Rates rose.\" and then they fell. The No. 2 bank (Acme Corp.) said so.",
     "Rates rose and then fell, the No. 2 bank said. Acme Corp. agreed."),
]

# Roots and suffixes combined into many words, most of them not English, to reach every rule of
# the Porter stemmer (NLTK_EXTENSIONS mode) with stems of every measure.
ROOTS = [
    "connect", "relate", "hope", "run", "fly", "argue", "sense", "nation", "general", "happy",
    "agree", "care", "pony", "valid", "organ", "electric", "trouble", "size", "hop", "fall",
    "fail", "file", "fizz", "hiss", "tan", "motor", "plaster", "feed", "bleed", "formal",
    "triple", "digit", "conform", "radical", "differ", "vile", "analog", "callous", "sensitive",
    "adjust", "defend", "irritate", "replace", "depend", "adopt", "commun", "activ", "angular",
    "effect", "bowdler", "probat", "rate", "cease", "control", "roll", "gener", "beauty", "geo",
    "theo", "archaeo", "philo", "sky", "die", "lie", "tie", "skate", "need", "speed", "bed",
    "sing", "king", "thing", "bring", "string", "a", "e", "y", "ab", "oa", "eye", "toy", "say",
    "buzz", "miss", "sew", "box", "tax", "bow", "rhythm", "crwth", "syzyg", "queue", "quiz",
    "abc1", "x2", "2000",
]
SUFFIXES = [
    "", "s", "es", "ies", "ied", "ed", "eed", "ing", "ings", "ly", "ally", "alli", "ness", "ful",
    "fully", "fulli", "fulness", "ation", "ations", "ational", "tional", "ization", "izer", "ize",
    "izes", "ise", "ism", "alism", "ist", "ity", "iti", "aliti", "iviti", "biliti", "ive",
    "iveness", "ative", "able", "ably", "abli", "ible", "ibli", "bli", "ement", "ment", "ent",
    "entli", "eli", "ence", "enci", "ance", "anci", "er", "ers", "or", "ator", "ous", "ousli",
    "ously", "ousness", "al", "ical", "icate", "iciti", "alize", "logy", "logi", "y", "e", "ee",
    "ion", "sion", "tion", "ic", "ant", "ou", "ism", "iti", "at", "bl", "iz", "ll", "sses", "ss",
]
WORDS = [
    "caresses", "ponies", "ties", "caress", "cats", "feed", "agreed", "plastered", "bled",
    "motoring", "sing", "conflated", "troubled", "sized", "hopping", "tanned", "falling",
    "hissing", "fizzed", "failing", "filing", "happy", "sky", "relational", "conditional",
    "rational", "valenci", "hesitanci", "digitizer", "conformabli", "radicalli", "differentli",
    "vileli", "analogousli", "vietnamization", "predication", "operator", "feudalism",
    "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti", "sensibiliti",
    "triplicate", "formative", "formalize", "electriciti", "electrical", "hopeful", "goodness",
    "revival", "allowance", "inference", "airliner", "gyroscopic", "adjustable", "defensible",
    "irritant", "replacement", "adjustment", "dependent", "adoption", "homologou", "communism",
    "activate", "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate",
    "cease", "controll", "roll", "generously", "dying", "lying", "tying", "news", "innings",
    "inning", "outings", "outing", "cannings", "canning", "howe", "proceed", "exceed",
    "succeed", "skies", "dies", "died", "spied", "flies", "tries", "cried", "generalli",
    "beautifully", "geology", "theology", "archaeology", "philology", "crying", "daisy", "toy",
    "playing", "obeyed", "syzygy", "buzzing", "missing", "yelling", "eying", "dyed", "dyeing",
    "lied", "tied", "vied", "hied", "ied", "ies", "eed", "ing", "ed", "s", "is", "as", "us",
    "sss", "yyyy", "yes", "bus", "gas", "this", "his", "its", "was", "news", "species",
    "series", "analysis", "abyss", "ooze", "oozed", "agreement", "feeds", "needed", "bleeding",
    "exceedingly", "proceeding", "succeeded", "hopped", "hoped", "filed", "filled", "fizzled",
    "tapping", "taping", "bowing", "boxing", "taxed", "sewing", "stewed", "allied", "tallied",
    "ally", "really", "finally", "totally", "usually", "equally", "fully", "dully", "hilly",
    "electrically", "logically", "ideologically", "generalizations", "organizational",
    "international", "conditionally", "unconditionally", "relationships", "responsibilities",
    "communications", "representatives", "administration", "investigation", "considerable",
    "government", "governments", "economy", "economies", "economic", "economical",
    "economically", "policies", "policy", "officials", "official", "officially", "reported",
    "reporting", "reports", "reporter", "reporters", "announced", "announcement", "said",
    "says", "saying", "according", "accordingly", "however", "mayor", "mayors", "council",
    "councils", "voting", "voted", "votes", "elections", "electoral", "1990s", "2000s",
    "covid19", "abc123ing", "mp3s", "x86", "a1b2c3", "12345", "0000",
]


def stemmer_words():
    """Hand-picked words, root+suffix combinations and seeded random strings, deduplicated."""
    words = list(WORDS)
    words += [root + suffix for root, suffix in itertools.product(ROOTS, SUFFIXES)]
    rng = random.Random(7)
    letters = "aeiouybcdfglmnprstvwxz"
    for _ in range(3000):
        length = rng.randint(1, 12)
        words.append("".join(rng.choice(letters) for _ in range(length)))
    seen = set()
    return [w for w in words if not (w in seen or seen.add(w))]


def exact(values):
    """Floats as Python's shortest repr strings: every Rust parser reads those back exactly
    (serde_json's default float parser can be one unit in the last place off)."""
    return [repr(float(v)) for v in values]


def score_dict(scores):
    return {t: exact(s) for t, s in scores.items()}


def pair_record(scorers, pid, reference, prediction):
    return {
        "id": pid,
        "reference": reference,
        "prediction": prediction,
        "scores": {name: score_dict(s.score(reference, prediction)) for name, s in scorers.items()},
    }


def bootstrap_golden(per_doc):
    """rouge-score's BootstrapAggregator over `per_doc` (one dict of Scores per document), seeded
    with np.random.seed, and the resample indices it drew (one list per sample, per type)."""
    np.random.seed(BOOTSTRAP_SEED)
    aggregator = scoring.BootstrapAggregator(n_samples=BOOTSTRAP_SAMPLES)
    for scores in per_doc:
        aggregator.add_scores(scores)
    result = aggregator.aggregate()
    # Replay the draws: one np.random.choice per sample, types in insertion order.
    np.random.seed(BOOTSTRAP_SEED)
    n = len(per_doc)
    indices = {}
    for rouge_type in per_doc[0]:
        indices[rouge_type] = [
            np.random.choice(np.arange(n), size=n).tolist() for _ in range(BOOTSTRAP_SAMPLES)
        ]
    return {
        "seed": BOOTSTRAP_SEED,
        "samples": BOOTSTRAP_SAMPLES,
        "confidence": 0.95,
        "indices": indices,
        "aggregate": {
            t: {k: exact(getattr(a, k)) for k in ("low", "mid", "high")} for t, a in result.items()
        },
    }


def percentile_goldens():
    """np.percentile at rouge-score's three quantiles, and np.mean, on seeded random columns. NumPy interpolates
    from the nearer neighbour (a + d*t below t = 0.5, b - d*(1 - t) above); the columns are kept
    only if some of them tell the two formulas apart, so the test can see either one broken."""
    rng = np.random.RandomState(3)
    delta = (1 - 0.95) / 2
    q = 100 * np.array([delta, 0.5, 1 - delta])
    cases, telling = [], 0
    for size in list(range(2, 40)) + [129, 200, 1000]:
        values = rng.random_sample(size)
        got = np.percentile(values, q)
        ordered = np.sort(values)
        for quantile, value in zip(q / 100, got):
            index = (size - 1) * quantile
            lo = min(int(np.floor(index)), size - 1)
            hi = min(lo + 1, size - 1)
            t = index - lo
            a, b = ordered[lo], ordered[hi]
            if (a + (b - a) * t) != (b - (b - a) * (1 - t)):
                telling += 1
                assert value == (a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))
        cases.append({"values": exact(values), "percentiles": exact(got),
                      "mean": repr(float(np.mean(values)))})
    assert telling >= 5, telling
    return cases


def lowercase_to_ascii():
    """Non-ASCII code points whose Python lowercase holds an ASCII letter or digit."""
    found = []
    for code in range(0x80, 0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        lower = chr(code).lower()
        if re.search("[a-z0-9]", lower):
            found.append([code, lower])
    return found


def build():
    scorers = {
        "plain": rouge_scorer.RougeScorer(TYPES, use_stemmer=False),
        "stemmed": rouge_scorer.RougeScorer(TYPES, use_stemmer=True),
    }
    pairs = [pair_record(scorers, *pair) for pair in PAIRS]
    split_pairs = []
    punkt = punkt_goldens.english_tokenizer()
    for pid, reference, prediction in SPLIT_PAIRS:
        ref_sents = punkt_goldens.example_lines(punkt, reference)
        pred_sents = punkt_goldens.example_lines(punkt, prediction)
        record = pair_record(scorers, pid, "\n".join(ref_sents), "\n".join(pred_sents))
        record.update(reference=reference, prediction=prediction,
                      reference_sentences=ref_sents, prediction_sentences=pred_sents)
        split_pairs.append(record)
    stemmer = porter.PorterStemmer()
    words = stemmer_words()
    texts = sorted({t for _, r, p in PAIRS for t in (r, p)})
    stemmed = scorers["stemmed"]
    per_doc = [stemmed.score(r, p) for _, r, p in PAIRS]
    return {
        "versions": {"rouge_score": "0.1.2", "nltk": nltk.__version__, "numpy": np.__version__},
        "types": TYPES,
        "pairs": pairs,
        "split_pairs": split_pairs,
        "stems": [[w, stemmer.stem(w)] for w in words],
        "tokens": [
            {"text": t, "plain": tokenize.tokenize(t, None),
             "stemmed": tokenize.tokenize(t, stemmer)} for t in texts
        ],
        "lowercase_to_ascii": lowercase_to_ascii(),
        "bootstrap": bootstrap_golden(per_doc),
        "percentiles": percentile_goldens(),
    }


def main():
    assert Path(rouge_score.__file__).parent.name == "rouge_score"
    punkt_goldens.write_or_check(OUT, build, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
