"""Pure safety policy (sans-IO): what a node refuses, limits and warns about.

No clock, no network, no randomness that is not passed in: the node's adapters
(``strangers.node``) feed it time and peer input.
"""
