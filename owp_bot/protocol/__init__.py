"""The wire protocol: pydantic models, the endpoint table, and the committed OpenAPI spec built from them."""
