"""Rate limits per client address and per API token, enforced before any route runs.

``limiter`` counts (in memory, or in Redis shared by every process); ``middleware`` keys
each request, answers 429 over a limit and puts the RateLimit-* headers on the rest.
"""

from vpsorg.ratelimit.limiter import Limiter, Quota, Verdict
from vpsorg.ratelimit.middleware import EXEMPT_PATHS, RateLimit

__all__ = ["EXEMPT_PATHS", "Limiter", "Quota", "RateLimit", "Verdict"]
