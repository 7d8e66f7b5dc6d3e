"""One Construct per concern; each takes keyword-only props and exposes what the stack wires."""

from infra.constructs.alarms import Alarms
from infra.constructs.api import Api
from infra.constructs.hash_table import HashTable
from infra.constructs.search_domain import SearchDomain
from infra.constructs.stream_sync import StreamSync

__all__ = ["Alarms", "Api", "HashTable", "SearchDomain", "StreamSync"]
