"""tracker_sdk: a self-hostable experiment tracker for neural-network embeddings.

A Comet script ports by changing its import line to ``from tracker_sdk import Experiment``.
"""

from .errors import (BlobIntegrityError, CorruptJournalError, InvalidArgumentError, MissingDependencyError,
                     NotFittedError, ReductionFailedError, RunFormatError, RunLockedError, SyncError, TrackerError)
from .experiment import Embedding, Experiment, OfflineExperiment
from .runformat import open_run

__version__ = "0.1.0"

__all__ = [
    "BlobIntegrityError", "CorruptJournalError", "Embedding", "Experiment", "InvalidArgumentError",
    "MissingDependencyError", "NotFittedError", "OfflineExperiment", "ReductionFailedError", "RunFormatError",
    "RunLockedError", "SyncError", "TrackerError", "__version__", "open_run",
]
