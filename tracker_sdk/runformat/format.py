"""Constants of the run format: its version, the file names, and the record kinds it knows.

Version 2 writes records through :mod:`.records` (msgspec, ``kind`` as the first key, every
field present); version 1 wrote plain dicts with ``seq`` first. Both decode to the same
structs, so this SDK reads either.
"""

from .records import KINDS

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
RUN_JSON = "run.json"
RECORD_KINDS = KINDS
DEFAULT_PROJECT = "default"
