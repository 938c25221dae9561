"""Template compositor plugin (docs/writing-a-plugin.md)."""
