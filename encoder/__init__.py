"""The photo encoder's trainer (`neuedit train-encoder`): E(image) -> (z_t, c_t) for a bundle's G1."""
