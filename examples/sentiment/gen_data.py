"""Synthetic customer comments about a dairy company's products, labelled
positive, negative or neutral.

Each comment is put together from phrases (a product, what the customer
liked or disliked, an opener and a sign-off, a few typos in case and
punctuation), so the sentences vary the way real feedback does while the
labels stay known. The same seed gives the same file.

    python gen_data.py --out data/comments.csv              # 600 rows, seed 7
    kiln data add dairy-comments data/comments.csv

--incident yoghurt=0.5 makes half of the comments complaints about
yoghurt (a bad batch): the traffic of a bad week, for the monitor.

Columns: product, text, label.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

LABELS = ("positive", "negative", "neutral")
# How often each class is seen in a normal week.
LABEL_SHARES = {"positive": 0.4, "negative": 0.3, "neutral": 0.3}

PRODUCTS = {
    "milk": ["whole milk", "semi-skimmed milk", "organic milk", "milk", "lactose-free milk"],
    "yoghurt": ["Greek yoghurt", "strawberry yoghurt", "natural yoghurt", "yoghurt", "vanilla yogurt"],
    "cheese": ["mature cheddar", "goat cheese", "mozzarella", "cheese", "brie", "cottage cheese"],
    "butter": ["salted butter", "butter", "unsalted butter", "spreadable butter"],
    "ice cream": ["vanilla ice cream", "ice cream", "chocolate ice cream", "salted caramel ice cream"],
    "cream": ["double cream", "sour cream", "whipping cream"],
    "kefir": ["kefir", "plain kefir"],
}

# How often each product family is commented on.
FAMILY_SHARES = {"milk": 0.25, "yoghurt": 0.2, "cheese": 0.2, "ice cream": 0.12, "butter": 0.1, "cream": 0.08,
                 "kefir": 0.05}

OPENERS = ["", "", "", "Honestly, ", "Just wanted to say ", "Hi, ", "Update: ", "Well... ", "To be fair, ",
           "Quick note: ", "As a long-time customer, "]
SIGNOFFS = ["", "", "", " Thanks!", " Cheers.", " :)", " Thank you.", " Regards, Sam", " Keep it up.", " Just saying."]

POSITIVE = [
    "the {p} was fresh and creamy, I love it.",
    "the {p} tastes amazing, rich and smooth.",
    "best {p} I have had in years.",
    "my kids adore your {p}, we go through a pack a day.",
    "really happy with the {p}: {good}.",
    "five stars for the {p}, {good}.",
    "the {p} is delicious and not too sweet.",
    "excellent {p}, we will definitely order again.",
    "the new {p} is fantastic, {good}.",
    "I'm impressed, the {p} is {pos} and {pos2}.",
    "lovely {p}, {good}. Highly recommend!",
    "the {p} was perfect for my recipe, {good}.",
    "great value and the {p} is {pos}.",
    "absolutely love the {p}, {good}.",
    "so glad I switched to your {p}, it is {pos}.",
    "delivery was slow, but the {p} is {pos} as always.",
    "the {p} never lets me down.",
    "I keep coming back for the {p}.",
    "not cheap, but the {p} is worth every penny.",
    "no complaints about the {p} at all, {good}.",
    "{pos} {p}, thank you!",
    "love the {p}!",
    "the {p} is {pos}.",
    "what a {pos} {p}.",
]
GOOD = ["great flavour", "perfect texture", "it arrived well chilled", "lovely packaging", "fast delivery",
        "it lasts for ages in the fridge", "the taste is wonderful", "such a fresh taste", "brilliant quality",
        "friendly delivery driver", "it melts beautifully", "my whole family enjoyed it"]
POS = ["fresh", "creamy", "delicious", "tasty", "wonderful", "excellent", "superb", "lovely", "rich", "smooth"]

NEGATIVE = [
    "the {p} was sour and smelled awful.",
    "terrible {p}, {bad}.",
    "the {p} arrived {late} and warm, very disappointed.",
    "awful {p}, {bad}, never again.",
    "I found mould on the {p} two days before the best-before date.",
    "the {p} tasted {neg}, I had to throw it away.",
    "really disappointed with the {p}: {bad}.",
    "the {p} has gone downhill, {bad}.",
    "worst {p} I have ever bought, {bad}.",
    "the {p} was {neg} and the carton was leaking.",
    "not happy at all, the {p} was {neg}.",
    "complaint: the {p} was spoiled when it arrived.",
    "the {p} made my son ill, I am not buying it again.",
    "I used to love the {p}, but lately it is {neg}.",
    "I expected more from the {p}.",
    "the {p} is not what it used to be.",
    "the {p} was fresh, but the price went up again, not happy.",
    "why is the {p} always sold out? Really annoying.",
    "the {p} was {neg}.",
    "{neg} {p}, avoid.",
    "disappointed with the {p}.",
    "the {p} went {neg} overnight.",
    "I want a refund, the {p} was {neg}.",
    "the quality of the {p} is poor lately, {bad}.",
]
BAD = ["rancid taste", "it was off", "the lid was broken", "watery and bland", "far too salty",
       "lumpy and sour", "the delivery was two days late", "the packaging was damaged", "it smelled strange",
       "full of ice crystals", "dry and tasteless", "it tasted like plastic"]
NEG = ["sour", "rancid", "bland", "off", "stale", "disgusting", "mouldy", "watery", "horrible", "spoiled"]
LATE = ["late", "a day late", "three days late", "very late"]

NEUTRAL = [
    "I bought the {p} on {day}.",
    "does the {p} contain {what}?",
    "is the {p} suitable for vegetarians?",
    "where can I find the {p} in store?",
    "the {p} costs {price} at my local shop.",
    "what is the shelf life of the {p} once opened?",
    "I switched from another brand to your {p} last week.",
    "the {p} now comes in a {size} pack.",
    "can I freeze the {p}?",
    "do you deliver the {p} to {town}?",
    "I usually buy the {p} on {day} mornings.",
    "the {p} was in the {aisle} aisle this time.",
    "how many calories are in a portion of the {p}?",
    "are you planning a larger pack of the {p}?",
    "I picked up the {p} with my weekly shopping.",
    "the {p} is okay, nothing special.",
    "is the fresh {p} organic?",
    "do you still make the creamy {p}?",
    "the {p} tastes different from the one I had abroad.",
    "my mum likes the {p}, I prefer the other one.",
]
DAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WHAT = ["gluten", "added sugar", "lactose", "nuts", "gelatine", "preservatives"]
PRICE = ["£1.20", "£2.50", "£3", "€1.99", "$4.49", "£0.95"]
SIZE = ["500 g", "1 litre", "2 litre", "250 g", "family-size", "smaller"]
TOWN = ["Leeds", "Bristol", "York", "Cardiff", "Norwich", "Bath"]
AISLE = ["chilled", "dairy", "frozen", "organic"]


def comment(rng: random.Random, label: str, products: dict[str, float] = FAMILY_SHARES) -> tuple[str, str]:
    """One comment with the given label: (product family, text)."""
    family = rng.choices(list(products), weights=list(products.values()))[0]
    product = rng.choice(PRODUCTS[family])
    template = rng.choice({"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}[label])
    pos = rng.sample(POS, 2)
    body = template.format(
        p=product, good=rng.choice(GOOD), bad=rng.choice(BAD), pos=pos[0], pos2=pos[1], neg=rng.choice(NEG),
        late=rng.choice(LATE), day=rng.choice(DAY), what=rng.choice(WHAT), price=rng.choice(PRICE),
        size=rng.choice(SIZE), town=rng.choice(TOWN), aisle=rng.choice(AISLE))
    opener = rng.choice(OPENERS)
    text = opener + body if opener else body[0].upper() + body[1:]
    if label != "neutral" and rng.random() < 0.15:
        text = text.rstrip(".") + "!!"
    text += rng.choice(SIGNOFFS)
    if rng.random() < 0.05:
        text = text.upper()
    elif rng.random() < 0.1:
        text = text.lower()
    return family, text


def parse_incident(s: str) -> tuple[str, float]:
    """'yoghurt=0.5' → ("yoghurt", 0.5); a clear error otherwise."""
    family, sep, value = s.partition("=")
    family = family.strip()
    if not sep or family not in PRODUCTS:
        raise SystemExit(f"--incident: {s!r} is not FAMILY=SHARE with FAMILY one of {', '.join(PRODUCTS)}")
    try:
        share = float(value)
    except ValueError:
        raise SystemExit(f"--incident: {value!r} is not a number") from None
    if not 0 <= share <= 1:
        raise SystemExit(f"--incident: the share {share} is not between 0 and 1")
    return family, share


def draw(n: int, seed: int = 7, incident: tuple[str, float] | None = None, noise: float = 0.04) -> list[dict[str, str]]:
    """n labelled comments: classes in LABEL_SHARES, products in
    FAMILY_SHARES; with incident (FAMILY, SHARE) that share of the comments
    are complaints about FAMILY instead (a bad batch). noise is the share
    of labels an annotator got wrong."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if incident and rng.random() < incident[1]:
            label, products = "negative", {incident[0]: 1.0}
        else:
            label, products = rng.choices(list(LABEL_SHARES), weights=list(LABEL_SHARES.values()))[0], FAMILY_SHARES
        family, text = comment(rng, label, products)
        if rng.random() < noise:  # annotators disagree now and then
            label = rng.choice([k for k in LABELS if k != label])
        rows.append({"product": family, "text": text, "label": label})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the CSV file to write")
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--incident", help="FAMILY=SHARE: that share of the comments are complaints about FAMILY")
    a = ap.parse_args()
    if a.rows < 1:
        raise SystemExit("--rows must be at least 1")
    rows = draw(a.rows, a.seed, parse_incident(a.incident) if a.incident else None)
    fields = ["product", "text", "label"]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    counts = {k: sum(r["label"] == k for r in rows) for k in LABELS}
    print(f"wrote {out}: {len(rows)} comments ({', '.join(f'{v} {k}' for k, v in counts.items())})", file=sys.stderr)


if __name__ == "__main__":
    main()
