"""Running recipes: the decorator, the client they query, the resolver, and locking."""
