"""One Construct per concern; each takes keyword-only props and exposes what the stack wires."""

from infra.components.alarms import Alarms
from infra.components.api import Api
from infra.components.decisions import DuplicateDecisions
from infra.components.duplicate_scans import DuplicateScans
from infra.components.gate_claims import GateClaims
from infra.components.hash_table import HashTable
from infra.components.imports import Imports
from infra.components.products import SimilarProducts
from infra.components.search_domain import SearchDomain
from infra.components.stream_sync import StreamSync
from infra.components.thumbnail_bucket import ThumbnailBucket

__all__ = [
    "Alarms", "Api", "DuplicateDecisions", "DuplicateScans", "GateClaims", "HashTable", "Imports", "SearchDomain",
    "SimilarProducts", "StreamSync", "ThumbnailBucket",
]  # fmt: skip
