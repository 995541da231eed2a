"""Live, rebuildable state shared through Redis: space routes, agent events, log streams, hosts."""
