"""Running the server: the command line, serving processes and workers, systemd notification, TLS, logging."""
