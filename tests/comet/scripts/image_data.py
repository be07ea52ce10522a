# Images per vector, passed positionally as image_data and image_size.
from tracker_sdk import Experiment

experiment = Experiment(project_name="comet-images")

vectors = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
]
labels = ["one", "two", "three", "four"]
image_data = [
    [[255, 0], [0, 0]],
    [[0, 255], [0, 0]],
    [[0, 0], [255, 0]],
    [[0, 0], [0, 255]],
]
image_size = (2, 2)

experiment.log_embedding(vectors, labels, image_data, image_size)
experiment.end()
