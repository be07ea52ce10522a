"""Experiment / OfflineExperiment: the log_* methods, the current step, and end().

A Comet script ports by changing its import line: the constructors take Comet's common
arguments and ignore Comet-only switches (logged at debug level).
"""

from __future__ import annotations

import atexit
import collections
import logging
import numbers
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _validation as check
from ._progress import say
from ._convert import is_torch_tensor, plain_value, to_numpy
from .errors import InvalidArgumentError, RunClosedError
from .runformat import DEFAULT_PROJECT, RunWriter, names, npy_chunks, records
from .runformat.files import Prehashed
from .runformat.records import metadata_ref
from .sync import default_local_root, for_experiment, is_local

log = logging.getLogger("tracker_sdk")



@dataclass(frozen=True)
class Embedding:
    """Handle of a logged embedding (its vectors are durable when this is returned)."""

    id: str
    n: int
    dim: int
    title: str
    group: str | None
    step: int | None
    run: str
    path: Path


def _metric_value(name, value) -> float | int:
    if is_torch_tensor(value) or isinstance(value, (np.ndarray, np.generic)):
        array = to_numpy(value)
        if array.size != 1:
            raise InvalidArgumentError(f"metric {name!r} value must be a single number; got shape {array.shape}")
        value = array.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"metric {name!r} value must be a number; got {type(value).__name__} {value!r}")
    return value if isinstance(value, numbers.Integral) else float(value)


