"""The PyTorch side: networks, losses, augmentation, presets, bundle weights and the PyTorch
backend of the editing core (docs/layout.md)."""
