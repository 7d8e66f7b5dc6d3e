"""The OpenSearch client and the one table from its failures to `IndexUnavailable`.

No password anywhere: an AWS domain is called with requests signed by SigV4 from the boto3
credential chain (the Lambda role). An `http://` endpoint (a local OpenSearch) is used unsigned.
opensearch-py is imported here only when a client is built, so importing the adapter is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from dupcheck.core.errors import IndexUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from opensearchpy import OpenSearch


def build_client(endpoint: str, region: str, *, timeout: float, max_retries: int) -> OpenSearch:
    """A client for `endpoint` with a short timeout and few retries, so a request never hangs."""
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    if not endpoint:
        raise IndexUnavailable("OpenSearch endpoint is not configured (DUPCHECK_OPENSEARCH_ENDPOINT)")
    parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    secure = parsed.scheme != "http"
    auth = None
    if secure:
        import boto3

        session = boto3.Session()
        credentials = session.get_credentials()
        region = region or session.region_name or ""
        if credentials is None or not region:
            raise IndexUnavailable("no AWS credentials/region to sign OpenSearch requests")
        auth = AWSV4SignerAuth(credentials, region, "es")
    return OpenSearch(
        hosts=[{"host": parsed.hostname or endpoint, "port": parsed.port or (443 if secure else 9200)}],
        http_auth=auth,
        use_ssl=secure,
        verify_certs=secure,
        connection_class=RequestsHttpConnection,
        timeout=timeout,
        max_retries=max_retries,
        retry_on_timeout=True,
        http_compress=False,
        pool_maxsize=10,
    )


@contextmanager
def unavailable_on_outage(action: str, index_name: str) -> Iterator[None]:
    """Turn every failure that means "the index cannot answer now" (connection errors, timeouts,
    429, 5xx, a missing index, denied access) into IndexUnavailable (HTTP 503). Anything else
    (a 400: our request is wrong) is a bug and surfaces as it is."""
    from opensearchpy import exceptions as os_exc

    try:
        yield
    except IndexUnavailable:
        raise
    except os_exc.ConnectionTimeout as exc:
        raise IndexUnavailable(f"OpenSearch {action} failed: timed out") from exc
    except os_exc.ConnectionError as exc:
        raise IndexUnavailable(f"OpenSearch {action} failed: cannot connect") from exc
    except os_exc.NotFoundError as exc:
        raise IndexUnavailable(f"OpenSearch {action} failed: index {index_name!r} does not exist") from exc
    except (os_exc.AuthorizationException, os_exc.AuthenticationException) as exc:
        raise IndexUnavailable(
            f"OpenSearch {action} failed: access denied (check the IAM role and the domain access policy)"
        ) from exc
    except os_exc.TransportError as exc:
        status = exc.status_code
        if status == "N/A" or (isinstance(status, int) and (status == 429 or status >= 500)):
            raise IndexUnavailable(f"OpenSearch {action} failed: HTTP {status} {exc.error}") from exc
        raise
