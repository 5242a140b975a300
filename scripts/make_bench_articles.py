#!/usr/bin/env python3
"""Write N short, varied news-style articles (about 100 words each) for batch benchmarks.

    python3 scripts/make_bench_articles.py --count 200 --out /tmp/bench-articles

Standard library only. Deterministic for a given --seed. Files go to OUT/part-K/article-NNNN.txt
(K = N mod 5), so the folder is nested like a real collection. The sentences are assembled from
the small phrase lists below, written for this project.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

PLACES = ["harbour town", "hill village", "river city", "market town", "island ferry port",
          "university district", "mining valley", "coastal resort", "railway junction", "old quarter"]
BODIES = ["council", "school board", "hospital trust", "water company", "football club",
          "library service", "farmers' cooperative", "transport authority", "museum", "fire brigade"]
PROJECTS = ["a new footbridge over the river", "the repair of the stone pier", "a larger reading room",
            "solar panels on every public roof", "a weekly night bus", "a cheaper school lunch",
            "a flood wall along the quay", "longer opening hours at weekends", "a community orchard",
            "faster broadband for outlying farms"]
REACTIONS = ["Residents welcomed the decision but asked how it would be paid for.",
             "Shop owners worried that the building work would keep customers away in summer.",
             "Several parents said they had waited years for the change.",
             "An opposition member called the plan rushed and poorly costed.",
             "Local teenagers started a petition asking for the work to begin sooner.",
             "A retired engineer wrote to the newspaper praising the careful design."]
DETAILS = ["The cost is put at {m} million, shared between the {body} and a national fund.",
           "Work should start in {month} and take about {n} months.",
           "A public meeting is planned for {month} so that people can see the drawings.",
           "The {body} said that {n} jobs would be created while the work lasts.",
           "Similar schemes in {n} other towns have cut costs by about a fifth.",
           "Officials expect the first results to show by the end of {month}."]
MONTHS = ["January", "March", "April", "June", "September", "October", "November"]


def article(rng: random.Random, index: int) -> str:
    place, body, project = rng.choice(PLACES), rng.choice(BODIES), rng.choice(PROJECTS)
    facts = {"m": rng.randint(2, 40), "n": rng.randint(3, 18), "month": rng.choice(MONTHS), "body": body}
    sentences = [f"The {body} of the {place} agreed on {rng.choice(['Monday', 'Tuesday', 'Thursday'])} "
                 f"to go ahead with {project}, after a debate that lasted most of the evening."]
    details = rng.sample(DETAILS, k=3)
    sentences += [d.format(**facts) for d in details[:2]]
    sentences += rng.sample(REACTIONS, k=2)
    sentences += [d.format(**facts) for d in details[2:]]
    sentences.append(f"Report number {index} will be followed by an update when the {body} meets again.")
    return " ".join(sentences) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    words = 0
    for index in range(args.count):
        path = args.out / f"part-{index % 5}" / f"article-{index:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = article(rng, index)
        words += len(text.split())
        path.write_text(text, encoding="utf-8")
    print(f"wrote {args.count} articles to {args.out} ({words / max(args.count, 1):.0f} words each on average)")


if __name__ == "__main__":
    main()
