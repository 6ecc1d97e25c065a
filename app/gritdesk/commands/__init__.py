"""What the CLI commands do beyond parsing options: one module per command family."""
