# The three image options through create_embedding_image, then its image_url reused.
import numpy as np
from sklearn.datasets import load_digits

from tracker_sdk import Experiment

experiment = Experiment(project_name="comet-digits")

digits = load_digits()
x_test = digits.data[:200].astype("float32") / 16  # flat 8x8 rows in 0-1, like MNIST rows / 255
labels = digits.target[:200]


def label_to_color(index):
    label = labels[index]
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
               (128, 128, 0), (0, 128, 128), (128, 0, 128), (255, 0, 255), (255, 255, 255)]
    return palette[label]


image_data = x_test
image_size = (8, 8)

image, image_url = experiment.create_embedding_image(
    image_data,
    image_size,
    # round the pixels to 0 and 1 (the documented example then multiplies by 2, see the test)
    image_preprocess_function=lambda matrix: np.round(matrix, 0),
    # Set the transparent color:
    image_transparent_color=(0, 0, 0),
    # Fill in the transparent color with a background color:
    image_background_color_function=label_to_color,
)
image.save("sprite-from-create_embedding_image.png")

for epoch in range(3):
    vectors = x_test * (epoch + 1)
    experiment.log_embedding(vectors, labels, image_data=image_url, image_size=image_size,
                             title="epoch-%s" % epoch, group="digits")
experiment.end()
