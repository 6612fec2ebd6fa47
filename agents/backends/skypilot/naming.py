"""SkyPilot cluster names for replicas: valid on every cloud, stable, and recognisably llmfleet's."""

from __future__ import annotations

import hashlib
import re

CLUSTER_PREFIX = "llmf"
# Clouds shorten long names themselves (GCP allows 35 characters for instance names), which can merge two
# replicas' names; staying short keeps the name ours. The hash keeps sanitised ids apart ("a_b" vs "a-b").
_MAX_LEN = 32
_HASH_LEN = 6


def cluster_name_for(replica_id: str, prefix: str = CLUSTER_PREFIX) -> str:
    """``llmf-<slug>-<hash>``: lower case letters, digits and dashes, starting with a letter."""
    if not replica_id.strip():
        raise ValueError("replica_id must not be empty")
    digest = hashlib.sha256(replica_id.encode()).hexdigest()[:_HASH_LEN]
    slug = re.sub(r"[^a-z0-9]+", "-", replica_id.lower()).strip("-")
    room = _MAX_LEN - len(prefix) - len(digest) - 2
    slug = slug[:room].rstrip("-")
    return f"{prefix}-{slug}-{digest}" if slug else f"{prefix}-{digest}"
