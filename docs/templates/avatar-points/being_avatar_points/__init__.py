"""Template avatar plugin: a FlameRenderer and its FitMethod (docs/writing-a-plugin.md)."""
