# Comet's first embedding example: four points in four dimensions, no explicit end().
from tracker_sdk import Experiment

experiment = Experiment()

vectors = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
]
labels = ["one", "two", "three", "four"]

experiment.log_embedding(vectors, labels)
