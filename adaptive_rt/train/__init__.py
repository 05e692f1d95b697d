"""Offline training (torch): the elastic supernet, subnet samplers, the
training loop and pool building. Only this package imports torch; install
the extra: pip install -c constraints.txt 'adaptive-rt[train]'."""
