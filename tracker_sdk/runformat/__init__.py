"""THE on-disk run format: ``run.json``, framed journal segments and content-addressed blobs.

Layout (``<root>/<project>/<run_id>/``)::

    run.json        identity and status, replaced atomically
    journal/        00000000.seg ...: frames [u32 length][u32 crc32][msgpack record]
    blobs/ab/<sha>  immutable .npy vectors and coordinates, msgpack metadata, png sprites

Writers go through :class:`RunWriter`; every reader (CLI, server, exporters) goes through
:func:`open_run`.
"""

from .codecs import decode_metadata, encode_metadata, load_npy, make_column, npy_bytes, npy_chunks
from .files import atomic_write_bytes, atomic_write_json, blob_path, commit_blob, hash_file, verify_blob
from .format import DEFAULT_PROJECT, FORMAT_VERSION, RECORD_KINDS, RUN_JSON
from .journal import encode_frame, read_journal, read_segment
from .names import is_hex_id, is_project, is_sha256
from .reader import Embedding, Reduction, Run, open_run
from .walk import is_run_dir, iter_project_dirs, iter_run_dirs, runs_in
from .writer import RunWriter

__all__ = [
    "DEFAULT_PROJECT", "FORMAT_VERSION", "RECORD_KINDS", "RUN_JSON",
    "Embedding", "Reduction", "Run", "RunWriter",
    "atomic_write_bytes", "atomic_write_json", "blob_path", "decode_metadata", "encode_frame",
    "commit_blob", "encode_metadata", "hash_file", "is_hex_id", "is_project", "is_run_dir", "is_sha256",
    "iter_project_dirs", "iter_run_dirs", "load_npy", "make_column", "npy_bytes",
    "npy_chunks", "open_run", "read_journal", "read_segment", "runs_in", "verify_blob",
]
