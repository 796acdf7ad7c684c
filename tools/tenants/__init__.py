"""python -m tools.tenants: many small indexes, one per tenant (see __main__.py)."""