class Experiment:
    """One tracked run.

    Parameters
    ----------
    api_key, project_name, workspace : str, optional
        Comet's arguments. ``api_key`` authenticates against a tracking server (or
        ``TRACKER_API_KEY``); ``workspace`` is recorded.
    experiment_name : str, optional
        Display name (also ``set_name``).
    url : str, optional
        Where runs go: a directory or ``file://`` URI (offline), or a destination that the run
        is uploaded to in the background while it is also written locally: ``http(s)://``
        (a tracking server), ``s3://bucket/prefix`` or any scheme added with
        ``tracker_sdk.sync.register_backend``. Defaults to ``TRACKER_URL``, else ``./tracker-runs``.
    experiment_key : str, optional
        Resume the run with this key (32 hex characters) instead of starting a new one.
    quiet : bool, optional
        True hides what the experiment prints while you wait (progress, end()'s summary line);
        None (default) leaves it to ``TRACKER_QUIET``.
    end_timeout : float, optional
        Most seconds ``end()`` waits for background reductions (and uploads); None waits as
        long as they make progress. What is left is named as ``tracker reduce`` commands.
    """

    def __init__(self, api_key=None, project_name=None, workspace=None, *, experiment_name=None,
                 url=None, experiment_key=None, end_timeout: float | None = None, quiet: bool | None = None,
                 **comet_only):
        for name in sorted(comet_only):
            log.debug("tracker_sdk ignores the Comet-only argument %s=%r", name, comet_only[name])
        project = check.check_project_name(project_name or os.environ.get("TRACKER_PROJECT") or DEFAULT_PROJECT)
        name = check.check_text(experiment_name, "experiment_name", allow_none=True)
        if experiment_key is not None:
            names.check_hex_id(experiment_key, "experiment_key")
        self._backend = for_experiment(url, api_key=api_key)
        self.run_id = experiment_key or uuid.uuid4().hex
        self.project_name = project
        self.workspace = workspace
        self.run_dir = self._backend.root / project / self.run_id
        self.end_timeout = end_timeout
        if quiet is not None and not isinstance(quiet, bool):
            raise InvalidArgumentError(f"quiet must be True, False or None (TRACKER_QUIET decides); got {quiet!r}")
        self.quiet = quiet
        self._counts: collections.Counter = collections.Counter()  # records logged, by kind (end()'s summary)
        self._step: int | None = None
        self._epoch: int | None = None
        self._ended = False
        self._end_lock = threading.Lock()
        self._writer = RunWriter(self.run_dir, info={
            "run_id": self.run_id, "project": project, "name": name, "workspace": workspace,
            "created": time.time(), "status": "running", "sdk": "tracker_sdk"})
        if experiment_key is not None:
            self._writer.update_info(status="running")
        self._end_hooks: list = []
        self._backend.start(self.run_dir)
        _live_experiments.add(self)
        log.info("tracker_sdk: logging run %s to %s", self.run_id, self.run_dir)

    # -- identity and context ------------------------------------------------------------
    def get_key(self) -> str:
        return self.run_id

    def get_name(self) -> str | None:
        from .runformat.files import read_json
        return read_json(self.run_dir / "run.json").get("name")

    def set_name(self, name: str) -> None:
        self._writer.update_info(name=check.check_text(name, "name"))

    def set_step(self, step) -> None:
        self._step = check.check_step(step)

    def set_epoch(self, epoch) -> None:
        self._epoch = check.check_step(epoch, "epoch")

    @property
    def curr_step(self) -> int | None:
        return self._step

    @property
    def curr_epoch(self) -> int | None:
        return self._epoch

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.end()
        return False

    # -- everyday calls ------------------------------------------------------------------
    def _append(self, record: records.Record, *, timestamp=None, durable=False) -> records.Record:
        self._counts[type(record)] += 1
        return self._writer.append(record, timestamp=timestamp, durable=durable)

    def log_parameter(self, name, value, step=None) -> None:
        name = check.check_text(str(name), "name")
        self._append(records.ParameterRecord(name=name, value=plain_value(value, f"parameter {name!r}"),
                                             step=check.check_step(step)))

    def log_parameters(self, parameters: dict, prefix=None, step=None, nested_support=True) -> None:
        if not isinstance(parameters, dict):
            raise InvalidArgumentError(f"parameters must be a dict; got {type(parameters).__name__}")
        for name, value in _flatten(parameters, prefix, nested_support).items():
            self.log_parameter(name, value, step=step)

    def log_metric(self, name, value, step=None, epoch=None, include_context=True, timestamp=None) -> None:
        t = time.time() if timestamp is None else float(timestamp)
        name = check.check_text(str(name), "name")
        step = check.check_step(step) if step is not None else self._step
        epoch = check.check_step(epoch, "epoch") if epoch is not None else self._epoch
        self._append(records.MetricRecord(name=name, value=_metric_value(name, value), step=step, epoch=epoch),
                     timestamp=t)

    def log_metrics(self, dic: dict, prefix=None, step=None, epoch=None) -> None:
        if not isinstance(dic, dict):
            raise InvalidArgumentError(f"dic must be a dict of metric name -> number; got {type(dic).__name__}")
        t = time.time()
        for name, value in _flatten(dic, prefix, True).items():
            self.log_metric(name, value, step=step, epoch=epoch, timestamp=t)

    def log_other(self, key, value) -> None:
        self._append(records.OtherRecord(name=check.check_text(str(key), "key"), value=plain_value(value, f"other {key!r}")))

    def log_others(self, dictionary: dict) -> None:
        for key, value in dictionary.items():
            self.log_other(key, value)

    def add_tag(self, tag: str) -> None:
        self._append(records.OtherRecord(name="tag", value=check.check_text(tag, "tag")))

    def add_tags(self, tags) -> None:
        for tag in tags:
            self.add_tag(tag)

    def log_asset(self, file_data, file_name=None, overwrite=False, step=None, metadata=None, **comet_only) -> dict:
        """Store a file (path or bytes) as a content-addressed blob; returns its record."""
        if isinstance(file_data, (bytes, bytearray, memoryview)):
            if file_name is None:
                raise InvalidArgumentError("file_name is required when file_data is bytes")
            data = bytes(file_data)
        elif isinstance(file_data, (str, os.PathLike)):
            path = Path(file_data)
            if not path.is_file():
                raise InvalidArgumentError(f"file_data must be an existing file or bytes; got path {str(path)!r}, which is not a file")
            data = path.read_bytes()
            file_name = file_name or path.name
        elif hasattr(file_data, "read"):
            data = file_data.read()
            data = data.encode() if isinstance(data, str) else data
            file_name = file_name or getattr(file_data, "name", None)
            if not file_name:
                raise InvalidArgumentError("file_name is required when file_data is a file object without a name")
        else:
            raise InvalidArgumentError(f"file_data must be a path, bytes or a file object; got {type(file_data).__name__}")
        file_name = check.check_text(str(file_name), "file_name", file_name=True)
        metadata, step = plain_value(metadata, "metadata"), check.check_step(step)  # checked before the blob is written
        sha, size = self._writer.write_blob([data])
        return self._append(records.AssetRecord(name=file_name, sha256=sha, size=size, step=step, metadata=metadata),
                            durable=True)

    # -- embeddings ----------------------------------------------------------------------
    def log_embedding(self, vectors, labels, image_data=None, image_size=None, image_preprocess_function=None,
                      image_transparent_color=None, image_background_color_function=None, title="Embedding",
                      template_filename=None, group=None, *, step=None, metadata=None, label_header=None,
                      allow_nonfinite=False, reduce="pca", reduce_background=None) -> Embedding:
        """Log vectors (n_samples, n_features) with their labels, durably.

        Parameters
        ----------
        vectors : array-like or torch.Tensor, shape (n_samples, ...)
            Flattened per row and stored as float32.
        labels : list, or list of rows whose first row is the header, or 2D array with ``label_header``
            One label (or row of labels) per vector. May be None when ``metadata`` is given.
        title, group : str
            Several embeddings may share group, title and step; each is its own record.
        step : int, optional
            Defaults to the experiment's current step (``set_step``).
        metadata : dict of columns or pandas.DataFrame, optional
            Extra typed columns, one value per vector.
        allow_nonfinite : bool
            Store NaN/Inf instead of raising.
        reduce : str, Reducer, or list of them; None for none
            Projections computed client-side and stored next to the embedding: names from
            ``tracker_sdk.reduce.get_reducer`` or Reducer instances (a fitted one transforms, an
            unfitted one is fitted on this embedding and reused by later calls). Default:
            3-component PCA with its explained variance ratios.
        reduce_background : bool or None
            True runs reductions in the background worker, False inline; None (default) runs
            small PCA inline and everything else in the background.
        """
        if template_filename is not None:
            log.debug("tracker_sdk ignores template_filename=%r (Comet's projector template)", template_filename)
        array = check.check_vectors(vectors, allow_nonfinite=True)
        n, dim = array.shape
        # hashing the vectors (the slowest step) starts now and overlaps the checks and the writes
        vectors_blob = Prehashed(npy_chunks(array))
        try:
            if not allow_nonfinite:
                check.check_finite(array)
            columns, has_header = check.check_labels(labels, n, header=label_header, metadata=metadata,
                                                     check_text=False)
            metadata_blob = check.encode_columns(columns, n)  # also the UTF-8 check of the text cells
            title = check.check_text(title, "title")
            group = check.check_text(group, "group", allow_none=True)
            step = check.check_step(step) if step is not None else self._step
            sprite = self._prepare_sprite(n, image_data, image_size, image_preprocess_function,
                                          image_transparent_color, image_background_color_function)
            reducers = self._prepare_reducers(reduce, reduce_background)
            self._check_open()
            meta_sha, _ = self._writer.write_blob([metadata_blob])
            vec_sha, _ = self._writer.write_blob(vectors_blob)
        except BaseException:
            vectors_blob.cancel()
            raise
        sprite_ref = self._store_sprite(sprite) if sprite is not None else None
        embedding_id = uuid.uuid4().hex
        self._append(records.EmbeddingRecord(
            id=embedding_id, title=title, group=group, step=step, n=n, dim=dim,
            vectors=records.ArrayRef(sha256=vec_sha, dtype="float32", shape=[n, dim]),
            metadata=metadata_ref(meta_sha, columns, header=has_header),
            sprite=sprite_ref,
        ), durable=True)
        handle = Embedding(embedding_id, n, dim, title, group, step, self.run_id, self.run_dir)
        self._schedule_reductions(handle, reducers, array, columns, vectors_sha=vec_sha)
        return handle

    def log_activations(self, collector_or_dict, labels, image_data=None, image_size=None, group=None, step=None,
                        reduce="pca", *, metadata=None, label_header=None, allow_nonfinite=False,
                        **embedding_options) -> dict[str, Embedding]:
        """Log every collected layer as its own embedding (title = layer name) for one step.

        Parameters
        ----------
        collector_or_dict : tracker_sdk.collect.ActivationCollector or dict {layer name: array}
            What ``ActivationCollector`` or ``collect_embeddings`` gathered; each array is
            (n_samples, n_features) and all have the same n_samples.
        labels, image_data, image_size, group, step, reduce, metadata, label_header, allow_nonfinite
            As for :meth:`log_embedding`, shared by every layer (so each layer gets the default
            3-component PCA unless ``reduce=None``); ``**embedding_options`` too.

        Returns
        -------
        dict
            ``{layer name: Embedding}`` in the collector's layer order. Every layer is checked
            before the first is written, so a bad layer leaves nothing half-logged.
        """
        if hasattr(collector_or_dict, "activations") and not isinstance(collector_or_dict, dict):
            layers = dict(collector_or_dict.activations)
        elif isinstance(collector_or_dict, dict):
            layers = {str(name): array for name, array in collector_or_dict.items()}
        else:
            raise InvalidArgumentError(
                "collector_or_dict must be an ActivationCollector or a dict {layer name: (n_samples, n_features) "
                f"array}}; got {type(collector_or_dict).__name__}")
        if not layers:
            raise InvalidArgumentError("collector_or_dict holds no layers; collect at least one layer first")
        if "title" in embedding_options:
            raise InvalidArgumentError("log_activations titles each embedding with its layer name; do not pass title")
        arrays, n_rows = {}, None
        for name, array in layers.items():
            check.check_text(name, "layer name")
            if getattr(array, "size", 1) == 0 or (hasattr(array, "__len__") and len(array) == 0):
                raise InvalidArgumentError(
                    f"layer {name!r} collected no rows; run the model inside `with collector:` before logging "
                    "(fused fast paths, such as nn.TransformerEncoder's in eval mode, can skip a submodule's hooks: "
                    "hook the enclosing layer instead)")
            arrays[name] = check.check_vectors(array, allow_nonfinite=allow_nonfinite)
            if n_rows is not None and len(arrays[name]) != n_rows[1]:
                raise InvalidArgumentError(
                    f"layer {name!r} has {len(arrays[name])} rows but layer {n_rows[0]!r} has {n_rows[1]}; "
                    "every layer must hold one row per sample of the same samples")
            n_rows = n_rows or (name, len(arrays[name]))
        check.check_labels(labels, n_rows[1], header=label_header, metadata=metadata)
        step = check.check_step(step) if step is not None else self._step
        return {name: self.log_embedding(array, labels, image_data=image_data, image_size=image_size, title=name,
                                         group=group, step=step, metadata=metadata, label_header=label_header,
                                         allow_nonfinite=allow_nonfinite, reduce=reduce, **embedding_options)
                for name, array in arrays.items()}

    def _prepare_sprite(self, n, image_data, image_size, preprocess, transparent, background):
        """Validate and build the sprite in memory; nothing is written yet.

        Returns None (no images), a ``sprites.Sprite`` to store, or a ``sprites.StoredSprite``
        when ``image_data`` is an ``image_url`` from ``create_embedding_image``.
        """
        if image_data is None:
            if preprocess is not None or transparent is not None or background is not None:
                raise InvalidArgumentError(
                    "image_preprocess_function, image_transparent_color and image_background_color_function "
                    "apply to image_data, but image_data is None")
            return None
        from . import sprites
        if sprites.parse_image_url(image_data) is not None:
            return sprites.resolve_image_url(image_data, n=n, image_size=image_size, run_dir=self.run_dir,
                                             options=(preprocess, transparent, background))
        return sprites.build_sprite(image_data, image_size, preprocess, transparent, background, n=n)

    def _store_sprite(self, sprite) -> records.SpriteRef:
        """Write the sprite's PNG blob (once per content) and return the record's ``sprite`` field."""
        from . import sprites
        from .runformat import blob_path
        if isinstance(sprite, sprites.StoredSprite):  # reuse: copy the blob only when another run holds it
            sha = sprite.record.sha256
            if not blob_path(self.run_dir, sha).is_file():
                copied, _ = self._writer.write_blob([sprite.source.read_bytes()])
                if copied != sha:
                    raise InvalidArgumentError(f"sprite blob {sprite.source} no longer hashes to {sha}")
            return sprite.record
        sha, _ = self._writer.write_blob([sprite.to_png()])
        record = sprite.record(sha)
        sprites.remember(record, sprite.image_size, blob_path(self.run_dir, sha))
        return record

    def create_embedding_image(self, image_data, image_size=None, image_preprocess_function=None,
                               image_transparent_color=None, image_background_color_function=None, *,
                               image_channels=None):
        """Build a sprite, store it in this run, and return ``(PIL.Image, image_url)``.

        ``image_url`` (``tracker-sprite:<sha256>``) works offline: pass it as ``image_data=``
        to later ``log_embedding`` calls (``image_size`` optional) to reuse this sprite without
        rebuilding or storing it again. Arguments as in ``tracker_sdk.sprites.build_sprite``;
        ``image_channels`` ("first" or "last") settles ambiguous 4-D shapes.
        """
        from . import sprites
        sprite = sprites.build_sprite(image_data, image_size, image_preprocess_function, image_transparent_color,
                                      image_background_color_function, image_channels=image_channels)
        self._check_open()
        record = self._store_sprite(sprite)
        image = sprite.to_image()
        image.info.update(tile_size=sprite.tile_size, grid=sprite.grid, n=sprite.n)
        return image, sprites.image_url(record.sha256)

    def _reductions(self):
        """This run's ReductionSession, created on first use (its end hook waits for the worker)."""
        session = getattr(self, "_reduction_session", None)
        if session is None:
            from .reduce.session import ReductionSession
            session = self._reduction_session = ReductionSession(self._writer, self.run_dir, quiet=self.quiet)
            self._end_hooks.append(lambda: session.finish(self.end_timeout, at_exit=_exiting.is_set()))
        return session

    def _prepare_reducers(self, reduce, background=None):
        """Validate ``reduce=`` before anything is written; returns (planned reducers, background).

        Also the point where reducers the worker fitted for the caller's instances reach them
        (``ReductionSession.adopt_fitted``): here, on the caller's thread."""
        session = getattr(self, "_reduction_session", None)
        if session is not None:
            session.adopt_fitted()
        if reduce is None or reduce is False or (isinstance(reduce, (list, tuple)) and not reduce):
            if background is not None and not isinstance(background, bool):
                raise InvalidArgumentError(f"reduce_background must be True, False or None; got {background!r}")
            return [], background
        return self._reductions().prepare(reduce, background), background

    def _schedule_reductions(self, handle, reducers, array, columns, vectors_sha=None) -> None:
        """Reductions run after the vectors are durable: inline, or queued for the worker."""
        planned, background = reducers if isinstance(reducers, tuple) else (reducers, None)
        if planned:
            self._reductions().schedule(handle, planned, array, columns, vectors_sha, background)

    def reduce_group(self, group, title=None, method="umap", fit_on="last", *, n_components=2, background=None,
                     align=None, id_column=None, **params) -> str:
        """Fit one reducer on a step of ``group`` and place every step of the group with it.

        Positions are then comparable across steps (fit on the final epoch, apply to all).

        Parameters
        ----------
        group : str
            The group of embeddings logged so far (``log_embedding(..., group=)``).
        title : str, optional
            Only embeddings with this title (needed when titles of a group differ in dimension).
        method : str or Reducer
            A name for ``get_reducer`` (``**params`` and ``n_components`` go to it) or an
            unfitted Reducer to copy.
        fit_on : "last", "all", "each" or int
            The step fitted on: the last one, every step together, or a given step; "each"
            fits every step on its own (see ``align``).
        align : {"procrustes", "aligned_umap"} or None
            With ``fit_on="each"``: rotate, reflect and scale each step's fit onto the previous
            one, or fit all steps with umap-learn's AlignedUMAP (method "umap"). Every record's
            quality holds ``trustworthiness`` and ``stability`` (mean distance moved since the
            previous step, in layout units).
        id_column : str, optional
            With ``align``: the metadata column of sample ids consecutive steps are joined on
            (steps may then hold different rows); by default rows are matched by position.
        background : bool or None
            False computes now; None runs PCA on a background thread and other methods in the
            worker process; True always uses the worker process. ``end()`` waits for it.

        Returns
        -------
        str
            The timeline id shared by the new reduction records.
        """
        self._check_open()
        if isinstance(method, str):
            params["n_components"] = n_components
        return self._reductions().reduce_group(check.check_text(group, "group"), check.check_text(title, "title", allow_none=True),
                                               method, fit_on, background, align=align, id_column=id_column,
                                               **params)

    def analyze(self, embedding=None, k: int = 10, *, label_column="label", split_column=None, metric="euclidean",
                outlier="knn", method="auto") -> list:
        """Score logged embeddings in their original space and store the scores as metadata columns.

        Adds ``outlier_score``, ``label_disagreement`` (when ``label_column`` exists) and
        ``split_shift`` (when ``split_column`` is given) to each embedding, for the viewer to
        colour and sort by. ``embedding`` is a handle from ``log_embedding``, an id, a list of
        them, or None for every embedding of this run. Returns one AnalysisResult per embedding.
        See ``tracker_sdk.analysis.analyze``.
        """
        from .analysis import analyze
        from .runformat import open_run
        self._check_open()
        if embedding is not None:
            items = embedding if isinstance(embedding, (list, tuple)) else [embedding]
            embedding = [e.id if isinstance(e, Embedding) else e for e in items]
        return analyze(open_run(self.run_dir), embedding=embedding, k=k, metric=metric, label_column=label_column,
                       split_column=split_column, outlier=outlier, method=method, writer=self._writer)

    def analyze_dynamics(self, group, k: int = 10, label_column="label", id_column=None, *, title=None,
                         metric="euclidean"):
        """Measure how ``group``'s representation changed across its steps, and how far to trust its projections.

        Stores the step x step CKA matrix, each point's k-NN Jaccard to the previous step
        (column ``knn_jaccard_prev``), per-class separation and silhouette per step, and, for
        every stored projection of the group, per-point ``trust_point`` / ``continuity_point``.
        Background reductions already requested are waited for first, so they are included.
        Returns a ``DynamicsResult``; see ``tracker_sdk.analysis.dynamics_store.analyze_dynamics``.
        """
        from .analysis.dynamics_store import analyze_dynamics
        from .runformat import open_run
        self._check_open()
        session = getattr(self, "_reduction_session", None)
        if session is not None:
            session.wait()
        return analyze_dynamics(open_run(self.run_dir), check.check_text(group, "group"), title=title, k=k,
                                label_column=label_column, id_column=id_column, metric=metric, writer=self._writer,
                                quiet=self.quiet)

    def _check_open(self) -> None:
        if self._ended:
            raise RunClosedError(f"experiment {self.run_id} has ended; start a new Experiment to log more")

    # -- ending --------------------------------------------------------------------------
    def end(self) -> None:
        """Flush everything to disk, mark the run finished and close it; safe to call twice.

        Waits for background reductions while they make progress (a bar on a terminal, one
        line otherwise; at most ``end_timeout`` seconds). Ctrl-C during that wait still closes
        the run with everything logged, prints the ``tracker reduce`` commands that compute
        what is left, and re-raises KeyboardInterrupt. Runs by itself at interpreter exit for
        an experiment that was never ended.
        """
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
        interrupted = None
        try:
            for hook in self._end_hooks:
                try:
                    hook()
                except KeyboardInterrupt as exc:  # Ctrl-C while end() waited: close the run properly, then stop
                    interrupted = exc
            ended = self._append(records.EndRecord(status="finished"), durable=True)
            # run.json says what the end record says, so a server that replays the record agrees with it
            self._writer.update_info(status=ended.status, ended=ended.t)
        finally:
            self._writer.close()
            _live_experiments.discard(self)
        if interrupted is not None:
            raise interrupted  # what is left is on disk for `tracker upload` / `tracker reduce`
        pending = self._backend.finish(self.end_timeout)
        if pending:
            log.warning("%s", pending)
        say(self._summary(synced=pending is None), quiet=self.quiet)

    def _summary(self, synced: bool) -> str:
        """end()'s one line: what was stored, where, whether it reached its destination, where to look."""
        counts, kinds = self._counts, records
        session = getattr(self, "_reduction_session", None)
        projections = len(session.summaries) if session is not None else 0  # the session appends them itself
        parts = [f"{counts[kinds.EmbeddingRecord]} embeddings", f"{projections} projections",
                 f"{counts[kinds.MetricRecord]} metric points", f"{counts[kinds.ParameterRecord]} parameters"]
        if counts[kinds.AssetRecord]:
            parts.append(f"{counts[kinds.AssetRecord]} assets")
        if session is not None and session.failures:
            parts.append(f"{len(session.failures)} failed reductions")
        line = f"tracker_sdk: run {self.project_name}/{self.run_id} ended: {', '.join(parts)} in {self.run_dir}"
        destination = self._backend.url
        if destination is None:
            return line + f"; view with: tracker-server --root {self._backend.root}"
        line += f"; synced to {destination}" if synced else f"; NOT fully synced to {destination} (see above)"
        if destination.startswith(("http://", "https://")):
            line += f"; view: {destination}/view?run={self.run_id}"
        return line

    def __repr__(self):
        return f"{type(self).__name__}(project={self.project_name!r}, key={self.run_id!r}, dir={str(self.run_dir)!r})"


