"""Data: image folders and labels into arrays (`datasets`), and face detection and cropping
(`prepare`). numpy and pillow (OpenCV for `prepare`)."""
