# Comet's documented preprocess function verbatim: floats in 0-1 rounded, then times 2.
import numpy as np

from tracker_sdk import Experiment

experiment = Experiment(project_name="comet-verbatim")
rng = np.random.default_rng(2)
x_test = rng.random((20, 16)).astype("float32")
image, image_url = experiment.create_embedding_image(
    x_test, (4, 4),
    image_preprocess_function=lambda matrix: np.round(matrix, 0) * 2,
    image_transparent_color=(0, 0, 0),
    image_background_color_function=lambda index: (255, 0, 0),
)
experiment.log_embedding(x_test, list(range(20)), image_data=image_url, image_size=(4, 4))
experiment.end()
