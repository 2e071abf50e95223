"""Health, readiness and metrics: what load balancers, orchestrators and Prometheus ask."""
