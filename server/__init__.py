"""dashboard-server: database resources over one multiplexed WebSocket."""

__version__ = "0.1.0"