class OfflineExperiment(Experiment):
    """An Experiment that writes only to ``offline_directory`` (Comet's offline class)."""

    def __init__(self, api_key=None, project_name=None, workspace=None, offline_directory=None, **kwargs):
        url = offline_directory or kwargs.pop("url", None) or default_local_root()
        if not is_local(url):
            raise InvalidArgumentError(f"offline_directory must be a local path; got {url!r}")
        super().__init__(api_key, project_name, workspace, url=str(url), **kwargs)


def _flatten(mapping: dict, prefix, nested: bool) -> dict:
    out = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}" if prefix else str(key)
        if nested and isinstance(value, dict):
            out.update(_flatten(value, f"{name}.", True))
        else:
            out[name] = value
    return out


#: every Experiment not ended yet, held strongly: a script that drops its Experiment object
#: without calling end() still gets everything end() produces, at exit
_live_experiments: "set[Experiment]" = set()


#: set while live experiments are ended at interpreter exit
_exiting = threading.Event()


def _end_live_experiments() -> None:
    _exiting.set()
    for experiment in list(_live_experiments):
        try:
            experiment.end()
        except KeyboardInterrupt:  # Ctrl-C while end() waited at exit: it already said what is left
            pass
        except Exception:  # at exit, report and keep ending the others
            log.exception("tracker_sdk: could not end experiment %s at exit", experiment.run_id)


def _register_exit_handler() -> None:
    """End live experiments at interpreter exit, *before* concurrent.futures stops its thread pools.

    concurrent.futures' exit hook (``threading._register_atexit``) runs before ``atexit``
    handlers and refuses new work after it ran, so an ``atexit`` end() failed to store blobs
    ("cannot schedule new futures after shutdown"). Hooks of that kind run in reverse order of
    registration: importing concurrent.futures.thread first makes ours run before its own.
    ``atexit`` stays as the fallback where the private hook does not exist.
    """
    import concurrent.futures.thread  # noqa: F401  (registers its hook now, so ours runs first)

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_end_live_experiments)
    atexit.register(_end_live_experiments)


_register_exit_handler()
