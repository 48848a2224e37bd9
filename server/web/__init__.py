"""The transports and what faces the network: /ws/ (one Connection a socket), /api/ (REST and auth), the codec, the page, health and metrics."""
