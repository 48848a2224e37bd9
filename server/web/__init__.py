"""What faces the network: /ws/ (a Connection a socket), /api/ (REST, auth), the codec, the page, health, metrics."""
