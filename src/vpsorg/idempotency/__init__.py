"""Idempotent retries: ``Idempotency-Key`` on POST, PUT, PATCH and DELETE (Stripe's semantics)."""
