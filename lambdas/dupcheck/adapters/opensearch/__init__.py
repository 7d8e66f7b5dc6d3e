"""The OpenSearch indexes: the client and its errors (client.py), what every index shares
(base.py), the hash index (schema.py: what is sent; index.py: the HashIndex) and the product
vectors' index (products.py)."""

from dupcheck.adapters.opensearch.base import BulkResult, IndexBulkError
from dupcheck.adapters.opensearch.index import OpenSearchHashIndex
from dupcheck.adapters.opensearch.products import OpenSearchProductIndex

__all__ = ["BulkResult", "IndexBulkError", "OpenSearchHashIndex", "OpenSearchProductIndex"]
