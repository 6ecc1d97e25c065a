"""The chat app's widgets, each with its styles in a .tcss file beside it."""
