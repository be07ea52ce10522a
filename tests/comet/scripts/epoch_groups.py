# A title and a group inside an epoch loop, as in Comet's "Groups of Embeddings".
import numpy as np

from tracker_sdk import Experiment

experiment = Experiment(project_name="comet-groups", experiment_name="groups")
rng = np.random.default_rng(0)
labels = ["cat", "dog"] * 25
max_epoch = 4

for epoch in range(max_epoch):
    experiment.set_step(epoch)
    vectors = rng.standard_normal((50, 16)) + epoch
    experiment.log_metric("loss", 1.0 / (epoch + 1))
    experiment.log_embedding(vectors, labels, title="epoch-%s" % epoch, group="hidden-layer-1")
experiment.end()
