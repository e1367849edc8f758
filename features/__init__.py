"""Feature learning: CNN activations, 2-NN intrinsic dimension, autoencoder codes.

Arrives with issue 4; the package exists now so the install layout is final.
"""
