"""HashIndex on OpenSearch k-NN binary vectors: the client and its errors (client.py), what is
sent (schema.py), and the adapter (index.py)."""

from dupcheck.adapters.opensearch.index import BulkResult, IndexBulkError, OpenSearchHashIndex

__all__ = ["BulkResult", "IndexBulkError", "OpenSearchHashIndex"]
