"""How Herald talks to the world: chat front ends, network connectors, the clock, settings, the entry point."""
