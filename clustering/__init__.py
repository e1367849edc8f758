"""Clustering: dendrograms, Density Peaks, other algorithms, the sub-category tree.

Arrives with issue 5; the package exists now so the install layout is final.
"""
