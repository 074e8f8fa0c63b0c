"""neuedit: sketch-based neural image editing (one-stage latent optimisation, two-stage GANs)."""
__version__ = "0.1.0"
