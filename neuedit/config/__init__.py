"""Configuration: recipe files (`recipes`) and command-line flags derived from config dataclasses
(`flags`). Standard library only."""
