"""labrpc: the labs' simulated RPC network (Go's labrpc); see labrpc/labrpc.py for usage."""

from .labrpc import (
    FAIL_DELAY_MS, LONGDELAY, MAXDELAY, SEED_ENV, SHORTDELAY, ClientEnd, LabrpcError, MakeNetwork,
    MakeServer, MakeService, Network, Ref, Server, Service, networks_made, seeds_since,
)

__all__ = [
    "FAIL_DELAY_MS", "LONGDELAY", "MAXDELAY", "SEED_ENV", "SHORTDELAY", "ClientEnd", "LabrpcError",
    "MakeNetwork", "MakeServer", "MakeService", "Network", "Ref", "Server", "Service",
    "networks_made", "seeds_since",
]
