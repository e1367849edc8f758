"""Evaluation: NMI curves with reference curves, tree scores, the HTML report.

Arrives with issue 6; the package exists now so the install layout is final.
"""
