"""Synthesis of strokes and training pairs from images (numpy and OpenCV, no torch)."""
