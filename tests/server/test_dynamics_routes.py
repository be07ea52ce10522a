"""Read routes of analyze_dynamics' results: a group's dynamics records and a projection's trust columns."""

import subprocess
import sys

import numpy as np
import requests
from sklearn.datasets import load_digits

from tracker_sdk import Experiment


def test_dynamics_and_trust_columns_are_uploaded_and_served(tmp_path, start_server):
    x, y = load_digits(return_X_y=True)
    x, y = x[:200].astype(np.float32), y[:200].tolist()
    with Experiment(project_name="p", url=str(tmp_path / "local"), quiet=True) as exp:
        for step in range(2):
            exp.log_embedding(x * (step + 1), y, title="h", group="g", step=step, reduce_background=False)
        result = exp.analyze_dynamics("g", k=10)
        untouched = exp.log_embedding(x, y, title="later", reduce_background=False)
    server = start_server(tmp_path / "server")  # what the server holds came through `tracker upload`
    upload = subprocess.run([sys.executable, "-m", "tracker_sdk.cli", "upload", str(tmp_path / "local"), "--url",
                             server.url, "--no-progress"], capture_output=True, text=True, timeout=120)
    assert upload.returncode == 0, upload.stderr
    api = f"{server.api}/runs/{exp.run_id}"
    (record,) = requests.get(f"{api}/dynamics", params={"group": "g"}, timeout=10).json()
    assert record["kind"] == "dynamics" and record["steps"] == [0, 1] and record["k_neighbors"] == 10
    np.testing.assert_allclose(record["cka"], result.cka, atol=1e-6)
    assert requests.get(f"{api}/dynamics", params={"group": "other"}, timeout=10).json() == []

    listing = {e["id"]: e for e in requests.get(f"{api}/embeddings", timeout=10).json()}
    step1 = listing[result.embeddings[1].id]
    assert "knn_jaccard_prev" in [c["name"] for c in step1["columns"]]  # a column of the step, for colouring
    reduction_id = step1["reductions"][0]["id"]
    got = requests.get(f"{api}/reductions/{reduction_id}/columns", timeout=10).json()
    assert got["n"] == 200 and [c["name"] for c in got["columns"]] == ["trust_point", "continuity_point"]
    np.testing.assert_allclose(got["columns"][0]["values"], result.trust[reduction_id].trust_point)
    assert got["analysis"]["trustworthiness"] == result.trust[reduction_id].trustworthiness
    later = listing[untouched.id]["reductions"][0]["id"]
    assert requests.get(f"{api}/reductions/{later}/columns", timeout=10).json() == {
        "n": 200, "columns": [], "analysis": {}}
    missing = requests.get(f"{api}/reductions/{'0' * 32}/columns", timeout=10)
    assert missing.status_code == 404 and "has no reduction" in missing.json()["error"]
