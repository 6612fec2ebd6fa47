"""Small closed-form queueing approximations used for p95 latencies (pure math, no model knowledge).

- Waiting time in a single-server queue (GI/G/1): Kingman's heavy-traffic formula for the mean,
  E[W] = rho / (1 - rho) * (ca2 + cs2) / 2 * S, and the usual exponential-tail shape for the rest:
  P(W > t) ~= rho * exp(-t * rho / E[W]). Exact for M/M/1, a good approximation near saturation, and
  conservative-enough at low load where waits are small anyway.
- A Poisson count's 95th percentile by the normal approximation m + z95 * sqrt(m): smooth and
  monotone in m, which keeps the capacity bisection well-behaved.
"""

from __future__ import annotations

import math

Z95 = 1.6448536269514722  # standard normal 95th percentile
TAIL = 0.05  # 1 - 0.95


def kingman_mean_wait(utilisation: float, service_s: float, arrival_scv: float, service_scv: float) -> float:
    if utilisation <= 0:
        return 0.0
    if utilisation >= 1:
        return math.inf
    return utilisation / (1 - utilisation) * (arrival_scv + service_scv) / 2 * service_s


def p95_wait(utilisation: float, service_s: float, arrival_scv: float, service_scv: float) -> float:
    """95th percentile of the time a job waits before service starts."""
    if utilisation >= 1:
        return math.inf
    if utilisation <= TAIL:  # at least 95% of jobs find the server idle
        return 0.0
    mean = kingman_mean_wait(utilisation, service_s, arrival_scv, service_scv)
    return mean / utilisation * math.log(utilisation / TAIL)


def poisson_p95(mean: float) -> float:
    if mean <= 0:
        return 0.0
    return mean + Z95 * math.sqrt(mean)
