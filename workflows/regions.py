"""Approximate coordinates of cloud regions, for the optimizer's great-circle RTT estimate.

The registry records a cluster's region name, not where it is; the scheduler wants lat/lon. A region not
listed here gets no coordinates, and `planning.build_snapshot` then gives the optimizer explicit RTTs
(same region: near, else far) instead of guessing a position.
"""

from __future__ import annotations

REGION_COORDS: dict[str, tuple[float, float]] = {
    "us-east-1": (38.9, -77.4), "us-east-2": (40.0, -83.0), "us-west-1": (37.4, -121.9),
    "us-west-2": (45.8, -119.7), "ca-central-1": (45.5, -73.6), "sa-east-1": (-23.5, -46.6),
    "eu-west-1": (53.3, -6.3), "eu-west-2": (51.5, -0.1), "eu-west-3": (48.9, 2.4),
    "eu-central-1": (50.1, 8.7), "eu-north-1": (59.3, 18.1), "eu-south-1": (45.5, 9.2),
    "ap-northeast-1": (35.7, 139.7), "ap-northeast-2": (37.6, 127.0), "ap-southeast-1": (1.3, 103.8),
    "ap-southeast-2": (-33.9, 151.2), "ap-south-1": (19.1, 72.9),
    "us-central1": (41.3, -95.9), "us-east4": (39.0, -77.5), "us-west1": (45.6, -121.2),
    "europe-west4": (53.4, 6.8), "europe-west1": (50.4, 3.8), "asia-northeast1": (35.7, 139.7),
    "eastus": (37.4, -79.4), "westus2": (47.2, -119.9), "westeurope": (52.4, 4.9),
    "northeurope": (53.3, -6.3),
}
NEAR_RTT_MS = 2.0
FAR_RTT_MS = 120.0
