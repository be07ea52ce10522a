# Several label columns: a list of rows whose first row is the header.
import numpy as np

from tracker_sdk import Experiment

experiment = Experiment(project_name="comet-table")
vectors = np.random.default_rng(1).standard_normal((6, 3))
labels = [
    ["name", "kind", "size"],
    ["apple", "fruit", 3],
    ["kale", "vegetable", 1],
    ["pear", "fruit", 2],
    ["leek", "vegetable", 5],
    ["plum", "fruit", 1],
    ["fig", "fruit", 4],
]
experiment.log_embedding(vectors, labels, title="produce")
experiment.end()
